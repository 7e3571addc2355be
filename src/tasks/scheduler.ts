// The scheduler: one timer for the next due task, the atomic claim of each run, and what happens when a run ends.

import { backoffMs } from '../backoff.js';
import type { Logger } from '../log.js';
import { formatInstant } from '../queue/prompt.js';
import type { Store, Task, TaskRun } from '../store/store.js';
import type { QueuedTaskRun, StartedTaskRun, TaskRunOutcome, TaskWorkSource } from '../types.js';
import { nextRunAfter } from './schedule.js';
import { formatTaskPrompt } from './tasks.js';

/** Timer functions, injected so tests drive the clock. */
export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** setTimeout fires at once for delays past 2^31-1 ms (~24.8 days): longer waits are re-armed in steps. */
export const MAX_TIMER_MS = 2_147_483_647;
/** A recurring task whose runs fail this many times in a row (after retries) is paused, and the chat is told. */
export const PAUSE_AFTER_FAILURES = 3;
/** Task retries wait longer than message retries: 30× the base delay, doubling (1 min, 2 min with the defaults). */
export function taskRetryDelayMs(baseMs: number, attempt: number): number {
  return backoffMs(attempt, { baseMs: baseMs * 30, maxMs: 30 * 60_000 });
}

/** What task_runs keeps of a result; the whole reply went to the chat. */
const RESULT_SUMMARY_CHARS = 500;

export interface SchedulerDeps {
  store: Store;
  log: Logger;
  now(): number;
  timers?: Timers;
  /** A group has a task run due: wake its queue. Must not throw. */
  onWork(groupId: number): void;
  /** A notice was queued in the outbox. Must not throw. */
  onOutbox(): void;
  /** Attempts per scheduled slot (the first run plus retries). */
  maxAttempts: number;
  retryDelayMs(attempt: number): number;
  pauseAfterFailures?: number;
}

export interface Scheduler extends TaskWorkSource {
  /** Ends runs a dead host left running as interrupted, and tells their chats. Call before the queue resumes. */
  recover(): void;
  /** Claims what is due (a slot missed while the host was down runs once) and arms the timer. */
  start(): void;
  /** Something changed (a task was created, changed, or a run ended): look again soon. Never throws. */
  kick(): void;
  stop(): void;
  /** When the timer will next fire (for status and tests). */
  nextWakeAt(): number | null;
}

