// Task operations for the agent's task tools and the owner's chat commands: creation, changes, run-now.
import { randomBytes } from 'node:crypto';
import { DEFAULT_PRE_CHECK_TIMEOUT_MS, type TaskToolRequest } from '../protocol/ipc.js';
import { formatInstant } from '../queue/prompt.js';
import type { ChatAddress, Group, Schedule } from '../store/records.js';
import type { Store, Task, TaskRun } from '../store/store.js';
import { nextRunAfter, parseSchedule } from './schedule.js';

export type TaskResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** A runaway (or injected) agent cannot fill the schedule: a group holds at most this many live tasks. */
export const MAX_LIVE_TASKS_PER_GROUP = 50;

/** What the agent's task tools validated: creation and changes take the same fields. */
type ToolArgs<T extends TaskToolRequest['tool']> = Extract<TaskToolRequest, { tool: T }>['args'];
/** createdBy: who asked ("agent:family"), for the record. */
export type NewTaskInput = Omit<ToolArgs<'schedule_task'>, 'group'> & {
  group: Group;
  chat: ChatAddress;
  createdBy: string;
};
type TaskUpdate = Omit<ToolArgs<'update_task'>, 'taskId'>;

export interface TaskOpsDeps {
  store: Store;
  now(): number;
  /** The owner's configured timezone: the default for every task. */
  defaultTimezone: string;
  newTaskId?(): string;
}

const defaultName = (prompt: string) => {
  const line = prompt.trim().split('\n')[0] ?? '';
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
};

const fail = (error: string) => ({ ok: false as const, error });
/** seconds → ms, for the pre-check timeout the tools give in seconds. */
const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * 1000);

