// The owner's window: the token from the link, then a hash router between the chat and the dashboard pages.
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { createApi, takeToken } from './api.js';
import { mountChat } from './chat.js';
import { mountDashboard, PAGES, type Page } from './dashboard/shell.js';
import { h, replace } from './dom.js';

const root = document.getElementById('app') as HTMLElement;
const assistant =
  document.querySelector<HTMLMetaElement>('meta[name="warren-assistant"]')?.content || 'Warren';
const token = takeToken();
let unmount: () => void = () => {};

function route(): void {
  unmount();
  if (!token) {
    replace(
      root,
      h(
        'main',
        { class: 'notice' },
        h('h1', {}, 'Open the link Warren printed'),
        h('p', {}, '`warren start` prints a link with the access token (…/#token=…). Open that one.'),
      ),
    );
    return;
  }
  const api = createApi(token);
  const dash = /^#\/dash\/(\w+)$/.exec(location.hash)?.[1];
  if (dash && (PAGES as readonly string[]).includes(dash)) {
    unmount = mountDashboard(root, api, dash as Page);
    document.title = `Dashboard · ${assistant}`;
    return;
  }
  const chatId = /^#\/chat\/([a-z0-9][a-z0-9_-]{0,63})$/.exec(location.hash)?.[1] ?? 'main';
  unmount = mountChat(root, api, chatId, assistant);
  document.title = `${assistant} · ${chatId}`;
}

window.addEventListener('hashchange', route);
route();
