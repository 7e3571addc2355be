// Task runs through the group queue: a real host (temp SQLite, real scheduler and queue) with a fake agent runner.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner, type FakeRunnerOptions } from '../../test/fake-agent-runner.js';
import { startTestWarren, type TestWarren } from '../../test/harness.js';
import { databasePath } from '../app.js';
import { createCliOwnerOps } from '../cli/owner.js';
import { runTasksCommand } from '../cli/tasks.js';
import { type ContextMode, openStore, type Task, type TaskRun } from '../store/store.js';
import { createTaskOps } from './tasks.js';

let harness: TestWarren | null = null;
afterEach(async () => {
  await harness?.stop();
  harness = null;
});

async function start(options: FakeRunnerOptions = {}, env: Record<string, string> = {}): Promise<TestWarren> {
  harness = await startTestWarren({ runner: new FakeAgentRunner(options), env });
  return harness;
}

function createTask(
  h: TestWarren,
  folder: string,
  options: {
    contextMode?: ContextMode;
    preCheck?: string;
    schedule?: string;
    kind?: 'once' | 'interval';
  } = {},
): Task {
  const group = h.warren.store.groups.byFolder(folder) ?? h.addGroup(folder);
  const ops = createTaskOps({ store: h.warren.store, now: Date.now, defaultTimezone: 'UTC' });
  const created = ops.create({
    group,
    chat: { channel: 'fake', chatId: folder },
    prompt: 'send the pipeline briefing',
    scheduleKind: options.kind ?? 'interval',
    schedule: options.schedule ?? '1h',
    createdBy: 'test',
    ...(options.contextMode ? { contextMode: options.contextMode } : {}),
    ...(options.preCheck ? { preCheck: options.preCheck } : {}),
  });
  if (!created.ok) throw new Error(created.error);
  return created.value;
}

/** What `warren tasks run-now` does: queue a run now and wake the scheduler. */
function runNow(h: TestWarren, task: Task): void {
  const ops = createTaskOps({ store: h.warren.store, now: Date.now, defaultTimezone: 'UTC' });
  expect(ops.runNow(task).ok).toBe(true);
  h.warren.scheduler.kick();
}

const runsOf = (h: TestWarren, task: Task): TaskRun[] => h.warren.store.tasks.runsOf(task.id, 50).reverse();
const lastRunStatus = (h: TestWarren, task: Task) => runsOf(h, task).at(-1)?.status;

