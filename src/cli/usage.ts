// `warren usage`: what each group spent on the model per day (or month), and where it stands against its budgets.
import type { Command } from 'commander';
import type { Config } from '../config.js';
import { dayIn } from '../sandbox/agent-proxy.js';
import type { Store, UsageRow } from '../store/store.js';
import type { Cli, CliHost } from './program.js';

type UsageConfig = Pick<
  Config,
  'timezone' | 'currency' | 'groupDailyBudget' | 'groupMonthlyBudget' | 'dailyBudget' | 'monthlyBudget'
>;

const DAY_MS = 86_400_000;

/** Columns padded to their widest cell: the first `left` (names) read left to right, numbers line up right. */
function table(header: string[], rows: string[][], left: number): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (row: string[]) =>
    row.map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].map((text) => text.trimEnd());
}

/** Spend per group and day over the last 30 days (or per month over the last 12), then today and this month. */
export function formatUsage(
  store: Store,
  options: { group?: string; isMonthly: boolean; now: number; config: UsageConfig },
): string {
  const { config, group, isMonthly, now } = options;
  const dayOf = dayIn(config.timezone);
  const today = dayOf(now);
  const month = today.slice(0, 7);
  const money = (amount: number) => amount.toFixed(2);
  const limit = (amount: number) => (amount > 0 ? money(amount) : 'no limit');
  const from = isMonthly ? `${dayOf(now - 365 * DAY_MS).slice(0, 7)}-01` : dayOf(now - 29 * DAY_MS);
  const rows = new Map<string, UsageRow>();
  for (const row of store.usage.byDay(from, group ?? null)) {
    const key = `${isMonthly ? row.day.slice(0, 7) : row.day} ${row.groupFolder}`;
    const sum = rows.get(key);
    if (!sum) rows.set(key, { ...row, day: isMonthly ? row.day.slice(0, 7) : row.day });
    else {
      for (const field of ['inputTokens', 'outputTokens', 'cost', 'calls'] as const) sum[field] += row[field];
    }
  }
  const count = (n: number) => n.toLocaleString('en-US');
  const spendRows = [...rows.values()].map((row) => [
    row.day,
    row.groupFolder,
    count(row.calls),
    count(row.inputTokens),
    count(row.outputTokens),
    money(row.cost),
  ]);
  const period = isMonthly ? 'month, the last 12 months' : 'day, the last 30 days';
  const lines = [`Spend per ${period} (${config.currency}; days in ${config.timezone}):`];
  if (spendRows.length === 0) lines.push('  nothing spent');
  else
    lines.push(
      ...table([isMonthly ? 'MONTH' : 'DAY', 'GROUP', 'CALLS', 'INPUT', 'OUTPUT', 'COST'], spendRows, 2),
    );

  const groups = store.groups.list().filter((each) => !group || each.folder === group);
  const budgetRows = groups.map(({ folder }) => {
    const own = store.groups.budget(folder);
    return [
      folder,
      money(store.usage.spent(folder, today, today)),
      limit(own?.daily ?? config.groupDailyBudget),
      money(store.usage.spent(folder, `${month}-01`, today)),
      limit(own?.monthly ?? config.groupMonthlyBudget),
    ];
  });
  if (!group) {
    const all = (fromDay: string) => money(store.usage.spent(null, fromDay, today));
    budgetRows.push([
      'all groups',
      all(today),
      limit(config.dailyBudget),
      all(`${month}-01`),
      limit(config.monthlyBudget),
    ]);
  }
  lines.push('', `Budgets (today is ${today}):`);
  lines.push(...table(['GROUP', 'TODAY', 'DAILY BUDGET', 'THIS MONTH', 'MONTHLY BUDGET'], budgetRows, 1));
  return lines.join('\n');
}

export function registerUsage(program: Command, cli: Cli, host: CliHost): void {
  program
    .command('usage')
    .description(
      'what each group spent on the model, per day (or month), and where it stands against its budgets',
    )
    .option('--group <folder>', 'only this group')
    .option('--month', 'per calendar month, the last 12 months')
    .action(
      cli.action((options: { group?: string; month?: boolean }) =>
        host.withStore((store, config) => {
          if (options.group && !store.groups.byFolder(options.group))
            return { code: 1, text: `no group '${options.group}' (see \`warren groups list\`)` };
          const text = formatUsage(store, {
            ...options,
            isMonthly: options.month ?? false,
            now: host.now(),
            config,
          });
          return { code: 0, text };
        }),
      ),
    );
}
