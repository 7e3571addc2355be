// The agent's Markdown, rendered for each chat service (Telegram HTML, WhatsApp marks, plain text), and split.

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
const FENCE = /^\s{0,3}(```+|~~~+)\s*([\w+#.-]{0,30})\s*$/;
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

export const escapeHtml = (text: string) =>
  text.replace(
    /[&<>"]/g,
    (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[char] as string,
  );

const inlineHtml = (nodes: Inline[]): string => nodes.map(nodeHtml).join('');

function nodeHtml(node: Inline): string {
  switch (node.type) {
    case 'text':
      return escapeHtml(node.text);
    case 'code':
      return `<code>${escapeHtml(node.text)}</code>`;
    case 'bold':
      return `<b>${inlineHtml(node.children)}</b>`;
    case 'italic':
      return `<i>${inlineHtml(node.children)}</i>`;
    case 'strike':
      return `<s>${inlineHtml(node.children)}</s>`;
    case 'link':
      return `<a href="${escapeHtml(node.url)}">${inlineHtml(node.children)}</a>`;
  }
}

function inlinePlain(nodes: Inline[]): string {
  return nodes
    .map((node) => {
      switch (node.type) {
        case 'text':
        case 'code':
          return node.text;
        case 'link': {
          const label = inlinePlain(node.children);
          return label === node.url ? label : `${label} (${node.url})`;
        }
        default:
          return inlinePlain(node.children);
      }
    })
    .join('');
}

const inlineWhatsApp = (nodes: Inline[]): string => nodes.map(nodeWhatsApp).join('');

function nodeWhatsApp(node: Inline): string {
  switch (node.type) {
    case 'text':
      return node.text;
    case 'code':
      return node.text.includes('`') ? node.text : `\`${node.text}\``;
    case 'bold':
      return `*${inlineWhatsApp(node.children)}*`;
    case 'italic':
      return `_${inlineWhatsApp(node.children)}_`;
    case 'strike':
      return `~${inlineWhatsApp(node.children)}~`;
    case 'link': {
      const label = inlinePlain(node.children);
      return label === node.url ? label : `${label} (${node.url})`;
    }
  }
}

/** Joins rendered blocks; consecutive quote lines become one quote. */
function render(
  blocks: Block[],
  renderers: {
    inline(nodes: Inline[]): string;
    code(block: { language: string; text: string }): string;
    heading(nodes: Inline[]): string;
    quote(lines: string[]): string;
  },
): string {
  const out: string[] = [];
  for (let index = 0; index < blocks.length; index++) {
    const block = blocks[index] as Block;
    if (block.type === 'quote') {
      const lines = [renderers.inline(block.content)];
      while (blocks[index + 1]?.type === 'quote') {
        index++;
        lines.push(renderers.inline((blocks[index] as { content: Inline[] }).content));
      }
      out.push(renderers.quote(lines));
    } else if (block.type === 'code') out.push(renderers.code(block));
    else if (block.type === 'heading') out.push(renderers.heading(block.content));
    else if (block.type === 'bullet')
      out.push(`${block.indent}${block.marker} ${renderers.inline(block.content)}`);
    else out.push(renderers.inline(block.content));
  }
  return out.join('\n');
}

/** Telegram's HTML parse mode: only b, i, s, code, pre, a and blockquote; every other '<', '>' and '&' escaped. */
export function toTelegramHtml(markdown: string): string {
  return render(parseMarkdown(markdown), {
    inline: inlineHtml,
    code: ({ language, text }) =>
      language
        ? `<pre><code class="language-${escapeHtml(language)}">${escapeHtml(text)}</code></pre>`
        : `<pre>${escapeHtml(text)}</pre>`,
    heading: (nodes) => `<b>${inlineHtml(nodes)}</b>`,
    quote: (lines) => `<blockquote>${lines.join('\n')}</blockquote>`,
  });
}

/** WhatsApp's marks: *bold*, _italic_, ~strike~, `code`, ``` blocks, > quotes; links as "text (url)". */
export function toWhatsApp(markdown: string): string {
  return render(parseMarkdown(markdown), {
    inline: inlineWhatsApp,
    code: ({ text }) => `\`\`\`\n${text}\n\`\`\``,
    heading: (nodes) => `*${inlinePlain(nodes)}*`,
    quote: (lines) => lines.map((line) => `> ${line}`).join('\n'),
  });
}

/** The text with its Markdown marks removed: what a service without formatting should show. */
export function toPlainText(markdown: string): string {
  return render(parseMarkdown(markdown), {
    inline: inlinePlain,
    code: ({ text }) => text,
    heading: inlinePlain,
    quote: (lines) => lines.join('\n'),
  });
}

/** Visible text of Telegram HTML (what its length limit counts): tags removed, entities decoded. */
export function htmlVisibleText(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&(lt|gt|amp|quot|#\d+|#x[\da-f]+);/gi, (_, name: string) => {
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };
    if (named[name.toLowerCase()]) return named[name.toLowerCase()] as string;
    const code = name[1]?.toLowerCase() === 'x' ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
    return String.fromCodePoint(code);
  });
}

/** Where to cut text so that the first part has at most limit characters: a paragraph, line, space, or hard. */
function cutPoint(text: string, limit: number): number {
  const window = text.slice(0, limit + 1);
  const floor = Math.floor(limit / 2);
  for (const separator of ['\n\n', '\n', ' ']) {
    const at = window.lastIndexOf(separator, limit - separator.length);
    if (at >= floor) return at + separator.length;
  }
  const code = text.charCodeAt(limit - 1);
  // Never cut between the two halves of a surrogate pair (an emoji).
  return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
}

/** Splits text into parts of at most limit characters, at paragraph, line or word boundaries when possible. */
export function splitText(text: string, limit: number): string[] {
  if (limit < 16) throw new Error(`split limit ${limit} is too small`);
  const parts: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    const cut = cutPoint(rest, limit);
    parts.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).replace(/^\n+/, '');
  }
  parts.push(rest);
  return parts.filter((part) => part.trim() !== '');
}

/** Room kept in each part for closing and reopening a code fence that a cut falls inside. */
const FENCE_RESERVE = 40;

/**
 * Splits Markdown into parts of at most limit characters. A code block cut in two is closed at the end of one
 * part and reopened at the start of the next, so each part renders on its own.
 */
export function splitMarkdown(markdown: string, limit: number): string[] {
  if (markdown.length <= limit) return markdown.trim() === '' ? [] : [markdown];
  const raw = splitText(markdown, limit - FENCE_RESERVE);
  const parts: string[] = [];
  let openFence: { marker: string; language: string } | null = null;
  for (const chunk of raw) {
    let part = openFence ? `${openFence.marker}${openFence.language}\n${chunk}` : chunk;
    for (const line of chunk.split('\n')) {
      const fence = FENCE.exec(line);
      if (!fence?.[1]) continue;
      if (openFence && line.trim().startsWith(openFence.marker.slice(0, 3))) openFence = null;
      else if (!openFence) openFence = { marker: fence[1].slice(0, 3), language: fence[2] ?? '' };
    }
    if (openFence) part = `${part}\n${openFence.marker}`;
    parts.push(part);
  }
  return parts;
}
