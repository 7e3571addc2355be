// The scheduler: one timer for the next due task and the atomic claim of each slot. Running a claimed slot, its
// retries and its report are the group queue's work (queue/work.ts), like every chat message.
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { nextRunAfter } from './schedule.js';

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

export interface SchedulerDeps {
  store: Store;
  log: Logger;
  now(): number;
  timers?: Timers;
  /** A group has a task run due: wake its queue. Must not throw. */
  onWork(groupId: number): void;
}

/** Claims each due slot of each task once (a queued run); the group queue runs it through work.ts. */
export interface Scheduler {
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
  const { store } = deps;
  let timer: unknown = null;
  let wakeAt: number | null = null;
  let isStarted = false;
  let isStopped = false;
  let isKickPending = false;

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
    wakeAt = store.tasks.nextWakeAt();
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

  const scheduler: Scheduler = {
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
  };
  return scheduler;
}
