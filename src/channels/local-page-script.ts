// The local chat page's browser script (served as /app.js; plain modern JavaScript, no build step).
// Security: user and assistant text only ever reaches the DOM as text nodes, never as HTML.
// Written as String.raw so backslashes reach the browser untouched; it must contain no backtick or dollar-brace.

export const APP_JS = String.raw`'use strict';

const TOKEN_KEY = 'warren.localToken';
const CHAT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const LINK_PATTERN = /https?:\/\/[^\s<>"'()\[\]{}]+/g;
// Three missed 15 s keepalives mean the stream is dead even if the socket never said so.
const STALL_MS = 45000;
const MAX_BACKOFF_MS = 30000;
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
let wake = null;

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

function isChatEvent(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    Number.isSafeInteger(value.eventId) &&
    (value.role === 'user' || value.role === 'assistant') &&
    typeof value.senderName === 'string' &&
    typeof value.text === 'string' &&
    typeof value.at === 'number'
  );
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

function createSseParser(onEvent) {
  let buffer = '';
  let name = 'message';
  let id = null;
  let data = [];
  return (chunk) => {
    buffer += chunk;
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const rawLine of lines) {
      const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
      if (line === '') {
        if (data.length > 0) onEvent({ name, id, data: data.join('\n') });
        name = 'message';
        id = null;
        data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
    }
  };
}

function handleSseEvent(sse) {
  let payload;
  try {
    payload = JSON.parse(sse.data);
  } catch {
    return;
  }
  if (sse.name === 'message' && isChatEvent(payload)) showEvent(payload);
  else if (sse.name === 'typing' && payload && typeof payload.isTyping === 'boolean') setTyping(payload.isTyping);
}

// EventSource cannot send an Authorization header, so the stream is read with fetch.
async function readStream(onOpen) {
  const controller = new AbortController();
  let stallTimer = null;
  const armStallTimer = () => {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => controller.abort(), STALL_MS);
  };
  armStallTimer();
  try {
    const response = await fetch(apiPath('events') + '?after=' + lastEventId, {
      headers: { authorization: 'Bearer ' + token },
      cache: 'no-store',
      signal: controller.signal,
    });
    if (response.status === 401) return 'unauthorized';
    if (response.status !== 200 || !response.body) throw new Error(await readError(response));
    onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parse = createSseParser(handleSseEvent);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'ended';
      armStallTimer();
      parse(value);
    }
  } finally {
    clearTimeout(stallTimer);
    controller.abort();
  }
}

function sleep(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wake = null;
      resolve();
    };
    const timer = setTimeout(done, ms);
    wake = done;
  });
}

// Reconnects with jittered exponential backoff, resuming after the last event this page has shown.
async function streamLoop() {
  let failures = 0;
  while (!isStopped) {
    setConnection('connecting', failures === 0 ? 'Connecting…' : 'Reconnecting…');
    let reason = 'the stream ended';
    try {
      const outcome = await readStream(() => {
        failures = 0;
        setConnection('connected', 'Connected');
        updateEmpty();
      });
      if (outcome === 'unauthorized') {
        refuseToken();
        return;
      }
    } catch (error) {
      reason = describeError(error);
    }
    setTyping(false);
    failures += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
    setConnection('offline', 'Offline, retrying in ' + Math.round(delay / 1000) + ' s', reason);
    await sleep(delay);
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
window.addEventListener('online', () => wake && wake());
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && wake) wake();
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
