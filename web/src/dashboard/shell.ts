// The dashboard: every group at a glance, spend against budgets, tasks, the audit log, approvals, and the
// emergency stop. Every change is an owner operation (POST /api/ops), audited like the same change from the CLI.
// This is the frame every page shares (tabs, the stop button, the status line); each page is a module of its own.
import type { Api } from '../api.js';
import { type Child, h, replace } from '../dom.js';
import { approvals } from './approvals.js';
import { audit } from './audit.js';
import { overview } from './overview.js';
import type { Act, Row } from './parts.js';
import { spend } from './spend.js';
import { tasks } from './tasks.js';

export const PAGES = ['overview', 'spend', 'tasks', 'audit', 'approvals'] as const;
export type Page = (typeof PAGES)[number];

const views: Record<Page, (api: Api, act: Act) => Promise<Child[]>> = {
  overview,
  spend,
  tasks,
  audit,
  approvals,
};

export function mountDashboard(root: HTMLElement, api: Api, page: Page): () => void {
  const status = h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const body = h('main', { class: 'scroller' });
  const column = h('div', { class: 'column wide' });
  body.append(column);
  const stopButton = h('button', { type: 'button', class: 'danger' }, 'Emergency stop');
  let timer: number | undefined;

  const act = async (request: Row) => {
    const result = await api.op(request);
    status.textContent = result.text;
    await render();
  };
  stopButton.addEventListener('click', () => void act({ op: isStopped ? 'resume-all' : 'emergency-stop' }));
  let isStopped = false;

  replace(
    root,
    h(
      'header',
      { class: 'bar' },
      h('h1', {}, 'Dashboard'),
      h(
        'nav',
        { class: 'tabs', 'aria-label': 'Dashboard pages' },
        h('a', { href: '#/chat/main', class: 'button ghost' }, 'Chat'),
        PAGES.map((name) =>
          h(
            'a',
            { href: `#/dash/${name}`, class: 'tab', 'aria-current': name === page ? 'page' : null },
            name[0]?.toUpperCase() + name.slice(1),
          ),
        ),
      ),
      stopButton,
    ),
    body,
    h('footer', { class: 'composer-bar' }, status),
  );

  async function render(): Promise<void> {
    const overview = await api.get<{ emergencyStop: { by: string; at: number } | null }>(
      '/api/dashboard/overview',
    );
    isStopped = overview.emergencyStop !== null;
    stopButton.textContent = isStopped ? 'Resume all' : 'Emergency stop';
    stopButton.className = isStopped ? 'primary' : 'danger';
    const content = await views[page](api, act);
    replace(column, h('h2', {}, page[0]?.toUpperCase() + page.slice(1)), content);
  }

  void render().catch((error: Error) => {
    status.textContent = error.message;
  });
  // The overview follows the agents as they work; the other pages change only when the owner acts.
  if (page === 'overview') timer = window.setInterval(() => void render().catch(() => {}), 5000);
  return () => window.clearInterval(timer);
}
