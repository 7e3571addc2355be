// The local chat page's browser script (served as /app.js; plain modern JavaScript, no build step): the page's
// state, its token, notices and the composer, with the parts in local-page-render.ts and local-page-stream.ts.
// Security: user and assistant text only ever reaches the DOM as text nodes, never as HTML.
// Written as String.raw so backslashes reach the browser untouched; it must contain no backtick or dollar-brace.
import { RENDER_JS } from './local-page-render.js';
import { STREAM_JS } from './local-page-stream.js';

// biome-ignore lint/complexity/noUselessStringRaw: a backslash added later must still reach the browser untouched.
const PAGE_JS = String.raw`const TOKEN_KEY = 'warren.localToken';
const CHAT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
// A lost "stopped typing" must not leave the dots on forever.
const TYPING_TIMEOUT_MS = 120000;

const elements = {
  connection: document.getElementById('connection'),
  connectionLabel: document.getElementById('connection-label'),
  chatLabel: document.getElementById('chat-label'),
  scroller: document.getElementById('scroller'),
  notice: document.getElementById('notice'),
  empty: document.getElementById('empty'),
  messages: document.getElementById('messages'),
  typing: document.getElementById('typing'),
  composer: document.getElementById('composer'),
  input: document.getElementById('input'),
  send: document.getElementById('send'),
};

const chatId = new URLSearchParams(location.search).get('chat') || 'main';
const shown = new Map();
const awaitingEcho = new Map();
let memoryToken = null;
let token = takeToken();
let lastEventId = 0;
let isStopped = false;
let typingTimer = null;

// The token arrives in the fragment (never sent to a server or written to its logs). It moves to this tab's
// sessionStorage and leaves the address bar, so it is not bookmarked, shared or kept in history.
function takeToken() {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink) {
    memoryToken = fromLink;
    try {
      sessionStorage.setItem(TOKEN_KEY, fromLink);
    } catch {
      // Storage disabled: the token lives in memory for this page only.
    }
    history.replaceState(null, '', location.pathname + location.search);
  }
  if (memoryToken) return memoryToken;
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function forgetToken() {
  memoryToken = null;
  token = null;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing stored.
  }
}

function apiPath(kind) {
  return '/api/chats/' + encodeURIComponent(chatId) + '/' + kind;
}

function setConnection(state, label, detail) {
  elements.connection.dataset.state = state;
  elements.connectionLabel.textContent = label;
  elements.connection.title = detail || '';
}

function showNotice(title, parts) {
  const heading = document.createElement('strong');
  heading.textContent = title;
  const body = document.createElement('p');
  for (const part of parts) {
    if (typeof part === 'string') {
      body.append(part);
    } else {
      const code = document.createElement('code');
      code.textContent = part.code;
      body.append(code);
    }
  }
  elements.notice.replaceChildren(heading, body);
  elements.notice.hidden = false;
  lockComposer();
  updateEmpty();
}

function showMissingToken() {
  showNotice('This page needs its access link', [
    'Open the link that ', { code: 'warren start' }, ' printed. It ends in ', { code: '#token=…' },
    ', and the token stays in this tab only.',
  ]);
  setConnection('offline', 'Not connected');
}

function refuseToken() {
  isStopped = true;
  forgetToken();
  setTyping(false);
  showNotice('The access token was refused', [
    'Open the link that ', { code: 'warren start' }, ' printed most recently.',
  ]);
  setConnection('offline', 'Token refused');
}

function lockComposer() {
  elements.input.disabled = true;
  elements.send.disabled = true;
}

function updateEmpty() {
  elements.empty.hidden = elements.messages.children.length > 0 || !elements.notice.hidden;
}

function isNearBottom() {
  const scroller = elements.scroller;
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
}

function scrollToBottom() {
  elements.scroller.scrollTop = elements.scroller.scrollHeight;
}

// Follow new messages only when the reader is already at the bottom, not while they scroll back.
function keepingScroll(change) {
  const wasAtBottom = isNearBottom();
  change();
  if (wasAtBottom) scrollToBottom();
}

function showEvent(event) {
  lastEventId = Math.max(lastEventId, event.eventId);
  if (shown.has(event.eventId)) return;
  keepingScroll(() => {
    let item = awaitingEcho.get(event.eventId);
    if (item) {
      awaitingEcho.delete(event.eventId);
      item.classList.remove('pending');
      setMeta(item, event);
    } else {
      item = buildMessage(event);
      // Before any message of ours still on its way, so the list keeps the server's order.
      elements.messages.insertBefore(item, elements.messages.querySelector('.sending'));
    }
    shown.set(event.eventId, item);
  });
  if (event.role === 'assistant') setTyping(false);
  updateEmpty();
}

function setTyping(isTyping) {
  clearTimeout(typingTimer);
  keepingScroll(() => {
    elements.typing.hidden = !isTyping;
  });
  if (isTyping) typingTimer = setTimeout(() => setTyping(false), TYPING_TIMEOUT_MS);
}

function describeError(error) {
  if (error instanceof TypeError) return 'Warren is not reachable';
  return error && error.message ? error.message : String(error);
}

async function readError(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // Not JSON: fall back to the status.
  }
  return 'HTTP ' + response.status;
}

async function sendText(text) {
  const item = buildMessage({ role: 'user', senderName: 'You', text, at: Date.now() });
  item.classList.add('pending', 'sending');
  elements.messages.append(item);
  updateEmpty();
  scrollToBottom();
  try {
    const response = await fetch(apiPath('messages'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
      body: JSON.stringify({ text }),
    });
    if (response.status === 401) {
      refuseToken();
      throw new Error('the token was refused');
    }
    if (response.status !== 202) throw new Error(await readError(response));
    const body = await response.json();
    item.classList.remove('sending');
    // The stream echoes our own message; whichever arrives first, it is shown once.
    if (shown.has(body.eventId)) item.remove();
    else awaitingEcho.set(body.eventId, item);
  } catch (error) {
    item.classList.remove('sending', 'pending');
    item.classList.add('failed');
    const failure = document.createElement('div');
    failure.className = 'failure';
    failure.append('Not sent: ' + describeError(error));
    if (!isStopped) {
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.textContent = 'Retry';
      retry.addEventListener('click', () => {
        item.remove();
        sendText(text);
      });
      failure.append(retry);
    }
    item.append(failure);
  }
}

function autosize() {
  elements.input.style.height = 'auto';
  elements.input.style.height = elements.input.scrollHeight + 2 + 'px';
}

function updateSendButton() {
  elements.send.disabled = elements.input.disabled || elements.input.value.trim() === '';
}

function submit() {
  const text = elements.input.value;
  if (elements.input.disabled || text.trim() === '') return;
  elements.input.value = '';
  autosize();
  updateSendButton();
  sendText(text);
}

elements.input.addEventListener('input', () => {
  autosize();
  updateSendButton();
});
elements.input.addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter is a newline, and Enter that confirms an IME composition is left alone.
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
elements.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  submit();
});
// Pasting a fresh link into this tab changes only the fragment, which does not reload the page.
window.addEventListener('hashchange', () => {
  if (new URLSearchParams(location.hash.slice(1)).has('token')) {
    memoryToken = null;
    takeToken();
    location.reload();
  }
});

if (chatId !== 'main') elements.chatLabel.textContent = 'Local chat · ' + chatId;
if (!CHAT_ID_PATTERN.test(chatId)) {
  showNotice('No such chat name', [
    'A chat name is up to 64 lowercase letters, digits, - and _, as in ', { code: '?chat=main' }, '.',
  ]);
  setConnection('offline', 'Not connected');
} else if (!token) {
  showMissingToken();
} else {
  elements.input.disabled = false;
  updateSendButton();
  elements.input.focus();
  streamLoop();
}
`;

/** One script in one scope; the page's part last, so every constant exists before it starts the stream. */
export const APP_JS = ["'use strict';", RENDER_JS, STREAM_JS, PAGE_JS].join('\n');
