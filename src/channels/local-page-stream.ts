// The local chat page's event stream: a part of its browser script (local-page-script.ts puts it together).
// It reads the SSE stream with fetch, shows what arrives and reconnects; the page's state and notices are the page's.
// Written as String.raw so backslashes reach the browser untouched; it must contain no backtick or dollar-brace.

export const STREAM_JS = String.raw`// Three missed 15 s keepalives mean the stream is dead even if the socket never said so.
const STALL_MS = 45000;
const MAX_BACKOFF_MS = 30000;
// Cuts the wait before the next reconnect short (back online, tab shown again).
let wake = null;

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

window.addEventListener('online', () => wake && wake());
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && wake) wake();
});
`;
