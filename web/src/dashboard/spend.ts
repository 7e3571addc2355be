// The dashboard's spend page: a chart of each group's cost per day (uPlot), the usage rows and the budgets.
import uPlot from 'uplot';
import type { Api } from '../api.js';
import { type Child, h } from '../dom.js';
import { table } from './parts.js';

export async function spend(api: Api): Promise<Child[]> {
  const data = await api.get<{
    from: string;
    currency: string;
    rows: Array<{
      day: string;
      groupFolder: string;
      inputTokens: number;
      outputTokens: number;
      cost: number;
      calls: number;
    }>;
    budgets: Array<{ folder: string; daily: number; monthly: number }>;
  }>('/api/dashboard/spend');
  const days: string[] = [];
  for (let at = Date.parse(`${data.from}T00:00:00Z`); days.length < 30; at += 86_400_000)
    days.push(new Date(at).toISOString().slice(0, 10));
  const folders = [...new Set(data.rows.map((row) => row.groupFolder))];
  const chart = h('div', {
    class: 'chart',
    role: 'img',
    'aria-label': `Spend per group per day since ${data.from}, ${data.currency}`,
  });
  const money = (amount: number) => `${amount.toFixed(2)} ${data.currency}`;
  if (folders.length > 0) {
    const series = folders.map((folder) =>
      days.map((day) => data.rows.find((row) => row.day === day && row.groupFolder === folder)?.cost ?? 0),
    );
    const palette = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#dc2626', '#0891b2'];
    requestAnimationFrame(() => {
      const width = Math.max(280, chart.clientWidth);
      new uPlot(
        {
          width,
          height: 220,
          scales: { x: { time: false } },
          axes: [{ values: (_, ticks) => ticks.map((tick) => days[tick]?.slice(5) ?? '') }, {}],
          series: [
            {},
            ...folders.map((folder, i) => ({
              label: folder,
              stroke: palette[i % palette.length],
              width: 2,
            })),
          ],
        },
        [days.map((_, i) => i), ...series],
        chart,
      );
    });
  }
  const budget = (folder: string) => data.budgets.find((row) => row.folder === folder);
  const limit = (amount: number | undefined) => (amount ? money(amount) : 'no limit');
  return [
    chart,
    table(
      `Usage since ${data.from}`,
      ['Day', 'Group', 'Calls', 'Input tokens', 'Output tokens', 'Cost', 'Daily budget'],
      data.rows.map((row) => [
        row.day,
        row.groupFolder,
        row.calls,
        row.inputTokens.toLocaleString(),
        row.outputTokens.toLocaleString(),
        money(row.cost),
        limit(budget(row.groupFolder)?.daily),
      ]),
    ),
    table(
      'Budgets',
      ['Group', 'Daily', 'Monthly'],
      data.budgets.map((row) => [row.folder, limit(row.daily), limit(row.monthly)]),
    ),
  ];
}
