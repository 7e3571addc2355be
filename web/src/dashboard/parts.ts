// What every dashboard page builds with: captioned tables and buttons that run an owner operation.
import { type Child, h } from '../dom.js';

export type Row = Record<string, unknown>;
/** Runs one owner operation, shows the host's answer and redraws the page. */
export type Act = (request: Row) => Promise<void>;

export function table(caption: string, headers: string[], rows: Child[][]): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted' }, `${caption}: none.`);
  return h(
    'div',
    { class: 'table-wrap', tabindex: 0 },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((title) => h('th', { scope: 'col' }, title)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((cells) =>
          h(
            'tr',
            {},
            cells.map((cell) => h('td', {}, cell)),
          ),
        ),
      ),
    ),
  );
}

export function actionButton(act: Act, label: string, request: Row): HTMLButtonElement {
  return h('button', { type: 'button', class: 'ghost small', onclick: () => void act(request) }, label);
}
