// The local chat page's messages as DOM nodes: a part of its browser script (local-page-script.ts puts it together).
// Security: user and assistant text only ever reaches the DOM as text nodes, never as HTML.
// Written as String.raw so backslashes reach the browser untouched; it must contain no backtick or dollar-brace.

export const RENDER_JS = String.raw`const LINK_PATTERN = /https?:\/\/[^\s<>"'()\[\]{}]+/g;

function formatTime(at) {
  const date = new Date(at);
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === new Date().toDateString()) return time;
  return date.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ', ' + time;
}

// Text nodes plus http(s) links built with textContent: nothing in a message is ever parsed as HTML.
function fillText(target, text) {
  let index = 0;
  for (const match of text.matchAll(LINK_PATTERN)) {
    const url = match[0].replace(/[.,;:!?]+$/, '');
    target.append(text.slice(index, match.index));
    const link = document.createElement('a');
    link.href = url;
    link.textContent = url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    target.append(link);
    index = match.index + url.length;
  }
  target.append(text.slice(index));
}

function buildMessage(event) {
  const item = document.createElement('li');
  item.className = 'message ' + (event.role === 'user' ? 'user' : 'assistant');
  const bubble = document.createElement('div');
  bubble.className = 'bubble';
  fillText(bubble, event.text);
  const meta = document.createElement('div');
  meta.className = 'meta';
  item.append(bubble, meta);
  setMeta(item, event);
  return item;
}

function setMeta(item, event) {
  const meta = item.querySelector('.meta');
  const showsName = event.role === 'assistant' || event.senderName !== 'You';
  meta.textContent = (showsName ? event.senderName + ' · ' : '') + formatTime(event.at);
  meta.title = new Date(event.at).toLocaleString();
}
`;
