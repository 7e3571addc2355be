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
export function createScheduler(deps: SchedulerDeps) {
  const log = deps.log.child({ module: 'scheduler' });
  const { store } = deps;
  const timers: Timers = deps.timers ?? {
    set: (callback, ms) => setTimeout(callback, ms).unref(),
    clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };
  let timer: unknown = null;
  let isRunning = false;
  let isKickPending = false;

  function claimDue(now: number): void {
    for (const task of store.tasks.due(now)) {
      let next: number | null;
      try {
        next = nextRunAfter(task.schedule, task.nextRunAt ?? now, now);
      } catch (error) {
        // A schedule that was valid when stored but no longer computes (e.g. a timezone gone from the system).
        log.error({ err: error, task: task.id }, 'cannot compute the next run; pausing the task');
        const statusReason = `schedule error: ${(error as Error).message}`;
        store.tasks.update(task.id, { status: 'paused', statusReason }, now);
        continue;
      }
      const runId = store.tasks.claimSlot(task, next, now);
      if (runId === null) continue;
      const missedMs = now - (task.nextRunAt ?? now);
      log.info({ task: task.id, group: task.groupFolder, runId, missedMs, next }, 'task run claimed');
    }
  }

  /** The loop's one error boundary: claim what is due, wake the groups that have runs waiting, re-arm. */
  function tick(): void {
    if (!isRunning) return;
    try {
      const now = deps.now();
      claimDue(now);
      for (const groupId of store.tasks.dueGroupIds(now)) deps.onWork(groupId);
      if (timer !== null) timers.clear(timer);
      const wakeAt = store.tasks.nextWakeAt();
      // Capped: a far-off wake just looks again (finds nothing due) and re-arms for the rest.
      timer =
        wakeAt === null ? null : timers.set(tick, Math.min(Math.max(0, wakeAt - deps.now()), MAX_TIMER_MS));
    } catch (error) {
      log.error({ err: error }, 'scheduler tick failed');
    }
  }

  return {
    /** Claims what is due (a slot missed while the host was down runs once) and arms the timer. */
    start() {
      isRunning = true;
      tick();
    },
    /** Something changed (a task was created, changed, or a run ended): look again soon. Never throws. */
    kick() {
      if (!isRunning || isKickPending) return;
      isKickPending = true;
      // Later, not now: a kick often comes from inside the queue's event handling (or a transaction).
      queueMicrotask(() => {
        isKickPending = false;
        tick();
      });
    },
    stop() {
      isRunning = false;
      if (timer !== null) timers.clear(timer);
      timer = null;
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
