// Task runs SQL: one row per attempt of a slot (queued, running, then how it ended) and the tokens it used.
import type { Db } from './db.js';
import type { NewOutboxItem, OutboxQueries } from './outbox.js';

export interface TaskRun {
  id: number;
  taskId: string;
  scheduledFor: number;
  attempt: number;
  trigger: 'schedule' | 'manual' | 'retry';
  status: 'queued' | 'running' | 'succeeded' | 'skipped' | 'failed' | 'interrupted' | 'cancelled';
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

type RunEnd = Pick<TaskRun, 'status'> &
  Partial<Pick<TaskRun, 'result' | 'error'>> & {
    tokens?: Pick<TaskRun, 'inputTokens' | 'outputTokens'>;
  };

export function taskRunQueries(db: Db, outbox: OutboxQueries) {
  const runsWhere = (where: string, ...args: unknown[]) =>
    db.all<TaskRun>(`SELECT ${RUN_COLUMNS} FROM task_runs WHERE ${where}`, ...args);
  return {
    queueRetry(run: TaskRun, dueAt: number, now: number): void {
      const sql = `INSERT INTO task_runs (task_id, scheduled_for, attempt, trigger, status, due_at, created_at)
        VALUES (?, ?, ?, 'retry', 'queued', ?, ?)`;
      db.run(sql, run.taskId, run.scheduledFor, run.attempt + 1, dueAt, now);
    },
    /** When the earliest queued run that is not due yet comes due (a retry waiting out its backoff), or null. */
    nextDueAt(now: number): number | null {
      const sql = `SELECT MIN(due_at) AS at FROM task_runs WHERE status = 'queued' AND due_at > ?`;
      return (db.prepare(sql).get(now) as { at: number | null }).at;
    },
    dueGroupIds(now: number): number[] {
      const sql = `SELECT t.group_id AS groupId, MIN(r.due_at) AS first FROM task_runs r JOIN tasks t ON t.id = r.task_id
        WHERE r.status = 'queued' AND r.due_at <= ? GROUP BY t.group_id ORDER BY first`;
      return db.all<{ groupId: number }>(sql, now).map((row) => row.groupId);
    },
    /** queued → running, handed to an agent run as batchId. False when it is no longer queued. */
    start(runId: number, batchId: string, agentRunId: string, now: number): boolean {
      const sql = `UPDATE task_runs SET status = 'running', batch_id = ?, agent_run_id = ?, started_at = ?
        WHERE id = ? AND status = 'queued'`;
      return db.run(sql, batchId, agentRunId, now, runId).changes === 1;
    },
    /** running → queued: the agent could not take it after all. */
    release(batchId: string): void {
      const sql = `UPDATE task_runs SET status = 'queued', batch_id = NULL, agent_run_id = NULL, started_at = NULL
        WHERE batch_id = ? AND status = 'running'`;
      db.run(sql, batchId);
    },
    runByBatch: (batchId: string): TaskRun | null => runsWhere('batch_id = ?', batchId)[0] ?? null,
    runById: (id: number): TaskRun | null => runsWhere('id = ?', id)[0] ?? null,
    /** Ends an open run and, in the same transaction, queues what the chat should hear about it. */
    finishRun: db.transaction(
      (
        runId: number,
        end: RunEnd,
        notice: (NewOutboxItem & { now: number }) | null,
        now: number,
      ): boolean => {
        const sql = `UPDATE task_runs SET status = @status, result = @result, error = @error,
          input_tokens = @inputTokens, output_tokens = @outputTokens, ended_at = @now WHERE id = @runId AND ${OPEN}`;
        const ended = { result: null, error: null, inputTokens: 0, outputTokens: 0, ...end, ...end.tokens };
        const isEnded = db.run(sql, { ...ended, now, runId }).changes === 1;
        if (isEnded && notice) outbox.enqueue(notice, notice.now);
        return isEnded;
      },
    ),
    /** Runs a dead host left running: they end as interrupted (never repeated by themselves). */
    interruptRunning: db.transaction((reason: string, now: number): TaskRun[] => {
      const running = runsWhere(`status = 'running'`);
      const sql = `UPDATE task_runs SET status = 'interrupted', error = ?, ended_at = ? WHERE status = 'running'`;
      db.run(sql, reason, now);
      return running;
    }),
    /** A paused or cancelled task's queued runs will not happen. */
    cancelQueued(taskId: string, reason: string, now: number): number {
      const sql = `UPDATE task_runs SET status = 'cancelled', error = ?, ended_at = ?
        WHERE task_id = ? AND status = 'queued'`;
      return db.run(sql, reason, now, taskId).changes;
    },
    runsOf: (taskId: string, limit: number) =>
      runsWhere('task_id = ? ORDER BY id DESC LIMIT ?', taskId, limit),
    lastFinished: (taskId: string): TaskRun | null =>
      runsWhere(`task_id = ? AND NOT ${OPEN} ORDER BY id DESC LIMIT 1`, taskId)[0] ?? null,
  };
}
