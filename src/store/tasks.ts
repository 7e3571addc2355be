// Tasks SQL: scheduled tasks, the atomic claim of a run, and the log of every run.
import type Database from 'better-sqlite3';
import type { NewOutboxItem, OutboxQueries } from './outbox.js';
import type { ChatAddress, Schedule, ScheduleKind } from './records.js';

export type TaskStatus = 'active' | 'paused' | 'done' | 'cancelled';
export type ContextMode = 'group' | 'isolated';
export type TaskRunStatus =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'skipped'
  | 'failed'
  | 'interrupted'
  | 'cancelled';
export type TaskRunTrigger = 'schedule' | 'manual' | 'retry';

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
  status: TaskStatus;
  /** Why it is paused or done, when the host decided it (repeated failures). */
  statusReason: string | null;
  nextRunAt: number | null;
  consecutiveFailures: number;
  createdBy: string;
  createdAt: number;
  updatedAt: number;
}

export interface NewTask
  extends Omit<Task, 'groupFolder' | 'status' | 'statusReason' | 'consecutiveFailures'> {}

export interface TaskRun {
  id: number;
  taskId: string;
  scheduledFor: number;
  attempt: number;
  trigger: TaskRunTrigger;
  status: TaskRunStatus;
  dueAt: number;
  batchId: string | null;
  agentRunId: string | null;
  startedAt: number | null;
  endedAt: number | null;
  result: string | null;
  error: string | null;
  inputTokens: number;
  outputTokens: number;
  createdAt: number;
}

interface TaskRow {
  id: string;
  group_id: number;
  folder: string;
  channel: string;
  chat_id: string;
  name: string;
  prompt: string;
  schedule_kind: ScheduleKind;
  schedule_value: string;
  timezone: string;
  context_mode: ContextMode;
  pre_check: string | null;
  pre_check_timeout_ms: number;
  status: TaskStatus;
  status_reason: string | null;
  next_run_at: number | null;
  consecutive_failures: number;
  created_by: string;
  created_at: number;
  updated_at: number;
}

