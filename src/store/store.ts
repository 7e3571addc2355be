// The SQLite store: owns every SQL statement; callers see camelCase records and whole operations.
import { auditQueries } from './audit.js';
import { channelQueries } from './channels.js';
import { chatHistoryQueries } from './chat-history.js';
import { openDb } from './db.js';
import { egressQueries } from './egress.js';
import { groupDataQueries } from './group-data.js';
import { chatQueries, groupQueries } from './groups.js';
import { memoryQueries } from './memory.js';
import { messageQueries } from './messages.js';
import { outboxQueries } from './outbox.js';
import { pairingQueries } from './pairing.js';
import { taskQueries } from './tasks.js';

export type { AuditEntry } from './audit.js';
export type { HistoryItem } from './chat-history.js';
export { StoreError } from './db.js';
export type { EgressRule, McpServer, SecretBinding } from './egress.js';
export type { GroupDataRecord } from './group-data.js';
export { checkGroupFolder } from './groups.js';
export type { MemoryProposal } from './memory.js';
export type { NewOutboxItem, OutboxItem } from './outbox.js';
export type { PairingRequest } from './pairing.js';
export type { TaskRun } from './task-runs.js';
export type { ContextMode, Task } from './tasks.js';

export interface UsageEntry {
  groupFolder: string;
  at: number;
  /** The owner's day (WARREN_TIMEZONE) of `at`, as YYYY-MM-DD: budgets and `warren usage` count by it. */
  day: string;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  webSearches?: number;
  /** Priced when recorded, in the owner's currency unit. */
  cost?: number;
  /** The agent run (container) that made the call, so a task run's tokens can be told apart. */
  runId?: string | null;
}

type TokenCount = { inputTokens: number; outputTokens: number };
/** Input counts what the model read: fresh, cached and written to the cache. */
const SUM_TOKENS = `SUM(input_tokens + cache_read_tokens + cache_write_tokens) AS inputTokens,
  SUM(output_tokens) AS outputTokens`;
export type UsageRow = TokenCount & { day: string; groupFolder: string; cost: number; calls: number };

export type Store = ReturnType<typeof openStore>;

export function openStore(path: string) {
  const db = openDb(path);
  const outbox = outboxQueries(db);
  const END_RUNS = 'UPDATE agent_runs SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL';
  const runs = {
    start(id: string, groupId: number, now: number): void {
      db.run('INSERT INTO agent_runs (id, group_id, started_at) VALUES (?, ?, ?)', id, groupId, now);
    },
    end: (id: string, reason: string, now: number) => void db.run(`${END_RUNS} AND id = ?`, now, reason, id),
    /** Runs still open belong to a host that is gone: close them. */
    closeAll: (reason: string, now: number) => db.run(END_RUNS, now, reason).changes,
    open: () =>
      db.all<{ id: string; groupId: number; startedAt: number }>(
        'SELECT id, group_id AS groupId, started_at AS startedAt FROM agent_runs WHERE ended_at IS NULL',
      ),
  };

  const usage = {
    record: db.transaction((entry: UsageEntry): void => {
      const row = { webSearches: 0, cost: 0, ...entry, runId: entry.runId ?? null };
      db.run(
        `INSERT INTO usage (at, day, group_folder, model, input_tokens, output_tokens, cache_read_tokens,
           cache_write_tokens, web_searches, cost, run_id)
         VALUES (@at, @day, @groupFolder, @model, @inputTokens, @outputTokens, @cacheReadTokens,
           @cacheWriteTokens, @webSearches, @cost, @runId)`,
        row,
      );
      db.run(
        `INSERT INTO usage_days (group_folder, day, cost) VALUES (@groupFolder, @day, @cost)
         ON CONFLICT (group_folder, day) DO UPDATE SET cost = cost + excluded.cost`,
        row,
      );
    }),
    /** What one group (or all, with null) spent on the days from..to (YYYY-MM-DD, inclusive). */
    spent: (groupFolder: string | null, from: string, to: string) =>
      db.get<{ cost: number }>(
        `SELECT COALESCE(SUM(cost), 0) AS cost FROM usage_days
         WHERE day BETWEEN @from AND @to AND (@groupFolder IS NULL OR group_folder = @groupFolder)`,
        { groupFolder, from, to },
      )?.cost ?? 0,
    /** Tokens and spend per group and day from a day on, oldest first. */
    byDay: (from: string, groupFolder: string | null) =>
      db.all<UsageRow>(
        `SELECT day, group_folder AS groupFolder, ${SUM_TOKENS}, SUM(cost) AS cost, COUNT(*) AS calls FROM usage
         WHERE day >= @from AND (@groupFolder IS NULL OR group_folder = @groupFolder)
         GROUP BY day, group_folder ORDER BY day, group_folder`,
        { from, groupFolder },
      ),
    /**
     * Model tokens an agent run used between two instants. The credential proxy tags each call with the agent run
     * (usage.run_id), so calls of other containers never count; within one container, the window separates a
     * task run from chat turns before and after it (not from a chat turn running at the same time).
     */
    ofRun: (runId: string, from: number, to: number): TokenCount => {
      const sql = `SELECT ${SUM_TOKENS} FROM usage WHERE run_id = ? AND at BETWEEN ? AND ?`;
      const sums = db.get<Partial<TokenCount>>(sql, runId, from, to);
      return { inputTokens: sums?.inputTokens ?? 0, outputTokens: sums?.outputTokens ?? 0 };
    },
  };

  /** The owner's emergency stop: who pulled it and when, or null while agents may run. */
  const emergencyStop = {
    get: () => db.get<{ by: string; at: number }>('SELECT by, at FROM emergency_stop'),
    set: (by: string, at: number) =>
      db.run('INSERT OR IGNORE INTO emergency_stop (id, by, at) VALUES (1, ?, ?)', by, at).changes > 0,
    clear: () => db.run('DELETE FROM emergency_stop').changes > 0,
  };

  return {
    groups: groupQueries(db),
    groupData: groupDataQueries(db),
    chats: chatQueries(db),
    history: chatHistoryQueries(db),
    messages: messageQueries(db, outbox),
    outbox,
    channels: channelQueries(db),
    pairing: pairingQueries(db),
    memory: memoryQueries(db),
    runs,
    audit: auditQueries(db),
    usage,
    emergencyStop,
    egress: egressQueries(db),
    tasks: taskQueries(db, outbox),
    transaction: <R>(fn: () => R): R => db.transaction(fn)(),
    /** A consistent copy while Warren runs (SQLite's online backup). */
    backup: async (file: string) => void (await db.backup(file)),
    close: () => void (db.open && db.close()),
  };
}
