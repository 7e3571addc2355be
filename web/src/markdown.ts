// Replies as Markdown: markdown-it with raw HTML off, then DOMPurify on what it made, links only to the web and mail.
import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';
import { h } from './dom.js';

const SAFE_LINK = /^(https?:|mailto:)/i;
const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true });
markdown.validateLink = (url) => SAFE_LINK.test(url.trim());

const purify = DOMPurify();
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    const href = node.getAttribute('href') ?? '';
    if (!SAFE_LINK.test(href)) node.removeAttribute('href');
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const ALLOWED_TAGS = [
  ...[
    'p',
    'br',
    'hr',
    'h1',
    'h2',
    'h3',
    'h4',
    'h5',
    'h6',
    'blockquote',
    'ul',
    'ol',
    'li',
    'a',
    'strong',
    'em',
  ],
  ...['s', 'del', 'code', 'pre', 'table', 'thead', 'tbody', 'tr', 'th', 'td'],
];

/** The reply as sanitized nodes; code blocks get a copy button. */
export function renderMarkdown(text: string): DocumentFragment {
  const fragment = purify.sanitize(markdown.render(text), {
    ALLOWED_TAGS,
    ALLOWED_ATTR: ['href', 'target', 'rel', 'start'],
    RETURN_DOM_FRAGMENT: true,
  });
  for (const pre of Array.from(fragment.querySelectorAll('pre'))) {
    const copy = h('button', { type: 'button', class: 'copy', 'aria-label': 'Copy code' }, 'Copy');
    copy.addEventListener('click', () => {
      void navigator.clipboard?.writeText(pre.textContent ?? '').then(() => {
        copy.textContent = 'Copied';
        setTimeout(() => {
          copy.textContent = 'Copy';
        }, 1500);
      });
    });
    const wrap = h('div', { class: 'code' });
    pre.setAttribute('tabindex', '0'); // a scrollable block must be reachable by keyboard
    pre.replaceWith(wrap);
    wrap.append(copy, pre);
  }
  for (const table of Array.from(fragment.querySelectorAll('table'))) {
    const wrap = h('div', { class: 'table-wrap', tabindex: 0 });
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return fragment;
}