describe('task runs through the group queue', () => {
  it("join the group's running agent like a follow-up, and the result arrives in the chat", async () => {
    const h = await start();
    h.addGroup('team');
    h.channel.receive({ chatId: 'team', text: 'hi' });
    await h.runner.waitForSessions(1);
    const session = h.runner.sessions[0];
    session?.reply('hello', 'chat-session');
    await eventually(() => h.channel.textsTo('team').length === 1);

    const task = createTask(h, 'team');
    runNow(h, task);
    await eventually(() => session?.prompts.length === 2, 2000, 'task prompt in the running agent');
    expect(session?.prompts[1]?.prompt).toMatch(/<scheduled_task id="\w+" name="send the pipeline briefing"/);
    expect(lastRunStatus(h, task)).toBe('running');
    session?.reply('Pipeline: 3 deals closing this week', 'chat-session');
    await eventually(() => h.channel.textsTo('team').length === 2);
    expect(h.channel.textsTo('team')[1]).toBe('Pipeline: 3 deals closing this week');
    expect(runsOf(h, task)[0]).toMatchObject({
      status: 'succeeded',
      result: 'Pipeline: 3 deals closing this week',
    });
    expect(h.runner.sessions).toHaveLength(1);
  });

  it("an isolated run waits for the busy agent, gets a fresh session, and leaves the group's session alone", async () => {
    const h = await start();
    h.addGroup('team');
    h.channel.receive({ chatId: 'team', text: 'a long question' });
    await h.runner.waitForSessions(1);
    const chat = h.runner.sessions[0];
    const task = createTask(h, 'team', { contextMode: 'isolated' });
    runNow(h, task);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Never two agents for one group: the isolated run waits while the chat's agent works.
    expect(h.runner.sessions).toHaveLength(1);
    expect(chat?.prompts).toHaveLength(1);

    chat?.reply('the long answer', 'chat-session');
    await h.runner.waitForSessions(2);
    expect(chat?.stopReasons).toEqual(['other work of this group is waiting']);
    const isolated = h.runner.sessions[1];
    expect(isolated?.request.sessionId).toBeNull();
    expect(isolated?.request.prompt).toContain('fresh session');
    isolated?.reply('weekly report', 'isolated-session');
    await eventually(() => h.channel.textsTo('team').includes('weekly report'));
    expect(h.warren.store.groups.session(h.warren.store.groups.byFolder('team')?.id ?? -1)).toBe(
      'chat-session',
    );
    await eventually(() => isolated?.isClosed === true, 2000, 'the isolated agent to stop');
    expect(isolated?.stopReasons).toEqual(['isolated task run finished']);
  });

  it('count against the global cap of agents', async () => {
    const h = await start({}, { WARREN_MAX_AGENTS: '1' });
    h.addGroup('a');
    h.channel.receive({ chatId: 'a', text: 'busy work' });
    await h.runner.waitForSessions(1);
    const task = createTask(h, 'b');
    runNow(h, task);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.runner.sessions).toHaveLength(1);
    expect(lastRunStatus(h, task)).toBe('queued');
    h.runner.sessions[0]?.reply('done with a');
    await h.runner.waitForSessions(2);
    expect(h.runner.sessions[0]?.isClosed).toBe(true);
    expect(h.runner.sessions[1]?.request.group.folder).toBe('b');
  });

  it('a pre-check that finds nothing to do makes no model turn, and the agent started for it stops', async () => {
    const replies: string[] = [];
    const h = await start({
      preCheck: () => 'skip',
      autoReply: (prompt) => {
        replies.push(prompt);
        return 'should never be sent';
      },
    });
    const task = createTask(h, 'team', { preCheck: 'echo \'{"run": false}\'' });
    runNow(h, task);
    await h.runner.waitForSessions(1);
    expect(h.runner.sessions[0]?.request.preCheck).toEqual({
      script: 'echo \'{"run": false}\'',
      timeoutMs: 60_000,
    });
    await eventually(() => lastRunStatus(h, task) === 'skipped', 2000, 'a skipped run');
    await eventually(() => h.runner.sessions[0]?.isClosed === true, 2000, 'the agent to stop');
    expect(replies).toEqual([]);
    expect(h.channel.sent).toEqual([]);
  });

  it('a pre-check that says run hands the prompt to the model', async () => {
    const h = await start({ preCheck: () => 'run', autoReply: () => 'two new leads' });
    const task = createTask(h, 'team', { preCheck: 'echo \'{"run": true}\'' });
    runNow(h, task);
    await eventually(() => h.channel.textsTo('team').includes('two new leads'));
    expect(lastRunStatus(h, task)).toBe('succeeded');
  });

  it('a failing pre-check is reported in the chat and recorded, not ignored', async () => {
    const h = await start(
      { preCheck: () => ({ error: 'exited with code 127: curl: command not found' }) },
      { WARREN_MAX_ATTEMPTS: '1' },
    );
    const task = createTask(h, 'team', { preCheck: 'curl https://example.com' });
    runNow(h, task);
    await eventually(() => h.channel.textsTo('team').length === 1, 3000, 'the failure notice');
    expect(h.channel.textsTo('team')[0]).toMatch(
      /⚠️ Scheduled task “send the pipeline briefing” \(\w+\) failed: pre-check failed: exited with code 127: curl: command not found/,
    );
    expect(runsOf(h, task)[0]).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^pre-check failed/),
    });
  });

  it('a run whose agent crashes is retried in a new agent', async () => {
    // Task retries wait 30× the base delay: 600 ms here.
    const h = await start({}, { WARREN_MAX_ATTEMPTS: '2', WARREN_RETRY_BASE_MS: '20' });
    const task = createTask(h, 'team');
    runNow(h, task);
    await h.runner.waitForSessions(1);
    h.runner.sessions[0]?.crash('exit code 137');
    await h.runner.waitForSessions(2, 5000);
    expect(h.runner.sessions[1]?.request.prompt).toContain('run="attempt 2"');
    h.runner.sessions[1]?.reply('made it');
    await eventually(() => h.channel.textsTo('team').includes('made it'));
    expect(runsOf(h, task).map((run) => [run.status, run.attempt])).toEqual([
      ['failed', 1],
      ['succeeded', 2],
    ]);
  });

  it('a task comes due on its timer and runs with no message at all', async () => {
    const h = await start({ autoReply: () => 'good morning' });
    const task = createTask(h, 'team', { kind: 'once', schedule: new Date(Date.now() + 300).toISOString() });
    h.warren.scheduler.kick();
    await eventually(() => h.channel.textsTo('team').includes('good morning'), 5000, 'the task result');
    expect(h.warren.store.tasks.byId(task.id)?.status).toBe('done');
  });

  it('`warren tasks run-now` from another process wakes the running host at once', async () => {
    const h = await start({ autoReply: () => 'briefing on demand' });
    const task = createTask(h, 'team');
    // The CLI opens its own connection to the same database; only the signal file tells the host.
    const cliStore = openStore(databasePath(h.dataDir));
    try {
      const ops = createCliOwnerOps({
        store: cliStore,
        config: {
          dataDir: h.dataDir,
          assistantName: 'Warren',
          timezone: 'UTC',
          diskQuotaMb: 4096,
          mountAllowlistPath: path.join(h.dataDir, 'no-allowlist.json'),
          groupDailyBudget: 5,
          groupMonthlyBudget: 50,
          currency: 'USD',
        },
        protectedPaths: [],
        now: Date.now,
      });
      const outcome = await runTasksCommand(['run-now', task.id], { store: cliStore, ops, now: Date.now() });
      expect(outcome.code).toBe(0);
    } finally {
      cliStore.close();
    }
    await eventually(
      () => h.channel.textsTo('team').includes('briefing on demand'),
      5000,
      'the run-now result',
    );
    expect(runsOf(h, task).map((run) => [run.trigger, run.status])).toEqual([['manual', 'succeeded']]);
  });

  it('a restart during a run does not repeat it; the chat is told', async () => {
    const first = await startTestWarren();
    const task = createTask(first, 'team');
    runNow(first, task);
    await first.runner.waitForSessions(1);
    await first.stop(); // the run never finished
    harness = await startTestWarren({
      dataDir: first.dataDir,
      runner: new FakeAgentRunner({ autoReply: () => 'x' }),
    });
    const h = harness;
    await eventually(() => h.channel.textsTo('team').length === 1, 2000, 'the interrupted notice');
    expect(h.channel.textsTo('team')[0]).toMatch(
      /was interrupted: Warren stopped while this run was under way/,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(h.runner.sessions).toHaveLength(0);
    expect(runsOf(h, task).map((run) => run.status)).toEqual(['interrupted']);
  });
});