export function createScheduler(deps: SchedulerDeps): Scheduler {
  const log = deps.log.child({ module: 'scheduler' });
  const timers = deps.timers ?? realTimers;
  const pauseAfter = deps.pauseAfterFailures ?? PAUSE_AFTER_FAILURES;
  const { store } = deps;
  let timer: unknown = null;
  let wakeAt: number | null = null;
  let isStarted = false;
  let isStopped = false;
  let isKickPending = false;

  const label = (task: Task) => `“${task.name}” (${task.id})`;
  const notice = (task: Task, key: string, text: string) => ({
    idempotencyKey: key,
    channel: task.chat.channel,
    chatId: task.chat.chatId,
    text,
    kind: 'notice' as const,
    now: deps.now(),
  });

  function claimDue(now: number): void {
    for (const task of store.tasks.due(now)) {
      let next: number | null;
      try {
        next = nextRunAfter(task.schedule, task.nextRunAt ?? now, now);
      } catch (error) {
        // A schedule that was valid when stored but no longer computes (e.g. a timezone gone from the system).
        log.error({ err: error, task: task.id }, 'cannot compute the next run; pausing the task');
        store.tasks.update(
          task.id,
          { status: 'paused', statusReason: `schedule error: ${(error as Error).message}` },
          now,
        );
        continue;
      }
      const runId = store.tasks.claimSlot(task, next, now);
      if (runId === null) continue;
      const missedMs = now - (task.nextRunAt ?? now);
      log.info({ task: task.id, group: task.groupFolder, runId, missedMs, next }, 'task run claimed');
    }
  }

  function arm(now: number): void {
    if (timer !== null) timers.clear(timer);
    timer = null;
    wakeAt = store.tasks.nextWakeAt(now);
    if (wakeAt === null || isStopped) return;
    // Capped: a far-off wake just looks again (finds nothing due) and re-arms for the rest.
    const delay = Math.min(Math.max(0, wakeAt - now), MAX_TIMER_MS);
    timer = timers.set(() => {
      timer = null;
      tick();
    }, delay);
  }

  /** The loop's one error boundary: claim what is due, wake the groups that have runs waiting, re-arm. */
  function tick(): void {
    if (!isStarted || isStopped) return;
    try {
      const now = deps.now();
      claimDue(now);
      for (const groupId of store.tasks.dueGroupIds(now)) deps.onWork(groupId);
      arm(deps.now());
    } catch (error) {
      log.error({ err: error }, 'scheduler tick failed');
    }
  }

  function settleFailure(task: Task, run: TaskRun, error: string, isRetryable: boolean, end: RunEnd): void {
    const now = deps.now();
    const canRetry = isRetryable && run.attempt < deps.maxAttempts && task.status === 'active';
    if (canRetry) {
      const retryAt = now + deps.retryDelayMs(run.attempt);
      store.transaction(() => {
        store.tasks.finishRun(run.id, { ...end, status: 'failed', error }, null, now);
        store.tasks.queueRetry(run, retryAt, now);
      });
      log.warn({ task: task.id, attempt: run.attempt, retryAt, error }, 'task run failed; will retry');
      return;
    }
    const failures = task.consecutiveFailures + 1;
    const isPausing = task.status === 'active' && task.schedule.kind !== 'once' && failures >= pauseAfter;
    const attempts = run.attempt > 1 ? ` after ${run.attempt} attempts` : '';
    const next = task.status === 'active' && task.nextRunAt !== null ? task.nextRunAt : null;
    const text = isPausing
      ? `⏸️ Scheduled task ${label(task)} failed ${failures} times in a row, so I paused it. Last error: ${error}. ` +
        `Ask me to resume it, or run \`warren tasks resume ${task.id}\`.`
      : `⚠️ Scheduled task ${label(task)} failed${attempts}: ${error}.` +
        (next === null ? '' : ` Next run: ${formatInstant(next, task.schedule.timezone)}.`);
    const isTold = task.status !== 'cancelled';
    store.transaction(() => {
      store.tasks.finishRun(
        run.id,
        { ...end, status: 'failed', error },
        isTold ? notice(task, `task-run:${run.id}:failed`, text) : null,
        now,
      );
      store.tasks.update(
        task.id,
        {
          consecutiveFailures: failures,
          ...(isPausing
            ? { status: 'paused', statusReason: `paused after ${failures} failed runs: ${error}` }
            : {}),
          ...(task.schedule.kind === 'once' && task.status === 'active'
            ? { status: 'done', statusReason: error }
            : {}),
        },
        now,
      );
    });
    log.warn({ task: task.id, attempts: run.attempt, failures, isPausing, error }, 'task run failed');
    if (isTold) deps.onOutbox();
  }

  const scheduler: Scheduler = {
    recover() {
      const now = deps.now();
      const reason = 'Warren stopped while this run was under way';
      const interrupted = store.tasks.interruptRunning(reason, now);
      for (const run of interrupted) {
        const task = store.tasks.byId(run.taskId);
        if (!task || task.status === 'cancelled') continue;
        store.transaction(() => {
          store.outbox.enqueue(
            notice(
              task,
              `task-run:${run.id}:interrupted`,
              `⚠️ Scheduled task ${label(task)} was interrupted: ${reason}. It is not repeated by itself; ` +
                `\`warren tasks run-now ${task.id}\` runs it again.`,
            ),
            now,
          );
          if (task.schedule.kind === 'once' && task.status === 'active') {
            store.tasks.update(task.id, { status: 'done', statusReason: 'interrupted' }, now);
          }
        });
      }
      if (interrupted.length > 0) {
        log.warn({ runs: interrupted.map((run) => run.id) }, 'task runs interrupted by a restart');
        deps.onOutbox();
      }
    },
    start() {
      isStarted = true;
      tick();
    },
    kick() {
      if (!isStarted || isStopped || isKickPending) return;
      isKickPending = true;
      // Later, not now: a kick often comes from inside the queue's event handling (or a transaction).
      queueMicrotask(() => {
        isKickPending = false;
        tick();
      });
    },
    stop() {
      isStopped = true;
      if (timer !== null) timers.clear(timer);
      timer = null;
    },
    nextWakeAt: () => wakeAt,

    dueGroupIds: (now) => store.tasks.dueGroupIds(now),
    next(groupId, now): QueuedTaskRun | null {
      const queued = store.tasks.nextQueued(groupId, now);
      if (!queued) return null;
      return {
        runId: queued.run.id,
        chat: queued.task.chat,
        isIsolated: queued.task.contextMode === 'isolated',
      };
    },
    take(queued, agentRunId, batchId, now): StartedTaskRun | null {
      if (!store.tasks.start(queued.runId, batchId, agentRunId, now)) return null;
      const run = store.tasks.runById(queued.runId) as TaskRun;
      const task = store.tasks.byId(run.taskId);
      if (!task) return null;
      log.info({ task: task.id, group: task.groupFolder, run: run.id, agentRunId }, 'task run started');
      return { prompt: formatTaskPrompt(task, run), preCheck: task.preCheck };
    },
    release(batchId) {
      store.tasks.release(batchId);
    },
    settle(batchId, outcome: TaskRunOutcome) {
      try {
        const run = store.tasks.runByBatch(batchId);
        if (run?.status !== 'running') return;
        const task = store.tasks.byId(run.taskId);
        if (!task) return;
        const now = deps.now();
        const tokens =
          run.agentRunId && run.startedAt !== null
            ? store.tasks.tokensOfRun(run.agentRunId, run.startedAt, now)
            : undefined;
        const end: RunEnd = tokens ? { tokens } : {};
        if (outcome.status === 'failed') {
          settleFailure(task, run, outcome.error, outcome.isRetryable, end);
        } else {
          const result =
            outcome.status === 'succeeded'
              ? (outcome.result?.slice(0, RESULT_SUMMARY_CHARS) ?? '(no reply)')
              : (outcome.detail ?? 'the pre-check found nothing to do');
          store.transaction(() => {
            store.tasks.finishRun(run.id, { ...end, status: outcome.status, result }, null, now);
            store.tasks.update(
              task.id,
              {
                consecutiveFailures: 0,
                ...(task.schedule.kind === 'once' && task.status === 'active' ? { status: 'done' } : {}),
              },
              now,
            );
          });
          log.info(
            {
              task: task.id,
              run: run.id,
              status: outcome.status,
              ms: now - (run.startedAt ?? now),
              ...tokens,
            },
            'task run finished',
          );
        }
      } catch (error) {
        log.error({ err: error, batchId }, 'failed to record a task run');
      }
      scheduler.kick();
    },
  };
  return scheduler;
}

type RunEnd = { tokens?: { inputTokens: number; outputTokens: number } };
