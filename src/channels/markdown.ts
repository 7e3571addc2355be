// The agent's Markdown parsed into blocks and inline marks: what every chat service's rendering starts from.

/** Inline Markdown as far as chat services can show it. */
export type Inline =
  | { type: 'text'; text: string }
  | { type: 'bold' | 'italic' | 'strike'; children: Inline[] }
  | { type: 'code'; text: string }
  | { type: 'link'; url: string; children: Inline[] };

export type Block =
  | { type: 'code'; language: string; text: string }
  | { type: 'heading'; content: Inline[] }
  | { type: 'quote'; content: Inline[] }
  | { type: 'bullet'; indent: string; marker: string; content: Inline[] }
  | { type: 'line'; content: Inline[] };

const SAFE_URL = /^(https?:\/\/|mailto:|tg:\/\/)[^\s<>"]+$/i;
export const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]{0,30})\s*$/;
const isSpace = (char: string | undefined) => char === undefined || /\s/.test(char);
const isWordChar = (char: string | undefined) => char !== undefined && /[\p{L}\p{N}]/u.test(char);

/** Finds the closing delimiter for an opener at `start`, or -1. Single delimiters skip over doubled ones. */
function findClose(source: string, start: number, delimiter: string): number {
  const from = start + delimiter.length;
  if (isSpace(source[from])) return -1;
  for (let index = from + 1; index <= source.length - delimiter.length; index++) {
    if (source[index] === '`') {
      const close = source.indexOf('`', index + 1);
      if (close === -1) break;
      index = close;
      continue;
    }
    if (!source.startsWith(delimiter, index)) continue;
    if (delimiter.length === 1 && source[index + 1] === delimiter) {
      index++;
      continue;
    }
    if (isSpace(source[index - 1])) continue;
    // '_' inside a word (snake_case) is not emphasis.
    if (delimiter[0] === '_' && isWordChar(source[index + delimiter.length])) continue;
    return index;
  }
  return -1;
}

/** Parses inline Markdown: **bold**, __bold__, *italic*, _italic_, ~~strike~~, `code`, [text](url), \escapes. */
export function parseInline(source: string): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const flush = () => {
    if (text) out.push({ type: 'text', text });
    text = '';
  };
  let index = 0;
  while (index < source.length) {
    const char = source[index] as string;
    if (char === '\\' && /[\\`*_~[\]()#>-]/.test(source[index + 1] ?? '')) {
      text += source[index + 1];
      index += 2;
      continue;
    }
    if (char === '`') {
      const run = /^`+/.exec(source.slice(index))?.[0] ?? '`';
      const close = source.indexOf(run, index + run.length);
      if (close !== -1) {
        flush();
        out.push({ type: 'code', text: source.slice(index + run.length, close) });
        index = close + run.length;
        continue;
      }
    }
    if (char === '[') {
      const link = /^\[([^\]\n]+)\]\(([^)\s]+)\)/.exec(source.slice(index));
      if (link?.[1] && link[2]) {
        flush();
        if (SAFE_URL.test(link[2])) out.push({ type: 'link', url: link[2], children: parseInline(link[1]) });
        else out.push(...parseInline(link[1]), { type: 'text', text: ` (${link[2]})` });
        index += link[0].length;
        continue;
      }
    }
    const double = source.slice(index, index + 2);
    if (double === '**' || double === '__' || double === '~~') {
      const close = findClose(source, index, double);
      if (close !== -1) {
        flush();
        const type = double === '~~' ? 'strike' : 'bold';
        out.push({ type, children: parseInline(source.slice(index + 2, close)) });
        index = close + 2;
        continue;
      }
    }
    if ((char === '*' || char === '_') && !(char === '_' && isWordChar(source[index - 1]))) {
      const close = findClose(source, index, char);
      if (close !== -1) {
        flush();
        out.push({ type: 'italic', children: parseInline(source.slice(index + 1, close)) });
        index = close + 1;
        continue;
      }
    }
    text += char;
    index++;
  }
  flush();
  return out;
}

/** Parses Markdown into lines and fenced code blocks (an unclosed fence runs to the end). */
export function parseMarkdown(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] as string;
    const fence = FENCE.exec(line);
    if (fence?.[1]) {
      const body: string[] = [];
      let end = index + 1;
      while (end < lines.length && !(lines[end] as string).trim().startsWith(fence[1].slice(0, 3))) {
        body.push(lines[end] as string);
        end++;
      }
      blocks.push({ type: 'code', language: fence[2] ?? '', text: body.join('\n') });
      index = end;
      continue;
    }
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      blocks.push({ type: 'heading', content: parseInline(heading[1] ?? '') });
      continue;
    }
    const quote = /^\s{0,3}>\s?(.*)$/.exec(line);
    if (quote) {
      blocks.push({ type: 'quote', content: parseInline(quote[1] ?? '') });
      continue;
    }
    const bullet = /^(\s*)([-*+]|\d{1,3}[.)])\s+(.*)$/.exec(line);
    if (bullet) {
      const marker = /\d/.test(bullet[2] ?? '') ? (bullet[2] as string) : '•';
      blocks.push({ type: 'bullet', indent: bullet[1] ?? '', marker, content: parseInline(bullet[3] ?? '') });
      continue;
    }
    blocks.push({ type: 'line', content: parseInline(line) });
  }
  return blocks;
}
