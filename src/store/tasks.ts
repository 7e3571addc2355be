// Tasks SQL: scheduled tasks and the atomic claim of a slot (a queued run); the runs themselves are task-runs.ts's.
import type { Db } from './db.js';
import type { OutboxQueries } from './outbox.js';
import type { ChatAddress, Schedule } from './records.js';
import { OPEN, type TaskRun, taskRunQueries } from './task-runs.js';

export type ContextMode = 'group' | 'isolated';

export interface Task {
  id: string;
  groupId: number;
  groupFolder: string;
  /** Where results and notices go. */
  chat: ChatAddress;
  name: string;
  prompt: string;
  schedule: Schedule;
  contextMode: ContextMode;
  preCheck: { script: string; timeoutMs: number } | null;
  status: 'active' | 'paused' | 'done' | 'cancelled';
  /** Why it is paused or done, when the host decided it (repeated failures). */
  statusReason: string | null;
  nextRunAt: number | null;
  consecutiveFailures: number;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
}

type NewTask = Omit<Task, 'groupFolder' | 'status' | 'statusReason' | 'consecutiveFailures'>;

/** A task's columns under its record's names; toTask nests chat, schedule and pre-check. */
const TASK_SELECT = `SELECT t.id, t.group_id AS groupId, g.folder AS groupFolder, t.channel, t.chat_id AS chatId,
  t.name, t.prompt, t.schedule_kind AS kind, t.schedule_value AS value, t.timezone, t.context_mode AS contextMode,
  t.pre_check AS script, t.pre_check_timeout_ms AS timeoutMs, t.status, t.status_reason AS statusReason,
  t.next_run_at AS nextRunAt, t.consecutive_failures AS consecutiveFailures, t.created_by AS createdBy,
  t.created_at AS createdAt, t.updated_at AS updatedAt
  FROM tasks t JOIN groups g ON g.id = t.group_id`;
interface TaskRow extends Omit<Task, 'chat' | 'schedule' | 'preCheck'>, ChatAddress, Schedule {
  script: string | null;
  timeoutMs: number;
}
const toTask = ({ channel, chatId, kind, value, timezone, script, timeoutMs, ...task }: TaskRow): Task => ({
  ...task,
  chat: { channel, chatId },
  schedule: { kind, value, timezone },
  preCheck: script === null ? null : { script, timeoutMs },
});
/** SQL condition on task t: no run of it is queued or running (one run at a time per task). */
const NO_OPEN_RUN = `NOT EXISTS (SELECT 1 FROM task_runs r WHERE r.task_id = t.id AND r.${OPEN})`;

type TaskChanges = Partial<
  Omit<Task, 'id' | 'groupId' | 'groupFolder' | 'chat' | 'createdBy' | 'createdAt' | 'updatedAt'>
>;

