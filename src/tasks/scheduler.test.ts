import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import { createWork, type Work, type WorkOutcome, type WorkQueue } from '../queue/work.js';
import type { Group } from '../store/records.js';
import { openStore, type Store, type Task } from '../store/store.js';
import { createScheduler, MAX_TIMER_MS, type Scheduler, type Timers } from './scheduler.js';
import { createTaskOps, type NewTaskInput } from './tasks.js';

/** A clock and timers the test moves by hand. */
class FakeClock implements Timers {
  now = Date.parse('2025-06-02T08:00:00Z');
  private nextId = 1;
  readonly pending = new Map<number, { at: number; callback: () => void }>();

  set(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, callback });
    return id;
  }

  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** When the one armed timer fires (the scheduler never has more than one). */
  get armedAt(): number | null {
    expect(this.pending.size).toBeLessThanOrEqual(1);
    return [...this.pending.values()][0]?.at ?? null;
  }

  /** Moves time to `to`, firing due timers in order. */
  async advanceTo(to: number): Promise<void> {
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, timer]) => timer.at <= to)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].callback();
      await settled();
    }
    this.now = to;
  }
}

/** Lets the scheduler's deferred kicks run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));
const at = (iso: string) => Date.parse(iso);

let root: string;
let store: Store;
let clock: FakeClock;
let group: Group;
let woken: number[];
const schedulers: Scheduler[] = [];

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'warren-scheduler-'));
  store = openStore(path.join(root, 'warren.db'));
  clock = new FakeClock();
  woken = [];
  group = registerGroup(
    store,
    root,
    {
      folder: 'team',
      name: 'team',
      chat: { channel: 'fake', chatId: 'team' },
      isDirect: false,
      trigger: 'always',
    },
    clock.now,
  );
});

afterEach(() => {
  for (const scheduler of schedulers.splice(0)) scheduler.stop();
  store.close();
  rmSync(root, { recursive: true, force: true });
});

/** A scheduler with the work queue that runs its slots, as a host wires them. */
type TestScheduler = Scheduler & { work: WorkQueue };
let nextBatchId = 'b0';
const claimed = new Map<string, Work>();

function startScheduler(options: { maxAttempts?: number; isRecovering?: boolean } = {}): TestScheduler {
  const scheduler = createScheduler({
    store,
    log: silentLogger(),
    now: () => clock.now,
    timers: clock,
    onWork: (groupId) => woken.push(groupId),
  });
  const work = createWork({
    store,
    log: silentLogger(),
    now: () => clock.now,
    newId: () => nextBatchId,
    contextLimit: 10,
    timezone: 'UTC',
    maxAttempts: options.maxAttempts ?? 1,
    // Task retries wait 30× the base: 60 s for the first.
    retryBaseMs: 2_000,
    onOutbox: () => {},
    onTaskChange: () => scheduler.kick(),
  });
  schedulers.push(scheduler);
  if (options.isRecovering) work.recover();
  scheduler.start();
  return Object.assign(scheduler, { work });
}

function createTask(input: Partial<NewTaskInput> & Pick<NewTaskInput, 'scheduleKind' | 'schedule'>): Task {
  const ops = createTaskOps({ store, now: () => clock.now, defaultTimezone: 'UTC' });
  const created = ops.create({
    group,
    chat: { channel: 'fake', chatId: 'team' },
    prompt: 'send the pipeline briefing',
    createdBy: 'test',
    ...input,
  });
  if (!created.ok) throw new Error(created.error);
  return created.value;
}

const runsOf = (task: Task) => store.tasks.runsOf(task.id, 100).reverse();
const taskNow = (task: Task) => store.tasks.byId(task.id) as Task;
const notices = () =>
  store.outbox
    .list({ limit: 100 })
    .reverse()
    .map((item) => item.text);

