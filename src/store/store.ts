// The SQLite store: owns every SQL statement; callers see camelCase records and whole operations.
import { auditQueries } from './audit.js';
import { channelQueries } from './channels.js';
import { openDb } from './db.js';
import { chatQueries, groupQueries } from './groups.js';
import { memoryQueries } from './memory.js';
import { messageQueries } from './messages.js';
import { outboxQueries } from './outbox.js';
import { pairingQueries } from './pairing.js';
import { taskQueries } from './tasks.js';

export type { AuditEntry } from './audit.js';
export { StoreError } from './db.js';
export { checkGroupFolder } from './groups.js';
export type { MemoryProposal } from './memory.js';
export type { NewOutboxItem, OutboxItem } from './outbox.js';
export type { PairingRequest } from './pairing.js';
export type { TaskRun } from './task-runs.js';
export type { ContextMode, Task } from './tasks.js';

export interface UsageEntry {
  groupFolder: string;
  at: number;
  day: string;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** The agent run (container) that made the call, so a task run's tokens can be told apart. */
  runId?: string | null;
}

type TokenCount = { inputTokens: number; outputTokens: number };
/** Input counts what the model read: fresh, cached and written to the cache. */
const SUM_TOKENS = `SELECT COALESCE(SUM(input_tokens + cache_read_tokens + cache_write_tokens), 0) AS inputTokens,
  COALESCE(SUM(output_tokens), 0) AS outputTokens FROM usage`;

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
    record(entry: UsageEntry): void {
      db.prepare(
        `INSERT INTO usage (at, day, group_folder, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, run_id)
         VALUES (@at, @day, @groupFolder, @model, @inputTokens, @outputTokens, @cacheReadTokens, @cacheWriteTokens, @runId)`,
      ).run({ ...entry, runId: entry.runId ?? null });
    },
    totalForDay: (groupFolder: string, day: string) =>
      db.prepare(`${SUM_TOKENS} WHERE group_folder = ? AND day = ?`).get(groupFolder, day) as TokenCount,
    /**
     * Model tokens an agent run used between two instants. The credential proxy tags each call with the agent run
     * (usage.run_id), so calls of other containers never count; within one container, the window separates a
     * task run from chat turns before and after it (not from a chat turn running at the same time).
     */
    ofRun: (runId: string, from: number, to: number) =>
      db.prepare(`${SUM_TOKENS} WHERE run_id = ? AND at BETWEEN ? AND ?`).get(runId, from, to) as TokenCount,
  };

  return {
    groups: groupQueries(db),
    chats: chatQueries(db),
    messages: messageQueries(db, outbox),
    outbox,
    channels: channelQueries(db),
    pairing: pairingQueries(db),
    memory: memoryQueries(db),
    runs,
    audit: auditQueries(db),
    usage,
    tasks: taskQueries(db, outbox),
    transaction: <R>(fn: () => R): R => db.transaction(fn)(),
    /** A consistent copy while Warren runs (SQLite's online backup). */
    backup: async (file: string) => void (await db.backup(file)),
    close: () => void (db.open && db.close()),
  };
}