const toTask = (row: TaskRow): Task => ({
  id: row.id,
  groupId: row.group_id,
  groupFolder: row.folder,
  chat: { channel: row.channel, chatId: row.chat_id },
  name: row.name,
  prompt: row.prompt,
  schedule: { kind: row.schedule_kind, value: row.schedule_value, timezone: row.timezone },
  contextMode: row.context_mode,
  preCheck: row.pre_check === null ? null : { script: row.pre_check, timeoutMs: row.pre_check_timeout_ms },
  status: row.status,
  statusReason: row.status_reason,
  nextRunAt: row.next_run_at,
  consecutiveFailures: row.consecutive_failures,
  createdBy: row.created_by,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const RUN_COLUMNS = `id, task_id AS taskId, scheduled_for AS scheduledFor, attempt, trigger, status, due_at AS dueAt,
  batch_id AS batchId, agent_run_id AS agentRunId, started_at AS startedAt, ended_at AS endedAt, result, error,
  input_tokens AS inputTokens, output_tokens AS outputTokens, created_at AS createdAt`;
const TASK_SELECT = 'SELECT t.*, g.folder FROM tasks t JOIN groups g ON g.id = t.group_id';
const OPEN = `status IN ('queued', 'running')`;
/** SQL condition on task t: no run of it is queued or running (one run at a time per task). */
const NO_OPEN_RUN = `NOT EXISTS (SELECT 1 FROM task_runs r WHERE r.task_id = t.id AND r.${OPEN})`;

export interface TaskChanges {
  name?: string;
  prompt?: string;
  schedule?: Schedule;
  contextMode?: ContextMode;
  preCheck?: { script: string; timeoutMs: number } | null;
  status?: TaskStatus;
  statusReason?: string | null;
  nextRunAt?: number | null;
  consecutiveFailures?: number;
}

/** The task queries over an open database; finishing a run can queue its notice in the outbox atomically. */
export function taskQueries(db: Database.Database, outbox: OutboxQueries) {
  const tx = <A extends unknown[], R>(fn: (...args: A) => R) => db.transaction(fn);
  const runById = (id: number) =>
    (db.prepare(`SELECT ${RUN_COLUMNS} FROM task_runs WHERE id = ?`).get(id) as TaskRun | undefined) ?? null;

  const queries = {
    insert(task: NewTask): void {
      db.prepare(
        `INSERT INTO tasks (id, group_id, channel, chat_id, name, prompt, schedule_kind, schedule_value, timezone,
           context_mode, pre_check, pre_check_timeout_ms, status, next_run_at, created_by, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)`,
      ).run(
        task.id,
        task.groupId,
        task.chat.channel,
        task.chat.chatId,
        task.name,
        task.prompt,
        task.schedule.kind,
        task.schedule.value,
        task.schedule.timezone,
        task.contextMode,
        task.preCheck?.script ?? null,
        task.preCheck?.timeoutMs ?? 60_000,
        task.nextRunAt,
        task.createdBy,
        task.createdAt,
        task.updatedAt,
      );
    },
    byId(id: string): Task | null {
      const row = db.prepare(`${TASK_SELECT} WHERE t.id = ?`).get(id) as TaskRow | undefined;
      return row ? toTask(row) : null;
    },
    /** Tasks of one group (or all), soonest first; finished ones only when asked. */
    list(filter: { groupId?: number; isFinishedIncluded?: boolean } = {}): Task[] {
      const rows = db
        .prepare(
          `${TASK_SELECT} WHERE (@groupId IS NULL OR t.group_id = @groupId)
             AND (@all = 1 OR t.status IN ('active', 'paused'))
           ORDER BY t.next_run_at IS NULL, t.next_run_at, t.created_at`,
        )
        .all({ groupId: filter.groupId ?? null, all: filter.isFinishedIncluded ? 1 : 0 }) as TaskRow[];
      return rows.map(toTask);
    },
    countLive(groupId: number): number {
      return (
        db
          .prepare(`SELECT COUNT(*) AS n FROM tasks WHERE group_id = ? AND status IN ('active', 'paused')`)
          .get(groupId) as { n: number }
      ).n;
    },
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
      db.prepare(
        `UPDATE tasks SET ${[...set.map(([key]) => `${key} = ?`), 'updated_at = ?'].join(', ')} WHERE id = ?`,
      ).run(...set.map(([, value]) => value), now, id);
    },
    /** Active tasks whose next slot is due and that have no run open (a long run is never overlapped). */
    due(now: number): Task[] {
      return (
        db
          .prepare(`${TASK_SELECT} WHERE t.status = 'active' AND t.next_run_at <= ? AND ${NO_OPEN_RUN}`)
          .all(now) as TaskRow[]
      ).map(toTask);
    },
    /**
     * The claim: moves the task's next slot on and queues a run for the slot it was at, in one transaction. The
     * compare on next_run_at and UNIQUE (task, slot, attempt) make a second claim of the same slot a no-op.
     * Returns the run's id, or null when the slot was claimed already (or the task changed meanwhile).
     */
    claimSlot: tx((task: Task, nextRunAt: number | null, now: number): number | null => {
      if (task.nextRunAt === null) return null;
      const moved = db
        .prepare(
          `UPDATE tasks SET next_run_at = ?, updated_at = ? WHERE id = ? AND status = 'active' AND next_run_at = ?`,
        )
        .run(nextRunAt, now, task.id, task.nextRunAt);
      if (moved.changes !== 1) return null;
      const info = db
        .prepare(
          `INSERT OR IGNORE INTO task_runs (task_id, scheduled_for, attempt, trigger, status, due_at, created_at)
           VALUES (?, ?, 1, 'schedule', 'queued', ?, ?)`,
        )
        .run(task.id, task.nextRunAt, now, now);
      return info.changes === 1 ? Number(info.lastInsertRowid) : null;
    }),
    /** Queues an extra run now (run-now). Null when a run of the task is already open. */
    queueManual: tx((taskId: string, now: number): number | null => {
      const open = db.prepare(`SELECT 1 FROM task_runs WHERE task_id = ? AND ${OPEN}`).get(taskId);
      if (open) return null;
      const info = db
        .prepare(
          `INSERT OR IGNORE INTO task_runs (task_id, scheduled_for, attempt, trigger, status, due_at, created_at)
           VALUES (?, ?, 1, 'manual', 'queued', ?, ?)`,
        )
        .run(taskId, now, now, now);
      return info.changes === 1 ? Number(info.lastInsertRowid) : null;
    }),
    /** Queues the next attempt of a failed run's slot. */
    queueRetry(run: TaskRun, dueAt: number, now: number): number {
      const info = db
        .prepare(
          `INSERT INTO task_runs (task_id, scheduled_for, attempt, trigger, status, due_at, created_at)
           VALUES (?, ?, ?, 'retry', 'queued', ?, ?)`,
        )
        .run(run.taskId, run.scheduledFor, run.attempt + 1, dueAt, now);
      return Number(info.lastInsertRowid);
    },
    /** When the scheduler must look again: the earliest next slot without an open run, or a queued retry. */
    nextWakeAt(now: number): number | null {
      const row = db
        .prepare(
          `SELECT MIN(at) AS at FROM (
             SELECT t.next_run_at AS at FROM tasks t WHERE t.status = 'active' AND t.next_run_at IS NOT NULL
               AND ${NO_OPEN_RUN}
             UNION ALL SELECT due_at FROM task_runs WHERE status = 'queued' AND due_at > ?)`,
        )
        .get(now) as { at: number | null };
      return row.at;
    },
    /** Groups with a queued run due now, longest waiting first. */
    dueGroupIds(now: number): number[] {
      return (
        db
          .prepare(
            `SELECT t.group_id AS groupId, MIN(r.due_at) AS first FROM task_runs r JOIN tasks t ON t.id = r.task_id
             WHERE r.status = 'queued' AND r.due_at <= ? GROUP BY t.group_id ORDER BY first`,
          )
          .all(now) as Array<{ groupId: number }>
      ).map((row) => row.groupId);
    },
    /** The group's queued run that is due and has waited longest. */
    nextQueued(groupId: number, now: number): { run: TaskRun; task: Task } | null {
      const row = db
        .prepare(
          `SELECT r.id FROM task_runs r JOIN tasks t ON t.id = r.task_id
           WHERE t.group_id = ? AND r.status = 'queued' AND r.due_at <= ? ORDER BY r.due_at, r.id LIMIT 1`,
        )
        .get(groupId, now) as { id: number } | undefined;
      const run = row ? runById(row.id) : null;
      const task = run ? queries.byId(run.taskId) : null;
      return run && task ? { run, task } : null;
    },
    /** queued → running, handed to an agent run as batchId. False when it is no longer queued. */
    start(runId: number, batchId: string, agentRunId: string, now: number): boolean {
      return (
        db
          .prepare(
            `UPDATE task_runs SET status = 'running', batch_id = ?, agent_run_id = ?, started_at = ?
             WHERE id = ? AND status = 'queued'`,
          )
          .run(batchId, agentRunId, now, runId).changes === 1
      );
    },
    /** running → queued: the agent could not take it after all. */
    release(batchId: string): void {
      db.prepare(
        `UPDATE task_runs SET status = 'queued', batch_id = NULL, agent_run_id = NULL, started_at = NULL
         WHERE batch_id = ? AND status = 'running'`,
      ).run(batchId);
    },
    runByBatch(batchId: string): TaskRun | null {
      return (
        (db.prepare(`SELECT ${RUN_COLUMNS} FROM task_runs WHERE batch_id = ?`).get(batchId) as
          | TaskRun
          | undefined) ?? null
      );
    },
    runById,
    /** Ends an open run and, in the same transaction, queues what the chat should hear about it. */
    finishRun: tx(
      (
        runId: number,
        end: { status: TaskRunStatus; result?: string | null; error?: string | null; tokens?: TokenCount },
        notice: (NewOutboxItem & { now: number }) | null,
        now: number,
      ): boolean => {
        const changed = db
          .prepare(
            `UPDATE task_runs SET status = ?, result = ?, error = ?, input_tokens = ?, output_tokens = ?, ended_at = ?
             WHERE id = ? AND ${OPEN}`,
          )
          .run(
            end.status,
            end.result ?? null,
            end.error ?? null,
            end.tokens?.inputTokens ?? 0,
            end.tokens?.outputTokens ?? 0,
            now,
            runId,
          ).changes;
        if (changed === 1 && notice) outbox.enqueue(notice, notice.now);
        return changed === 1;
      },
    ),
    /** Runs a dead host left running: they end as interrupted (never repeated by themselves). */
    interruptRunning: tx((reason: string, now: number): TaskRun[] => {
      const rows = db
        .prepare(`SELECT ${RUN_COLUMNS} FROM task_runs WHERE status = 'running'`)
        .all() as TaskRun[];
      db.prepare(
        `UPDATE task_runs SET status = 'interrupted', error = ?, ended_at = ? WHERE status = 'running'`,
      ).run(reason, now);
      return rows;
    }),
    /** A paused or cancelled task's queued runs will not happen. */
    cancelQueued(taskId: string, reason: string, now: number): number {
      return db
        .prepare(
          `UPDATE task_runs SET status = 'cancelled', error = ?, ended_at = ? WHERE task_id = ? AND status = 'queued'`,
        )
        .run(reason, now, taskId).changes;
    },
    runsOf(taskId: string, limit: number): TaskRun[] {
      return db
        .prepare(`SELECT ${RUN_COLUMNS} FROM task_runs WHERE task_id = ? ORDER BY id DESC LIMIT ?`)
        .all(taskId, limit) as TaskRun[];
    },
    /** The last finished run of each task (for listings). */
    lastFinished(taskId: string): TaskRun | null {
      return (
        (db
          .prepare(
            `SELECT ${RUN_COLUMNS} FROM task_runs WHERE task_id = ? AND NOT ${OPEN} ORDER BY id DESC LIMIT 1`,
          )
          .get(taskId) as TaskRun | undefined) ?? null
      );
    },
    /**
     * Model tokens an agent run used between two instants. The credential proxy tags each call with the agent run
     * (usage.run_id), so calls of other containers never count; within one container, the window separates a
     * task run from chat turns before and after it (not from a chat turn running at the same time).
     */
    tokensOfRun(agentRunId: string, from: number, to: number): TokenCount {
      return db
        .prepare(
          `SELECT COALESCE(SUM(input_tokens + cache_read_tokens + cache_write_tokens), 0) AS inputTokens,
                  COALESCE(SUM(output_tokens), 0) AS outputTokens
           FROM usage WHERE run_id = ? AND at >= ? AND at <= ?`,
        )
        .get(agentRunId, from, to) as TokenCount;
    },
  };
  return queries;
}

export interface TokenCount {
  inputTokens: number;
  outputTokens: number;
}

export type TaskQueries = ReturnType<typeof taskQueries>;
