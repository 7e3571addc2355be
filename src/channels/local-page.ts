// The local chat page's markup, styles, icon and Content-Security-Policy (its script is in local-page-script.ts).

/** Only our own files may load; no inline code, no plugins, no framing, no form posts anywhere. */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function renderPage(assistantName: string): string {
  const name = escapeHtml(assistantName);
  const initial = escapeHtml(Array.from(assistantName.trim())[0]?.toUpperCase() ?? 'W');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="warren-assistant" content="${name}">
<title>${name}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/app.css">
<script type="module" src="/app.js"></script>
</head>
<body>
<header class="bar">
  <div class="who">
    <div class="avatar" aria-hidden="true">${initial}</div>
    <div class="names">
      <h1>${name}</h1>
      <div id="chat-label" class="sub">Local chat</div>
    </div>
  </div>
  <div id="connection" class="connection" data-state="connecting" role="status" aria-live="polite">
    <span class="dot"></span><span id="connection-label">Connecting…</span>
  </div>
</header>
<main id="scroller">
  <div class="column">
    <div id="notice" class="notice" role="alert" hidden></div>
    <p id="empty" class="empty" hidden>Say hello to ${name}.</p>
    <ol id="messages" class="messages"></ol>
    <div id="typing" class="typing" hidden aria-live="polite">
      <span class="dots" aria-hidden="true"><i></i><i></i><i></i></span>
      <span>${name} is typing</span>
    </div>
  </div>
</main>
<footer class="composer-bar">
  <form id="composer" class="composer" autocomplete="off">
    <textarea id="input" rows="1" placeholder="Message ${name}" aria-label="Message" disabled></textarea>
    <button id="send" class="send" type="submit" disabled>Send</button>
  </form>
  <div class="hint">Enter sends · Shift+Enter for a new line</div>
</footer>
</body>
</html>
`;
}

export const APP_CSS = `:root {
  color-scheme: light dark;
  --bg: #f4f5f7;
  --panel: #ffffff;
  --text: #1d2025;
  --muted: #6b7280;
  --border: #e2e5ea;
  --accent: #2f6f4f;
  --user: #2563eb;
  --user-text: #ffffff;
  --assistant: #ffffff;
  --ok: #16a34a;
  --warn: #d97706;
  --bad: #dc2626;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1115;
    --panel: #171a20;
    --text: #e6e8ec;
    --muted: #9aa3af;
    --border: #272c36;
    --accent: #3f8f68;
    --user: #3b72e6;
    --assistant: #1e222a;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  display: flex;
  flex-direction: column;
  background: var(--bg);
  color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
}
.bar {
  display: flex;
  align-items: center;
  justify-content: space-between;
  gap: 12px;
  padding: 10px 16px;
  background: var(--panel);
  border-bottom: 1px solid var(--border);
}
.who { display: flex; align-items: center; gap: 10px; min-width: 0; }
.avatar {
  flex: none;
  display: grid;
  place-items: center;
  width: 36px;
  height: 36px;
  border-radius: 50%;
  background: var(--accent);
  color: #fff;
  font-weight: 600;
}
.names { min-width: 0; }
h1 { margin: 0; font-size: 16px; font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.sub { font-size: 12px; color: var(--muted); }
.connection { display: flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); white-space: nowrap; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--warn); }
.connection[data-state="connected"] .dot { background: var(--ok); }
.connection[data-state="offline"] .dot { background: var(--bad); }
.connection[data-state="connecting"] .dot { animation: pulse 1.2s ease-in-out infinite; }
main { flex: 1; overflow-y: auto; }
.column { max-width: 760px; margin: 0 auto; padding: 16px 16px 8px; }
.messages { display: flex; flex-direction: column; gap: 4px; margin: 0; padding: 0; list-style: none; }
.message { display: flex; flex-direction: column; max-width: 82%; }
.message.user { align-self: flex-end; align-items: flex-end; }
.message.assistant { align-self: flex-start; align-items: flex-start; }
.bubble {
  padding: 8px 12px;
  border-radius: 16px;
  white-space: pre-wrap;
  overflow-wrap: anywhere;
  box-shadow: 0 1px 2px rgba(0, 0, 0, 0.06);
}
.user .bubble { background: var(--user); color: var(--user-text); border-bottom-right-radius: 4px; }
.assistant .bubble { background: var(--assistant); border: 1px solid var(--border); border-bottom-left-radius: 4px; }
.bubble a { color: inherit; text-decoration: underline; }
.meta { margin: 2px 8px 6px; font-size: 11px; color: var(--muted); }
.message.pending .bubble { opacity: 0.6; }
.message.failed .bubble { opacity: 0.8; outline: 2px solid var(--bad); outline-offset: 1px; }
.failure { margin: 0 8px 6px; font-size: 12px; color: var(--bad); }
.failure button {
  margin-left: 6px;
  padding: 1px 8px;
  border: 1px solid var(--bad);
  border-radius: 10px;
  background: transparent;
  color: var(--bad);
  font: inherit;
  cursor: pointer;
}
.typing { display: flex; align-items: center; gap: 8px; margin: 6px 2px; font-size: 12px; color: var(--muted); }
.typing[hidden], .notice[hidden], .empty[hidden] { display: none; }
.dots {
  display: inline-flex;
  gap: 3px;
  padding: 9px 12px;
  border-radius: 16px;
  border: 1px solid var(--border);
  background: var(--assistant);
}
.dots i { width: 6px; height: 6px; border-radius: 50%; background: var(--muted); animation: blink 1.2s infinite both; }
.dots i:nth-child(2) { animation-delay: 0.2s; }
.dots i:nth-child(3) { animation-delay: 0.4s; }
.empty { margin-top: 22vh; text-align: center; color: var(--muted); }
.notice {
  margin: 12vh auto 0;
  max-width: 520px;
  padding: 18px 20px;
  border: 1px solid var(--border);
  border-radius: 12px;
  background: var(--panel);
}
.notice strong { display: block; margin-bottom: 6px; font-size: 16px; }
.notice p { margin: 0; color: var(--muted); }
code {
  padding: 1px 5px;
  border-radius: 4px;
  background: var(--bg);
  border: 1px solid var(--border);
  font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
.composer-bar {
  padding: 10px 16px calc(8px + env(safe-area-inset-bottom));
  background: var(--panel);
  border-top: 1px solid var(--border);
}
.composer { display: flex; align-items: flex-end; gap: 8px; max-width: 760px; margin: 0 auto; }
textarea {
  flex: 1;
  min-height: 40px;
  max-height: 40vh;
  padding: 9px 14px;
  border: 1px solid var(--border);
  border-radius: 20px;
  background: var(--bg);
  color: var(--text);
  font: inherit;
  line-height: 1.4;
  resize: none;
}
textarea:focus { outline: 2px solid var(--user); outline-offset: -1px; border-color: transparent; }
.send {
  height: 40px;
  padding: 0 18px;
  border: 0;
  border-radius: 20px;
  background: var(--user);
  color: #fff;
  font: inherit;
  font-weight: 600;
  cursor: pointer;
}
.send:disabled { opacity: 0.4; cursor: default; }
.hint { max-width: 760px; margin: 4px auto 0; padding-left: 14px; font-size: 11px; color: var(--muted); }
@keyframes pulse { 50% { opacity: 0.3; } }
@keyframes blink { 0%, 80%, 100% { opacity: 0.25; } 40% { opacity: 1; } }
@media (prefers-reduced-motion: reduce) { * { animation: none !important; } }
@media (max-width: 520px) { .hint { display: none; } .message { max-width: 90%; } }
`;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="8" fill="#2f6f4f"/>
<path d="M7 24a9 9 0 0 1 18 0z" fill="#f4f5f7"/>
</svg>
`;

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}
