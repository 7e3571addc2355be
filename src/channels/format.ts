// The agent's Markdown rendered for each chat service (Telegram HTML, WhatsApp, Slack and Discord marks, plain text), and split.
import { type Block, FENCE, type Inline, parseMarkdown } from './markdown.js';

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

/** Slack escapes only these three in message text; everything else is literal. */
const escapeSlack = (text: string) =>
  text.replace(/[&<>]/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[char] as string);

const inlineSlack = (nodes: Inline[]): string => nodes.map(nodeSlack).join('');

function nodeSlack(node: Inline): string {
  switch (node.type) {
    case 'text':
      return escapeSlack(node.text);
    case 'code':
      return node.text.includes('`') ? escapeSlack(node.text) : `\`${escapeSlack(node.text)}\``;
    case 'bold':
      return `*${inlineSlack(node.children)}*`;
    case 'italic':
      return `_${inlineSlack(node.children)}_`;
    case 'strike':
      return `~${inlineSlack(node.children)}~`;
    case 'link': {
      // A '|' or '>' in the URL would end Slack's <url|label> early.
      const url = node.url.replace(/\|/g, '%7C').replace(/>/g, '%3E');
      return `<${url}|${inlinePlain(node.children).replace(/[|>]/g, ' ')}>`;
    }
  }
}

/** Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`, ``` blocks, > quotes, <url|label> links; &, <, > escaped. */
export function toSlackMrkdwn(markdown: string): string {
  return render(parseMarkdown(markdown), {
    inline: inlineSlack,
    code: ({ text }) => `\`\`\`\n${escapeSlack(text)}\n\`\`\``,
    heading: (nodes) => `*${escapeSlack(inlinePlain(nodes))}*`,
    quote: (lines) => lines.map((line) => `> ${line}`).join('\n'),
  });
}

/** Marks Discord would read in literal text, backslash-escaped; URLs are left whole so they still link. */
function escapeDiscord(text: string): string {
  return text
    .split(/(https?:\/\/\S+)/)
    .map((piece, index) =>
      index % 2 === 1 ? piece : piece.replace(/[\\*~`|]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, '\\$&'),
    )
    .join('');
}

const inlineDiscord = (nodes: Inline[]): string => nodes.map(nodeDiscord).join('');

function nodeDiscord(node: Inline): string {
  switch (node.type) {
    case 'text':
      return escapeDiscord(node.text);
    case 'code':
      return node.text.includes('`') ? `\`\` ${node.text} \`\`` : `\`${node.text}\``;
    case 'bold':
      return `**${inlineDiscord(node.children)}**`;
    case 'italic':
      return `*${inlineDiscord(node.children)}*`;
    case 'strike':
      return `~~${inlineDiscord(node.children)}~~`;
    case 'link': {
      const label = inlinePlain(node.children).replace(/[[\]]/g, '');
      return label === node.url ? node.url : `[${label}](${node.url.replace(/\)/g, '%29')})`;
    }
  }
}

const TABLE_ROW = /^\s*\|.*\|\s*$/;

/** Discord shows no tables: a run of `| a | b |` rows becomes a code block, so its columns still line up. */
function fenceTables(markdown: string): string {
  const out: string[] = [];
  let inFence = false;
  let table: string[] = [];
  const flush = () => {
    out.push(...(table.length >= 2 ? ['```', ...table, '```'] : table));
    table = [];
  };
  for (const line of markdown.split('\n')) {
    if (FENCE.test(line)) inFence = !inFence;
    if (!inFence && TABLE_ROW.test(line)) {
      table.push(line.trim());
      continue;
    }
    flush();
    out.push(line);
  }
  flush();
  return out.join('\n');
}

/**
 * Discord's Markdown is close to the agent's: **bold**, *italic*, ~~strike~~, `code`, fences, > quotes and
 * [label](url) links stay; headings become bold lines (Discord shows only three levels, and not everywhere); tables
 * become code blocks; stray marks are escaped.
 */
export function toDiscordMarkdown(markdown: string): string {
  return render(parseMarkdown(fenceTables(markdown)), {
    inline: inlineDiscord,
    code: ({ language, text }) => `\`\`\`${language}\n${text}\n\`\`\``,
    heading: (nodes) => `**${inlineDiscord(nodes)}**`,
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