export function createTaskOps(deps: TaskOpsDeps) {
  const { store } = deps;
  const newTaskId = deps.newTaskId ?? (() => randomBytes(4).toString('hex'));
  const ok = (id: string) => ({ ok: true as const, value: store.tasks.byId(id) as Task });
  const isFinished = (task: Task) => task.status === 'done' || task.status === 'cancelled';

  return {
    create(input: NewTaskInput): TaskResult<Task> {
      const now = deps.now();
      if (store.tasks.countLive(input.group.id) >= MAX_LIVE_TASKS_PER_GROUP) {
        return fail(
          `group ${input.group.folder} already has ${MAX_LIVE_TASKS_PER_GROUP} tasks; cancel some first`,
        );
      }
      const timezone = input.timezone ?? deps.defaultTimezone;
      const parsed = parseSchedule({ kind: input.scheduleKind, value: input.schedule, timezone }, now);
      if (!parsed.ok) return parsed;
      const id = newTaskId();
      const timeoutMs = ms(input.preCheckTimeoutSeconds) ?? DEFAULT_PRE_CHECK_TIMEOUT_MS;
      store.tasks.insert({
        id,
        groupId: input.group.id,
        chat: input.chat,
        name: input.name?.trim() || defaultName(input.prompt),
        prompt: input.prompt,
        schedule: parsed.schedule,
        contextMode: input.contextMode ?? 'group',
        preCheck: input.preCheck ? { script: input.preCheck, timeoutMs } : null,
        nextRunAt: parsed.firstRunAt,
        createdBy: input.createdBy,
        createdAt: now,
        updatedAt: now,
      });
      return ok(id);
    },

    /** Changes what a live task does; a new schedule (or timezone) starts over from now. */
    update(task: Task, changes: TaskUpdate): TaskResult<Task> {
      if (isFinished(task)) return fail(`task ${task.id} is ${task.status}`);
      const now = deps.now();
      let rescheduled: Pick<Task, 'schedule' | 'nextRunAt'> | undefined;
      if ([changes.schedule, changes.scheduleKind, changes.timezone].some((value) => value !== undefined)) {
        const kind = changes.scheduleKind ?? task.schedule.kind;
        if (kind !== task.schedule.kind && !changes.schedule) {
          return fail(`give the new ${kind} schedule together with the new kind`);
        }
        // The stored value is canonical (ms); a person's original text is only needed when it changes.
        const value = changes.schedule ?? storedScheduleText(task.schedule);
        const timezone = changes.timezone ?? task.schedule.timezone;
        const parsed = parseSchedule({ kind, value, timezone }, now);
        if (!parsed.ok) return parsed;
        rescheduled = { schedule: parsed.schedule, nextRunAt: parsed.firstRunAt };
      }
      let preCheck: Task['preCheck'] | undefined;
      if (changes.preCheck !== undefined || changes.preCheckTimeoutSeconds !== undefined) {
        const script = changes.preCheck ?? task.preCheck?.script;
        const timeoutMs =
          ms(changes.preCheckTimeoutSeconds) ?? task.preCheck?.timeoutMs ?? DEFAULT_PRE_CHECK_TIMEOUT_MS;
        preCheck = script ? { script, timeoutMs } : null; // '' removes it
      }
      const { prompt, name, contextMode } = changes;
      store.tasks.update(task.id, { prompt, name: name?.trim(), contextMode, preCheck, ...rescheduled }, now);
      return ok(task.id);
    },

    /** Stops future runs (a run under way finishes); queued runs are cancelled. */
    pause(task: Task, reason: string | null = null): TaskResult<Task> {
      if (task.status !== 'active') return fail(`task ${task.id} is ${task.status}, not active`);
      const now = deps.now();
      store.transaction(() => {
        store.tasks.update(task.id, { status: 'paused', statusReason: reason }, now);
        store.tasks.cancelQueued(task.id, 'the task was paused', now);
      });
      return ok(task.id);
    },

    /** Starts again from now: slots missed while paused are not made up (a once-task whose time passed runs now). */
    resume(task: Task): TaskResult<Task> {
      if (task.status !== 'paused') return fail(`task ${task.id} is ${task.status}, not paused`);
      const now = deps.now();
      const nextRunAt =
        task.schedule.kind === 'once' || (task.nextRunAt !== null && task.nextRunAt > now)
          ? task.nextRunAt
          : nextRunAfter(task.schedule, task.nextRunAt ?? now, now);
      store.tasks.update(
        task.id,
        { status: 'active', statusReason: null, consecutiveFailures: 0, nextRunAt: nextRunAt ?? now },
        now,
      );
      return ok(task.id);
    },

    cancel(task: Task): TaskResult<Task> {
      if (isFinished(task)) return fail(`task ${task.id} is ${task.status}`);
      const now = deps.now();
      store.transaction(() => {
        store.tasks.update(task.id, { status: 'cancelled', nextRunAt: null }, now);
        store.tasks.cancelQueued(task.id, 'the task was cancelled', now);
      });
      return ok(task.id);
    },

    /** Queues one extra run now (the schedule is not changed). */
    runNow(task: Task): TaskResult<TaskRun> {
      if (task.status === 'cancelled') return fail(`task ${task.id} is cancelled`);
      const runId = store.tasks.queueManual(task.id, deps.now());
      if (runId === null) return fail(`task ${task.id} already has a run queued or running`);
      return { ok: true, value: store.tasks.runById(runId) as TaskRun };
    },
  };
}

export type TaskOps = ReturnType<typeof createTaskOps>;

/** The schedule as a person would write it again (interval in minutes, once-time as ISO). */
function storedScheduleText(schedule: Schedule): string {
  if (schedule.kind === 'interval') return `${Math.round(Number(schedule.value) / 1000)}s`;
  if (schedule.kind === 'once') return new Date(Number(schedule.value)).toISOString();
  return schedule.value;
}

/** "in 2h", "3m ago". */
export function relative(at: number, now: number): string {
  const seconds = Math.round((at - now) / 1000);
  const size = Math.abs(seconds);
  const text =
    size < 90
      ? `${size}s`
      : size < 5400
        ? `${Math.round(size / 60)}m`
        : size < 172_800
          ? `${Math.round(size / 3600)}h`
          : `${Math.round(size / 86_400)}d`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

/** When a task runs next, for people: "queued now", "running now", or the time and how far off it is. */
export function describeNextRun(task: Task, store: Store, now: number): string {
  const open = store.tasks
    .runsOf(task.id, 1)
    .find((run) => run.status === 'queued' || run.status === 'running');
  if (open) return open.status === 'running' ? 'running now' : 'queued now';
  if (task.nextRunAt === null || task.status !== 'active') return '-';
  return `${formatInstant(task.nextRunAt, task.schedule.timezone)} (${relative(task.nextRunAt, now)})`;
}