/** Finishing a run can queue its notice in the outbox in the same transaction. */
export function taskQueries(db: Db, outbox: OutboxQueries) {
  const runs = taskRunQueries(db, outbox);
  const tasksWhere = (where: string, params: unknown) =>
    db.all<TaskRow>(`${TASK_SELECT} WHERE ${where}`, params).map(toTask);
  /** Queues a first attempt; null when that slot of the task was queued before. */
  const queueRun = (taskId: string, scheduledFor: number, trigger: 'schedule' | 'manual', now: number) => {
    const sql = `INSERT OR IGNORE INTO task_runs (task_id, scheduled_for, attempt, trigger, status, due_at, created_at)
      VALUES (?, ?, 1, ?, 'queued', ?, ?)`;
    const info = db.run(sql, taskId, scheduledFor, trigger, now, now);
    return info.changes === 1 ? Number(info.lastInsertRowid) : null;
  };

  const queries = {
    insert(task: NewTask): void {
      const { script = null, timeoutMs = 60_000 } = task.preCheck ?? {};
      const sql = `INSERT INTO tasks (id, group_id, channel, chat_id, name, prompt, schedule_kind, schedule_value, timezone,
          context_mode, pre_check, pre_check_timeout_ms, status, next_run_at, created_by, created_at, updated_at)
        VALUES (@id, @groupId, @channel, @chatId, @name, @prompt, @kind, @value, @timezone, @contextMode, @script,
          @timeoutMs, 'active', @nextRunAt, @createdBy, @createdAt, @updatedAt)`;
      db.run(sql, { ...task, ...task.chat, ...task.schedule, script, timeoutMs });
    },
    byId: (id: string): Task | null => tasksWhere('t.id = ?', id)[0] ?? null,
    /** Tasks of one group (or all), soonest first; finished ones only when asked. */
    list(filter: { groupId?: number; isFinishedIncluded?: boolean } = {}): Task[] {
      return tasksWhere(
        `(@groupId IS NULL OR t.group_id = @groupId) AND (@all = 1 OR t.status IN ('active', 'paused'))
         ORDER BY t.next_run_at IS NULL, t.next_run_at, t.created_at`,
        { groupId: filter.groupId ?? null, all: filter.isFinishedIncluded ? 1 : 0 },
      );
    },
    countLive: (groupId: number) => queries.list({ groupId }).length,
    update(id: string, changes: TaskChanges, now: number): void {
      const columns: Record<string, unknown> = {
        name: changes.name,
        prompt: changes.prompt,
        schedule_kind: changes.schedule?.kind,
        schedule_value: changes.schedule?.value,
        timezone: changes.schedule?.timezone,
        context_mode: changes.contextMode,
        pre_check: changes.preCheck === undefined ? undefined : (changes.preCheck?.script ?? null),
        pre_check_timeout_ms: changes.preCheck ? changes.preCheck.timeoutMs : undefined,
        status: changes.status,
        status_reason: changes.statusReason,
        next_run_at: changes.nextRunAt,
        consecutive_failures: changes.consecutiveFailures,
      };
      const set = Object.entries(columns).filter(([, value]) => value !== undefined);
      const assignments = [...set.map(([key]) => `${key} = ?`), 'updated_at = ?'].join(', ');
      db.run(`UPDATE tasks SET ${assignments} WHERE id = ?`, ...set.map(([, value]) => value), now, id);
    },
    /** Active tasks whose next slot is due and that have no run open (a long run is never overlapped). */
    due: (now: number) => tasksWhere(`t.status = 'active' AND t.next_run_at <= ? AND ${NO_OPEN_RUN}`, now),
    /**
     * The claim: moves the task's next slot on and queues a run for the slot it was at, in one transaction. The
     * compare on next_run_at and UNIQUE (task, slot, attempt) make a second claim of the same slot a no-op.
     * Returns the run's id, or null when the slot was claimed already (or the task changed meanwhile).
     */
    claimSlot: db.transaction((task: Task, nextRunAt: number | null, now: number): number | null => {
      if (task.nextRunAt === null) return null;
      const sql = `UPDATE tasks SET next_run_at = ?, updated_at = ?
        WHERE id = ? AND status = 'active' AND next_run_at = ?`;
      const moved = db.run(sql, nextRunAt, now, task.id, task.nextRunAt).changes === 1;
      return moved ? queueRun(task.id, task.nextRunAt, 'schedule', now) : null;
    }),
    /** Queues an extra run now (run-now). Null when a run of the task is already open. */
    queueManual: db.transaction((taskId: string, now: number): number | null => {
      const open = db.get(`SELECT 1 FROM task_runs WHERE task_id = ? AND ${OPEN}`, taskId);
      return open ? null : queueRun(taskId, now, 'manual', now);
    }),
    /** When the scheduler must look again: the earliest next slot without an open run (retries are the queue's). */
    nextWakeAt(): number | null {
      const sql = `SELECT MIN(t.next_run_at) AS at FROM tasks t WHERE t.status = 'active' AND ${NO_OPEN_RUN}`;
      return (db.prepare(sql).get() as { at: number | null }).at;
    },
    nextQueued(groupId: number, now: number): { run: TaskRun; task: Task } | null {
      const sql = `SELECT r.id FROM task_runs r JOIN tasks t ON t.id = r.task_id
        WHERE t.group_id = ? AND r.status = 'queued' AND r.due_at <= ? ORDER BY r.due_at, r.id LIMIT 1`;
      const row = db.get<{ id: number }>(sql, groupId, now);
      const run = row ? runs.runById(row.id) : null;
      const task = run ? queries.byId(run.taskId) : null;
      return run && task ? { run, task } : null;
    },
  };
  return { ...queries, ...runs };
}
