import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeModelApi, type FakeRequest, startFakeModelApi } from '../../test/fake-model-api.js';
import type { Config } from '../config.js';
import { silentLogger } from '../log.js';
import { openStore, type Store } from '../store/store.js';
import type { AgentEvent } from '../types.js';
import { createAgentProxy, dayIn, type RunState } from './agent-proxy.js';
import type { CredentialProxy } from './credential-proxy.js';

const KEY = 'sk-ant-host-key';
/** Per million tokens: an output token costs 10, an input token 1, so what a call costs is easy to know. */
const PRICES = { 'claude-test': { input: 1, output: 10, cacheRead: 0.1, cacheWrite: 1.25 } };
const OUTPUT_TOKENS = 200;
/** The fake answers as the API would: every token of input from the body (at most its bytes), the full output. */
const honestUsage = (request: FakeRequest) => ({
  usage: { input_tokens: Math.ceil(request.rawBody.length / 4), output_tokens: OUTPUT_TOKENS },
});
const callCost = (bytes: number) => (Math.ceil(bytes / 4) * 1 + OUTPUT_TOKENS * 10) / 1e6;
const BODY = JSON.stringify({
  model: 'claude-test',
  max_tokens: OUTPUT_TOKENS,
  messages: [{ role: 'user', content: 'hi' }],
});

let directory: string;
let fake: FakeModelApi;
let store: Store;
let proxy: CredentialProxy | undefined;
let now: number;
let events: AgentEvent[];
const runs = new Map<string, RunState>();

type Budgets = Partial<
  Pick<Config, 'groupDailyBudget' | 'groupMonthlyBudget' | 'dailyBudget' | 'monthlyBudget'>
>;

async function start(budgets: Budgets, timezone = 'UTC'): Promise<void> {
  proxy = createAgentProxy({
    config: {
      groupDailyBudget: 0,
      groupMonthlyBudget: 0,
      dailyBudget: 0,
      monthlyBudget: 0,
      ...budgets,
      modelBaseUrl: fake.url,
      modelPrices: PRICES,
      currency: 'USD',
      timezone,
    },
    credential: { kind: 'api-key', apiKey: KEY },
    log: silentLogger(),
    store,
    audit: (entry) => store.audit.record(entry, now),
    now: () => now,
    runs,
  });
  for (const group of ['alpha', 'beta']) {
    store.groups.create({ folder: group, name: group, trigger: 'always', now });
    runs.set(group, { runId: `run-${group}`, budgetRefused: false, emit: (event) => events.push(event) });
    await proxy.listen(group, path.join(directory, `${group}.sock`));
  }
}

function call(group: string): Promise<{ status: number; message: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: path.join(directory, `${group}.sock`), method: 'POST', path: '/v1/messages' },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => {
          const error = (JSON.parse(text) as { error?: { message?: string } }).error;
          resolve({ status: res.statusCode ?? 0, message: error?.message ?? '' });
        });
      },
    );
    req.on('error', reject);
    req.end(BODY);
  });
}

const spentBy = (group: string | null) => store.usage.spent(group, '2000-01-01', '2100-01-01');
const notices = () => events.filter((event) => event.type === 'agent-notice').map((event) => event.text);

beforeEach(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'warren-budget-'));
  fake = await startFakeModelApi({ expectedApiKey: KEY });
  fake.setDefault(honestUsage);
  store = openStore(':memory:');
  now = Date.parse('2026-12-06T12:00:00Z');
  events = [];
  runs.clear();
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  store.close();
  await fake.close();
  await rm(directory, { recursive: true, force: true });
});

