// The dashboard's audit page: the audit log, filtered by group, kind, denials and time, and exported as JSON lines.
import type { Api } from '../api.js';
import { type Child, formatTime, h, replace } from '../dom.js';
import { type Row, table } from './parts.js';

export async function audit(api: Api): Promise<Child[]> {
  const form = h('form', { class: 'filters' });
  const group = h('input', { name: 'group', 'aria-label': 'Group', placeholder: 'group' });
  const kind = h('input', { name: 'kind', 'aria-label': 'Kind', placeholder: 'kind (action)' });
  const denied = h('input', { type: 'checkbox', name: 'denied', id: 'denied' });
  const since = h('input', { type: 'datetime-local', name: 'since', 'aria-label': 'Since' });
  const results = h('div', {});
  const exportLink = h('button', { type: 'button', class: 'ghost' }, 'Export JSON lines');
  form.append(
    group,
    kind,
    h('label', { for: 'denied' }, denied, ' Denials only'),
    since,
    h('button', { type: 'submit', class: 'primary' }, 'Filter'),
    exportLink,
  );
  let rows: Row[] = [];
  const load = async () => {
    const params = new URLSearchParams();
    if (group.value) params.set('group', group.value);
    if (kind.value) params.set('kind', kind.value);
    if (denied.checked) params.set('denied', '1');
    if (since.value) params.set('since', String(new Date(since.value).getTime()));
    rows = await api.get<Row[]>(`/api/dashboard/audit?${params}`);
    replace(
      results,
      table(
        'Audit log',
        ['When', 'Group', 'Actor', 'Action', 'Decision', 'Count', 'Detail'],
        rows.map((row) => [
          formatTime(row.at as number),
          String(row.groupFolder ?? '—'),
          String(row.actor),
          String(row.action),
          h('span', { class: `decision ${row.decision}` }, String(row.decision)),
          String(row.count),
          h('code', {}, JSON.stringify(row.detail)),
        ]),
      ),
    );
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void load();
  });
  exportLink.addEventListener('click', () => {
    const blob = new Blob(
      rows.map((row) => `${JSON.stringify(row)}\n`),
      { type: 'application/x-ndjson' },
    );
    const link = h('a', { href: URL.createObjectURL(blob), download: 'warren-audit.jsonl' });
    link.click();
    URL.revokeObjectURL(link.href);
  });
  await load();
  return [form, results];
}
