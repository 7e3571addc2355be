// The chat view: history from the store (paged), live messages and typing over SSE, Markdown replies, stop, new
// conversation, switching between the owner's local chats, and file uploads into the group's folder.
import type { Api } from './api.js';
import { append, formatTime, h, replace } from './dom.js';
import { renderMarkdown } from './markdown.js';

interface Item {
  key: string;
  role: 'user' | 'assistant';
  senderName: string;
  text: string;
  at: number;
  cursor?: string;
}
interface HistoryPage {
  items: Item[];
  hasMore: boolean;
  group: string | null;
}

export function mountChat(root: HTMLElement, api: Api, chatId: string, assistant: string): () => void {
  const abort = new AbortController();
  const seen = new Set<string>();
  let oldest: string | null = null;
  let group: string | null = null;
  let isBusy = false;

  const list = h('ol', { class: 'messages' });
  const log = h('div', { role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages' }, list);
  const older = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Show older messages');
  const typing = h('div', { class: 'typing', hidden: true }, `${assistant} is working…`);
  const status = h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const input = h('textarea', { rows: 1, placeholder: `Message ${assistant}`, 'aria-label': 'Message' });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
  const stop = h('button', { type: 'button', class: 'danger', disabled: true }, 'Stop');
  const fileInput = h('input', { type: 'file', id: 'upload', class: 'visually-hidden' });
  const fileLabel = h('label', { for: 'upload', class: 'button ghost' }, 'Upload');
  const fresh = h('button', { type: 'button', class: 'ghost' }, 'New conversation');
  const picker = h('select', { 'aria-label': 'Chat' });
  const form = h('form', { class: 'composer' }, input, send, stop);
  const scroller = h('main', { class: 'scroller' }, h('div', { class: 'column' }, older, log, typing));

  replace(
    root,
    h(
      'header',
      { class: 'bar' },
      h('h1', {}, assistant),
      picker,
      h(
        'nav',
        { class: 'actions', 'aria-label': 'Chat actions' },
        fresh,
        fileLabel,
        fileInput,
        h('a', { href: '#/dash/overview', class: 'button ghost' }, 'Dashboard'),
      ),
    ),
    scroller,
    h('footer', { class: 'composer-bar' }, status, form),
  );

  const say = (text: string) => {
    status.textContent = text;
  };
  const setBusy = (busy: boolean) => {
    isBusy = busy;
    typing.hidden = !busy;
    stop.disabled = !busy || group === null;
  };

  function bubble(item: Item): HTMLLIElement {
    const body = h('div', { class: 'body' });
    if (item.role === 'assistant') body.append(renderMarkdown(item.text));
    else body.append(h('p', {}, item.text));
    const who = item.role === 'assistant' ? assistant : item.senderName || 'You';
    return h(
      'li',
      { class: `message ${item.role}`, 'data-key': item.key },
      h(
        'div',
        { class: 'meta' },
        `${who} · `,
        h('time', { datetime: new Date(item.at).toISOString() }, formatTime(item.at)),
      ),
      body,
    );
  }

  const isAtBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  function addLive(item: Item): void {
    if (seen.has(item.key)) return;
    seen.add(item.key);
    const stick = isAtBottom() || item.role === 'user';
    list.append(bubble(item));
    if (item.role === 'assistant') setBusy(false);
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  async function loadOlder(): Promise<void> {
    const page = await api.get<HistoryPage>(
      `/api/chats/${chatId}/history${oldest ? `?before=${oldest}` : ''}`,
    );
    group = page.group;
    stop.disabled = !isBusy || group === null;
    const fresh = page.items.filter((item) => !seen.has(item.key)).reverse();
    for (const item of fresh) seen.add(item.key);
    const first = list.firstChild;
    const height = scroller.scrollHeight;
    for (const item of fresh) list.insertBefore(bubble(item), first);
    oldest = page.items.at(-1)?.cursor ?? oldest;
    older.hidden = !page.hasMore;
    if (first) scroller.scrollTop += scroller.scrollHeight - height;
    else scroller.scrollTop = scroller.scrollHeight;
  }

  async function listen(): Promise<void> {
    // Reconnects with a pause; the history fills what a gap missed.
    while (!abort.signal.aborted) {
      try {
        await api.stream(`/api/chats/${chatId}/events`, abort.signal, (event, data) => {
          if (event === 'message') addLive(JSON.parse(data) as Item);
          else if (event === 'typing') setBusy((JSON.parse(data) as { isTyping: boolean }).isTyping);
        });
      } catch {
        if (abort.signal.aborted) return;
        say('Reconnecting…');
        await new Promise((resolve) => setTimeout(resolve, 2000));
        say('');
      }
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (text.trim() === '') return;
    send.disabled = true;
    api
      .post(`/api/chats/${chatId}/messages`, { text })
      .then(() => {
        input.value = '';
        setBusy(true);
        say('');
      })
      .catch((error: Error) => say(`Not sent: ${error.message}`))
      .finally(() => {
        send.disabled = false;
        input.focus();
      });
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener('click', async () => {
    if (!group) return;
    const result = await api.op({ op: 'stop-turn', folder: group });
    say(result.text);
    if (result.ok) setBusy(false);
  });
  fresh.addEventListener('click', async () => {
    if (!group) return say('This chat has no group yet.');
    say((await api.op({ op: 'new-session', folder: group })).text);
  });
  fileInput.addEventListener('change', async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    say(`Uploading ${file.name}…`);
    try {
      say((await api.upload(chatId, file)).text);
    } catch (error) {
      say(`Upload failed: ${(error as Error).message}`);
    }
    fileInput.value = '';
  });
  older.addEventListener('click', () => void loadOlder().catch((error: Error) => say(error.message)));
  picker.addEventListener('change', () => {
    location.hash = `#/chat/${picker.value}`;
  });

  void api.get<Array<{ chatId: string; group: string | null }>>('/api/chats').then((chats) => {
    const ids = chats.some((chat) => chat.chatId === chatId) ? chats : [...chats, { chatId, group: null }];
    for (const chat of ids) {
      const label = chat.group ? `${chat.chatId} (${chat.group})` : chat.chatId;
      append(picker, h('option', { value: chat.chatId, selected: chat.chatId === chatId }, label));
    }
  });
  // The stream first, so nothing said while the history loads is missed; both are merged by key.
  void listen();
  void loadOlder().catch((error: Error) => say(`History unavailable: ${error.message}`));
  input.focus();
  return () => abort.abort();
}
