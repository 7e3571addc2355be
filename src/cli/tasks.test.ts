import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerGroup } from '../intake/registration.js';
import { openStore, type Store, type Task } from '../store/store.js';
import { createTaskOps } from '../tasks/tasks.js';
import { createCliOwnerOps } from './owner.js';
import { formatStatus } from './status.js';
import { runTasksCommand } from './tasks.js';

const NOW = Date.parse('2025-06-02T06:00:00Z');
let dataDir: string;
let store: Store;
let briefing: Task;

beforeEach(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'warren-tasks-cli-'));
  store = openStore(':memory:');
  const group = registerGroup(
    store,
    dataDir,
    {
      folder: 'sales',
      name: 'sales',
      chat: { channel: 'telegram', chatId: '42' },
      isDirect: true,
      trigger: 'always',
    },
    NOW,
  );
  const ops = createTaskOps({
    store,
    now: () => NOW,
    defaultTimezone: 'Europe/Berlin',
    newTaskId: () => 'brief001',
  });
  const created = ops.create({
    group,
    chat: { channel: 'telegram', chatId: '42' },
    prompt: 'Send me the pipeline briefing',
    name: 'pipeline briefing',
    scheduleKind: 'cron',
    schedule: '0 9 * * 1-5',
    createdBy: 'agent:sales',
  });
  if (!created.ok) throw new Error(created.error);
  briefing = created.value;
});

afterEach(() => {
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const tasks = (...args: string[]) => {
  const ops = createCliOwnerOps({
    store,
    config: {
      dataDir,
      assistantName: 'Warren',
      timezone: 'Europe/Berlin',
      diskQuotaMb: 4096,
      mountAllowlistPath: path.join(dataDir, 'no-allowlist.json'),
      groupDailyBudget: 5,
      groupMonthlyBudget: 50,
      currency: 'USD',
    },
    protectedPaths: [],
    now: () => NOW,
  });
  return runTasksCommand(args, { store, ops, now: NOW });
};
/** The audit trail, oldest first. */
const audits = () => store.audit.recent(100).reverse();

describe('warren tasks', () => {
  it('is summed up in warren status with the time to the next run', async () => {
    // 06:00 UTC on a Monday is 08:00 in Berlin: the 09:00 briefing is an hour away.
    expect(formatStatus(store, NOW)).toMatch(/Tasks: 1 active, 0 paused, next run in 60m/);
  });

  it('lists what will run when, in each task’s own timezone', async () => {
    const { code, text } = await tasks();
    expect(code).toBe(0);
    expect(text).toMatch(/^Tasks \(1\):\n {2}ID {8}GROUP {2}STATUS {2}SCHEDULE/);
    expect(text).toContain(
      "brief001  sales  active  cron '0 9 * * 1-5' (Europe/Berlin)  Mon 2025-06-02 09:00 (in 60m)  -",
    );
  });

  it('shows one task with its recent runs: when, how long, status, tokens and result', async () => {
    const runId = store.tasks.queueManual(briefing.id, NOW - 3_600_000) as number;
    store.tasks.start(runId, 'b1', 'agent-1', NOW - 3_600_000);
    store.tasks.finishRun(
      runId,
      {
        status: 'succeeded',
        result: 'Pipeline: 3 deals closing',
        tokens: { inputTokens: 1200, outputTokens: 340 },
      },
      null,
      NOW - 3_600_000 + 12_300,
    );
    const { text } = await tasks('show', 'brief001');
    expect(text).toContain('Task brief001 “pipeline briefing”');
    expect(text).toContain('results to telegram:42');
    expect(text).toContain("schedule   cron '0 9 * * 1-5' (Europe/Berlin)");
    expect(text).toMatch(
      /Mon 2025-06-02 07:00\s+manual\s+succeeded\s+12\.3s\s+1200\/340 tokens\s+Pipeline: 3 deals closing/,
    );
    expect((await tasks()).text).toMatch(/succeeded 60m ago/);
  });

  it('pauses, resumes, runs now and cancels, audits each, and wakes a running host', async () => {
    expect(await tasks('pause', 'brief001')).toEqual({ code: 0, text: 'Paused task brief001.' });
    expect(existsSync(path.join(dataDir, 'signals', 'tasks'))).toBe(true);
    expect(await tasks('pause', 'brief001')).toEqual({
      code: 1,
      text: 'task brief001 is paused, not active',
    });
    expect((await tasks('resume', 'brief001')).text).toMatch(
      /Resumed task brief001; next run Mon 2025-06-02 09:00/,
    );
    expect((await tasks('run-now', 'brief001')).code).toBe(0);
    expect((await tasks()).text).toContain('queued now');
    expect(await tasks('run-now', 'brief001')).toMatchObject({
      code: 1,
      text: expect.stringMatching(/already has a run/),
    });
    expect((await tasks('cancel', 'brief001')).code).toBe(0);
    expect((await tasks()).text).toMatch(/^No tasks/);
    expect((await tasks('list', '--all')).text).toContain('cancelled');
    expect(audits().map((entry) => [entry.action, entry.decision, entry.actor])).toEqual([
      ['task-pause', 'allow', 'cli'],
      ['task-pause', 'deny', 'cli'],
      ['task-resume', 'allow', 'cli'],
      ['task-run-now', 'allow', 'cli'],
      ['task-run-now', 'deny', 'cli'],
      ['task-cancel', 'allow', 'cli'],
    ]);
  });

  it('says how to use it when the arguments are wrong', async () => {
    expect((await tasks('pause')).code).toBe(2);
    expect((await tasks('explode', 'brief001')).code).toBe(2);
    expect(await tasks('show', 'nope')).toMatchObject({
      code: 1,
      text: expect.stringMatching(/no task 'nope'/),
    });
    // A group that does not exist is a refusal (1), not a usage error.
    expect(await tasks('list', '--group', 'nobody')).toMatchObject({ code: 1, text: /no group 'nobody'/ });
  });
});
