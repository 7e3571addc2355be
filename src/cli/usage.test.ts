import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../store/store.js';
import { formatUsage } from './usage.js';

let store: Store;
const NOW = Date.parse('2026-12-06T10:00:00Z');
const config = {
  timezone: 'Europe/Berlin',
  currency: 'EUR',
  groupDailyBudget: 2,
  groupMonthlyBudget: 0,
  dailyBudget: 0,
  monthlyBudget: 100,
};

function spend(groupFolder: string, day: string, cost: number, tokens = 1000): void {
  const at = Date.parse(`${day}T12:00:00Z`);
  const usage = { inputTokens: tokens, outputTokens: tokens / 10, cacheReadTokens: 0, cacheWriteTokens: 0 };
  store.usage.record({ groupFolder, at, day, model: 'claude-sonnet-4-5', ...usage, cost });
}

beforeEach(() => {
  store = openStore(':memory:');
  for (const folder of ['sales', 'family'])
    store.groups.create({ folder, name: folder, trigger: 'always', now: NOW });
  store.groups.setBudget('sales', { daily: 5, monthly: 40 });
  spend('sales', '2026-12-06', 1.25);
  spend('sales', '2026-12-06', 0.5, 3000);
  spend('sales', '2026-12-02', 2);
  spend('family', '2026-12-06', 0.1);
  spend('family', '2026-11-20', 7);
  spend('family', '2026-10-01', 3); // more than 30 days ago
});
afterEach(() => store.close());

describe('warren usage', () => {
  it('prints spend per group and day for the last 30 days, then today and this month against each budget', () => {
    const text = formatUsage(store, { isMonthly: false, now: NOW, config });
    expect(text).toBe(
      [
        'Spend per day, the last 30 days (EUR; days in Europe/Berlin):',
        'DAY         GROUP   CALLS  INPUT  OUTPUT  COST',
        '2026-11-20  family      1  1,000     100  7.00',
        '2026-12-02  sales       1  1,000     100  2.00',
        '2026-12-06  family      1  1,000     100  0.10',
        '2026-12-06  sales       2  4,000     400  1.75',
        '',
        'Budgets (today is 2026-12-06):',
        'GROUP       TODAY  DAILY BUDGET  THIS MONTH  MONTHLY BUDGET',
        'sales        1.75          5.00        3.75           40.00',
        'family       0.10          2.00        0.10        no limit',
        'all groups   1.85      no limit        3.85          100.00',
      ].join('\n'),
    );
  });

  it('sums per month with --month, and shows only one group with --group', () => {
    const text = formatUsage(store, { group: 'family', isMonthly: true, now: NOW, config });
    const lines = text.split('\n');
    expect(lines.slice(1, 5)).toEqual([
      'MONTH    GROUP   CALLS  INPUT  OUTPUT  COST',
      '2026-10  family      1  1,000     100  3.00',
      '2026-11  family      1  1,000     100  7.00',
      '2026-12  family      1  1,000     100  0.10',
    ]);
    expect(text).not.toContain('sales');
    expect(text).not.toContain('all groups');
  });
});