/** What the group queue does with a due run: claim it for an agent, then settle it as the agent ended it. */
function runQueued(scheduler: TestScheduler, batchId: string, agentRunId = 'agent-run-1'): string {
  nextBatchId = batchId;
  const work = scheduler.work.claim(group.id, agentRunId);
  if (!work) throw new Error('no task run is queued');
  claimed.set(batchId, work);
  return work.prompt;
}

async function settle(scheduler: TestScheduler, batchId: string, outcome: WorkOutcome): Promise<void> {
  scheduler.work.settle([claimed.get(batchId) as Work], outcome);
  await settled();
}

describe('scheduler', () => {
  it('arms one timer for the earliest due task instead of polling', async () => {
    createTask({ scheduleKind: 'cron', schedule: '0 9 * * *' });
    const hourly = createTask({ scheduleKind: 'interval', schedule: '1h' }); // due 09:00 too
    const early = createTask({ scheduleKind: 'interval', schedule: '20m' }); // due 08:20
    startScheduler();
    expect(clock.armedAt).toBe(at('2025-06-02T08:20:00Z'));

    await clock.advanceTo(at('2025-06-02T08:20:00Z'));
    expect(runsOf(early).map((run) => run.status)).toEqual(['queued']);
    expect(woken).toEqual([group.id]);
    // The queued run blocks its own task; the next wake is the 09:00 pair.
    expect(clock.armedAt).toBe(at('2025-06-02T09:00:00Z'));
    await clock.advanceTo(at('2025-06-02T09:00:00Z'));
    expect(runsOf(hourly)).toHaveLength(1);
    expect(taskNow(hourly).nextRunAt).toBe(at('2025-06-02T10:00:00Z'));
  });

  it('waits longer than setTimeout can in steps, without running early', async () => {
    const far = createTask({ scheduleKind: 'once', schedule: '2025-08-01T08:00:00Z' });
    startScheduler();
    const due = at('2025-08-01T08:00:00Z');
    const fires: number[] = [];
    while (runsOf(far).length === 0) {
      const next = clock.armedAt as number;
      expect(next - clock.now).toBeLessThanOrEqual(MAX_TIMER_MS);
      fires.push(next);
      await clock.advanceTo(next);
    }
    // Two capped steps of ~24.8 days, then the due time itself: never early.
    const start = at('2025-06-02T08:00:00Z');
    expect(fires).toEqual([start + MAX_TIMER_MS, start + 2 * MAX_TIMER_MS, due]);
    expect(runsOf(far)[0]?.createdAt).toBe(due);
  });

  it('claims a slot once, even when two schedulers share the database', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '30m' });
    clock.now = at('2025-06-02T08:30:00Z');
    startScheduler();
    startScheduler();
    expect(runsOf(task)).toHaveLength(1);
    expect(runsOf(task)[0]?.scheduledFor).toBe(at('2025-06-02T08:30:00Z'));
  });

  it('computes the next run from the scheduled time, so a slow run does not make the interval drift', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '30m' });
    const scheduler = startScheduler();
    await clock.advanceTo(at('2025-06-02T08:30:00Z'));
    const prompt = runQueued(scheduler, 'b1');
    expect(prompt).toContain('send the pipeline briefing');
    await clock.advanceTo(at('2025-06-02T08:47:00Z'));
    await settle(scheduler, 'b1', { status: 'succeeded', result: 'briefing sent' });
    expect(taskNow(task).nextRunAt).toBe(at('2025-06-02T09:00:00Z'));
    expect(clock.armedAt).toBe(at('2025-06-02T09:00:00Z'));
    const [run] = runsOf(task);
    expect(run).toMatchObject({
      status: 'succeeded',
      result: 'briefing sent',
      startedAt: at('2025-06-02T08:30:00Z'),
    });
    expect(run?.endedAt).toBe(at('2025-06-02T08:47:00Z'));
  });

  it('never overlaps a run that outlasts its interval; the slots it missed run once when it ends', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '30m' });
    const scheduler = startScheduler();
    await clock.advanceTo(at('2025-06-02T08:30:00Z'));
    runQueued(scheduler, 'slow');
    await clock.advanceTo(at('2025-06-02T10:10:00Z')); // slots 09:00, 09:30 and 10:00 pass meanwhile
    expect(runsOf(task)).toHaveLength(1);
    await settle(scheduler, 'slow', { status: 'succeeded', result: 'done at last' });
    const runs = runsOf(task);
    expect(runs.map((run) => [run.status, new Date(run.scheduledFor).toISOString()])).toEqual([
      ['succeeded', '2025-06-02T08:30:00.000Z'],
      ['queued', '2025-06-02T09:00:00.000Z'],
    ]);
    expect(taskNow(task).nextRunAt).toBe(at('2025-06-02T10:30:00Z'));
  });

  it('after downtime runs a missed task once on start, then keeps to its schedule', async () => {
    const hourly = createTask({ scheduleKind: 'interval', schedule: '1h' }); // due 09:00
    // Created at 10:00 in Berlin: its first run is tomorrow 09:00 (07:00Z).
    const daily = createTask({ scheduleKind: 'cron', schedule: '0 9 * * *', timezone: 'Europe/Berlin' });
    // The host is down from before 07:00 until 13:20 three days later.
    clock.now = at('2025-06-05T13:20:00Z');
    startScheduler({ isRecovering: true });
    expect(runsOf(hourly).map((run) => new Date(run.scheduledFor).toISOString())).toEqual([
      '2025-06-02T09:00:00.000Z',
    ]);
    expect(runsOf(daily).map((run) => new Date(run.scheduledFor).toISOString())).toEqual([
      '2025-06-03T07:00:00.000Z',
    ]);
    expect(taskNow(hourly).nextRunAt).toBe(at('2025-06-05T14:00:00Z'));
    expect(taskNow(daily).nextRunAt).toBe(at('2025-06-06T07:00:00Z'));
  });

  it('does not run a slot twice when the host restarts during the run, and says so in the chat', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '1h' });
    const first = startScheduler();
    await clock.advanceTo(at('2025-06-02T09:00:00Z'));
    runQueued(first, 'b1');
    first.stop(); // the host dies with the run under way

    clock.now = at('2025-06-02T09:05:00Z');
    const second = startScheduler({ isRecovering: true });
    expect(runsOf(task).map((run) => run.status)).toEqual(['interrupted']);
    expect(second.work.next(group.id)).toBeNull();
    expect(notices().join('\n')).toMatch(
      /“send the pipeline briefing” \(\w+\) was interrupted.*not repeated by itself/,
    );
    // A late report from the dead run changes nothing.
    await settle(second, 'b1', { status: 'succeeded', result: 'late' });
    expect(runsOf(task)[0]?.status).toBe('interrupted');
    // The schedule goes on at the next slot.
    await clock.advanceTo(at('2025-06-02T10:00:00Z'));
    expect(runsOf(task).map((run) => run.status)).toEqual(['interrupted', 'queued']);
  });

  it('retries a failed run, then reports it; repeated failures pause the task and say so', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '1h', name: 'briefing' });
    const scheduler = startScheduler({ maxAttempts: 2 });
    for (let slot = 1; slot <= 3; slot++) {
      await clock.advanceTo(clock.armedAt as number);
      runQueued(scheduler, `s${slot}a1`);
      await settle(scheduler, `s${slot}a1`, {
        status: 'failed',
        error: 'model overloaded',
        isRetryable: true,
      });
      // The retry waits 60 s, then runs the same slot again: it comes due through the queue's wake, like a
      // message retry; the scheduler's timer waits for new slots only, and none is claimed while a run is open.
      expect(scheduler.work.due().nextDueAt).toBe(clock.now + 60_000);
      expect(clock.armedAt).toBeNull();
      await clock.advanceTo(clock.now + 60_000);
      const retryPrompt = runQueued(scheduler, `s${slot}a2`);
      expect(retryPrompt).toContain('run="attempt 2"');
      await settle(scheduler, `s${slot}a2`, {
        status: 'failed',
        error: 'model overloaded',
        isRetryable: true,
      });
      expect(notices()).toHaveLength(slot);
    }
    const [first, , third] = notices();
    expect(first).toMatch(
      /⚠️ Scheduled task “briefing” \(\w+\) failed after 2 attempts: model overloaded\. Next run: /,
    );
    expect(third).toMatch(/⏸️ .*failed 3 times in a row, so I paused it.*warren tasks resume/);
    expect(taskNow(task)).toMatchObject({ status: 'paused', consecutiveFailures: 3 });
    expect(runsOf(task).map((run) => run.status)).toEqual(Array(6).fill('failed'));
    expect(clock.armedAt).toBeNull();
  });

  it('does not retry what trying again cannot fix', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '1h' });
    const scheduler = startScheduler({ maxAttempts: 3 });
    await clock.advanceTo(at('2025-06-02T09:00:00Z'));
    runQueued(scheduler, 'b1');
    await settle(scheduler, 'b1', { status: 'failed', error: 'daily budget used up', isRetryable: false });
    expect(runsOf(task).map((run) => run.status)).toEqual(['failed']);
    expect(notices()[0]).toMatch(/failed: daily budget used up/);
  });

  it('ends a run the pre-check skipped without a notice, and finishes a once-task', async () => {
    const task = createTask({
      scheduleKind: 'once',
      schedule: '2025-06-02T09:00',
      preCheck: 'echo \'{"run": false}\'',
    });
    const scheduler = startScheduler();
    await clock.advanceTo(at('2025-06-02T09:00:00Z'));
    runQueued(scheduler, 'b1', 'r1');
    expect(claimed.get('b1')?.preCheck).toEqual({
      script: 'echo \'{"run": false}\'',
      timeoutMs: 60_000,
    });
    await settle(scheduler, 'b1', { status: 'skipped', detail: null });
    expect(runsOf(task)[0]).toMatchObject({ status: 'skipped', result: 'the pre-check found nothing to do' });
    expect(taskNow(task).status).toBe('done');
    expect(notices()).toEqual([]);
  });

  it("records the tokens of the run's own model calls, not other containers' or earlier turns'", async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '1h' });
    const scheduler = startScheduler();
    await clock.advanceTo(at('2025-06-02T09:00:00Z'));
    runQueued(scheduler, 'b1', 'agent-A');
    const usage = (runId: string, minutes: number, tokens: number) =>
      store.usage.record({
        groupFolder: 'team',
        at: at('2025-06-02T09:00:00Z') + minutes * 60_000,
        day: '2025-06-02',
        model: 'claude',
        inputTokens: tokens,
        outputTokens: tokens / 10,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        runId,
      });
    usage('agent-A', -5, 9000); // a chat turn of the same container before the run
    usage('agent-A', 1, 1000);
    usage('agent-A', 2, 2000);
    usage('agent-B', 1, 7000); // another container
    await clock.advanceTo(at('2025-06-02T09:03:00Z'));
    await settle(scheduler, 'b1', { status: 'succeeded', result: 'ok' });
    expect(runsOf(task)[0]).toMatchObject({ inputTokens: 3000, outputTokens: 300 });
  });

  it('pausing cancels what is queued; resuming does not make up the slots missed meanwhile', async () => {
    const task = createTask({ scheduleKind: 'interval', schedule: '1h' });
    const ops = createTaskOps({ store, now: () => clock.now, defaultTimezone: 'UTC' });
    const scheduler = startScheduler();
    await clock.advanceTo(at('2025-06-02T09:00:00Z'));
    expect(ops.pause(taskNow(task)).ok).toBe(true);
    scheduler.kick();
    await settled();
    expect(runsOf(task).map((run) => run.status)).toEqual(['cancelled']);
    expect(clock.armedAt).toBeNull();
    clock.now = at('2025-06-02T13:30:00Z');
    expect(ops.resume(taskNow(task)).ok).toBe(true);
    expect(taskNow(task).nextRunAt).toBe(at('2025-06-02T14:00:00Z'));
  });
});
