// Task runs SQL: one row per attempt of a slot (queued, running, then how it ended) and the tokens it used.
import type Database from 'better-sqlite3';
import type { NewOutboxItem, OutboxQueries } from './outbox.js';

export type TaskRunStatus =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'skipped'
  | 'failed'
  | 'interrupted'
  | 'cancelled';

export interface TaskRun {
  id: number;
  taskId: string;
  scheduledFor: number;
  attempt: number;
  trigger: 'schedule' | 'manual' | 'retry';
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

const RUN_COLUMNS = `id, task_id AS taskId, scheduled_for AS scheduledFor, attempt, trigger, status, due_at AS dueAt,
  batch_id AS batchId, agent_run_id AS agentRunId, started_at AS startedAt, ended_at AS endedAt, result, error,
  input_tokens AS inputTokens, output_tokens AS outputTokens, created_at AS createdAt`;
/** A run still waiting or under way; a task has at most one (it is never overlapped). */
export const OPEN = `status IN ('queued', 'running')`;

export function taskRunQueries(db: Database.Database, outbox: OutboxQueries) {
  /** The runs that meet an SQL condition (with its order and limit). */
  const runsWhere = (where: string, ...args: unknown[]) =>
    db.prepare(`SELECT ${RUN_COLUMNS} FROM task_runs WHERE ${where}`).all(...args) as TaskRun[];
  return {
    /** Queues the next attempt of a failed run's slot. */
    queueRetry(run: TaskRun, dueAt: number, now: number): void {
      db.prepare(
        `INSERT INTO task_runs (task_id, scheduled_for, attempt, trigger, status, due_at, created_at)
         VALUES (?, ?, ?, 'retry', 'queued', ?, ?)`,
      ).run(run.taskId, run.scheduledFor, run.attempt + 1, dueAt, now);
    },
    /** When the earliest queued run that is not due yet comes due (a retry waiting out its backoff), or null. */
    nextDueAt(now: number): number | null {
      const sql = `SELECT MIN(due_at) AS at FROM task_runs WHERE status = 'queued' AND due_at > ?`;
      return (db.prepare(sql).get(now) as { at: number | null }).at;
    },
    /** Groups with a queued run due now, longest waiting first. */
    dueGroupIds(now: number): number[] {
      const sql = `SELECT t.group_id AS groupId, MIN(r.due_at) AS first
        FROM task_runs r JOIN tasks t ON t.id = r.task_id
        WHERE r.status = 'queued' AND r.due_at <= ? GROUP BY t.group_id ORDER BY first`;
      return (db.prepare(sql).all(now) as Array<{ groupId: number }>).map((row) => row.groupId);
    },
    /** queued → running, handed to an agent run as batchId. False when it is no longer queued. */
    start(runId: number, batchId: string, agentRunId: string, now: number): boolean {
      const sql = `UPDATE task_runs SET status = 'running', batch_id = ?, agent_run_id = ?, started_at = ?
        WHERE id = ? AND status = 'queued'`;
      return db.prepare(sql).run(batchId, agentRunId, now, runId).changes === 1;
    },
    /** running → queued: the agent could not take it after all. */
    release(batchId: string): void {
      db.prepare(
        `UPDATE task_runs SET status = 'queued', batch_id = NULL, agent_run_id = NULL, started_at = NULL
         WHERE batch_id = ? AND status = 'running'`,
      ).run(batchId);
    },
    runByBatch: (batchId: string): TaskRun | null => runsWhere('batch_id = ?', batchId)[0] ?? null,
    runById: (id: number): TaskRun | null => runsWhere('id = ?', id)[0] ?? null,
    /** Ends an open run and, in the same transaction, queues what the chat should hear about it. */
    finishRun: db.transaction(
      (
        runId: number,
        end: {
          status: TaskRunStatus;
          result?: string | null;
          error?: string | null;
          tokens?: Pick<TaskRun, 'inputTokens' | 'outputTokens'>;
        },
        notice: (NewOutboxItem & { now: number }) | null,
        now: number,
      ): boolean => {
        const changed = db
          .prepare(
            `UPDATE task_runs SET status = @status, result = @result, error = @error, input_tokens = @inputTokens,
               output_tokens = @outputTokens, ended_at = @now WHERE id = @runId AND ${OPEN}`,
          )
          .run({
            result: null,
            error: null,
            inputTokens: 0,
            outputTokens: 0,
            ...end,
            ...end.tokens,
            now,
            runId,
          }).changes;
        if (changed === 1 && notice) outbox.enqueue(notice, notice.now);
        return changed === 1;
      },
    ),
    /** Runs a dead host left running: they end as interrupted (never repeated by themselves). */
    interruptRunning: db.transaction((reason: string, now: number): TaskRun[] => {
      const running = runsWhere(`status = 'running'`);
      const sql = `UPDATE task_runs SET status = 'interrupted', error = ?, ended_at = ? WHERE status = 'running'`;
      db.prepare(sql).run(reason, now);
      return running;
    }),
    /** A paused or cancelled task's queued runs will not happen. */
    cancelQueued(taskId: string, reason: string, now: number): number {
      const sql = `UPDATE task_runs SET status = 'cancelled', error = ?, ended_at = ?
        WHERE task_id = ? AND status = 'queued'`;
      return db.prepare(sql).run(reason, now, taskId).changes;
    },
    /** A task's newest runs first. */
    runsOf: (taskId: string, limit: number) =>
      runsWhere('task_id = ? ORDER BY id DESC LIMIT ?', taskId, limit),
    /** The last finished run of a task (for listings). */
    lastFinished: (taskId: string): TaskRun | null =>
      runsWhere(`task_id = ? AND NOT ${OPEN} ORDER BY id DESC LIMIT 1`, taskId)[0] ?? null,
  };
}