describe('money budgets at the credential proxy', () => {
  it('prices each call from its usage and refuses the first call once the day’s spend reaches the budget', async () => {
    const cost = callCost(BODY.length);
    const budget = cost * 3.5;
    await start({ groupDailyBudget: budget });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call('alpha')).status);
    // Allowed while under the line (0, 1, 2 and 3 calls spent), refused from the first call past it.
    expect(statuses).toEqual([200, 200, 200, 200, 403, 403]);
    expect(spentBy('alpha')).toBeCloseTo(cost * 4, 9);
    expect(spentBy('alpha') - budget).toBeLessThanOrEqual(cost);
    expect(fake.requests).toHaveLength(4);
    const refusal = await call('alpha');
    expect(refusal.message).toMatch(
      /this group has spent its daily budget of 0\.01 USD .* renews at midnight \(UTC\)/,
    );
    // Another group has its own budget.
    expect((await call('beta')).status).toBe(200);
  });

  it('holds calls in flight against the budget, so calls at the same time overshoot by at most one', async () => {
    fake.setDefault((request) => ({ ...honestUsage(request), delayMs: 300 }));
    const cost = callCost(BODY.length);
    const budget = cost * 3.5;
    await start({ groupDailyBudget: budget });
    const results = await Promise.all(Array.from({ length: 10 }, () => call('alpha')));
    const allowed = results.filter((result) => result.status === 200).length;
    expect(allowed).toBeGreaterThanOrEqual(3);
    expect(allowed).toBeLessThanOrEqual(4);
    expect(spentBy('alpha')).toBeLessThanOrEqual(budget + cost);
    // Once they settled, what was held is released: the group is refused for what it spent, not what it held.
    expect(spentBy('alpha')).toBeCloseTo(allowed * cost, 9);
  });

  for (const [timezone, lastMinute] of [
    ['Europe/Berlin', '2026-12-06T22:59:00Z'],
    ['America/Los_Angeles', '2026-12-07T07:59:00Z'],
  ] as const) {
    it(`turns the day at midnight in ${timezone}, not in UTC`, async () => {
      await start({ groupDailyBudget: callCost(BODY.length) / 2 }, timezone);
      now = Date.parse(lastMinute);
      expect((await call('alpha')).status).toBe(200);
      expect((await call('alpha')).status).toBe(403);
      now += 30_000; // 23:59:30 local: still the same day
      expect((await call('alpha')).status).toBe(403);
      now += 31_000; // 00:00:01 local: a new day and a new budget
      expect((await call('alpha')).status).toBe(200);
      expect(store.usage.byDay('2000-01-01', 'alpha').map((row) => row.day)).toEqual([
        '2026-12-06',
        '2026-12-07',
      ]);
    });
  }

  it('tells the chat once per refusal period, however often the agent runs into the budget', async () => {
    await start({ groupDailyBudget: callCost(BODY.length) / 2 });
    await call('alpha');
    for (let i = 0; i < 3; i++) expect((await call('alpha')).status).toBe(403);
    expect(notices()).toHaveLength(1);
    expect(notices()[0]).toMatch(/^⚠️ I cannot answer: this group has spent its daily budget of 0\.00 USD/);
    expect(runs.get('alpha')?.budgetRefused).toBe(true);
    // Every refusal is audited (folded per minute into one counted row).
    const audited = store.audit.recent(10).filter((entry) => entry.action === 'model-api');
    expect(audited.map((entry) => entry.count)).toEqual([3]);
    now += 24 * 3600_000; // the next day: a new period, spent again, told again
    await call('alpha');
    expect((await call('alpha')).status).toBe(403);
    expect(notices()).toHaveLength(2);
  });

  it('keeps a monthly budget per group that renews on the 1st of the owner’s month', async () => {
    const cost = callCost(BODY.length);
    await start({ groupMonthlyBudget: cost * 1.5 }, 'Asia/Tokyo');
    now = Date.parse('2026-12-01T00:30:00+09:00');
    await call('alpha');
    now = Date.parse('2026-12-20T12:00:00+09:00');
    await call('alpha');
    now = Date.parse('2026-12-31T23:59:00+09:00');
    const refused = await call('alpha');
    expect(refused.status).toBe(403);
    expect(refused.message).toMatch(/monthly budget .* this month\)\. It renews on the 1st \(Asia\/Tokyo\)/);
    now = Date.parse('2027-01-01T00:00:30+09:00');
    expect((await call('alpha')).status).toBe(200);
  });

  it('keeps a budget over all groups together', async () => {
    const cost = callCost(BODY.length);
    await start({ dailyBudget: cost * 1.5, groupDailyBudget: 100 });
    await call('alpha');
    await call('beta');
    const refused = await call('beta');
    expect(refused.status).toBe(403);
    expect(refused.message).toMatch(/all groups together have spent the daily budget/);
    expect(spentBy(null)).toBeCloseTo(cost * 2, 9);
  });

  it("uses a group's own budget over the default, and 0 as no limit", async () => {
    const cost = callCost(BODY.length);
    await start({ groupDailyBudget: cost / 2 });
    store.groups.setBudget('alpha', { daily: 0, monthly: null });
    store.groups.setBudget('beta', { daily: cost * 1.5, monthly: null });
    for (let i = 0; i < 3; i++) expect((await call('alpha')).status).toBe(200);
    expect([(await call('beta')).status, (await call('beta')).status, (await call('beta')).status]).toEqual([
      200, 200, 403,
    ]);
  });

  it('charges a model without a price at the highest rate of the table', async () => {
    await start({});
    fake.setDefault({ model: 'claude-unheard-of-9', usage: { input_tokens: 1_000_000, output_tokens: 0 } });
    await call('alpha');
    // The dearest input in the list prices is 15 per million (Opus 4): a budget errs toward refusing.
    expect(spentBy('alpha')).toBeCloseTo(15, 6);
  });
});

describe('dayIn', () => {
  it("gives the owner's calendar day", () => {
    expect(dayIn('Pacific/Kiritimati')(Date.parse('2026-12-31T10:00:00Z'))).toBe('2027-01-01');
    expect(dayIn('Pacific/Pago_Pago')(Date.parse('2027-01-01T10:00:00Z'))).toBe('2026-12-31');
  });
});
