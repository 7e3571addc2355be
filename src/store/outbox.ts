// Outbox SQL: the durable queue of replies and notices, claimed per chat in order.
import type { Db } from './db.js';

/** SQL condition on outbox row o: no earlier message to the same chat is still waiting to be sent. */
const HEAD_OF_CHAT = `NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel AND p.chat_id = o.chat_id
  AND p.id < o.id AND p.status IN ('pending', 'sending'))`;

/** SQL condition: the item's channel is not one of a JSON list of channels waiting to (re)connect. */
const NOT_WAITING = 'o.channel NOT IN (SELECT value FROM json_each(?))';

export interface OutboxItem {
  id: number;
  idempotencyKey: string;
  channel: string;
  chatId: string;
  text: string;
  kind: 'reply' | 'notice';
  status: 'pending' | 'sending' | 'sent' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
  /** Set for a file the agent sends: a host path checked when it was queued; text is then its caption. */
  filePath: string | null;
  /** The thread the message goes to (a reply to a message written in one); null: the chat itself. */
  threadId: string | null;
}

export type NewOutboxItem = Pick<OutboxItem, 'idempotencyKey' | 'channel' | 'chatId' | 'text' | 'kind'> & {
  filePath?: string | null;
  threadId?: string | null;
};

const ITEM_COLUMNS = `id, idempotency_key AS idempotencyKey, channel, chat_id AS chatId, text, kind, status, attempts,
  next_attempt_at AS nextAttemptAt, last_error AS lastError, created_at AS createdAt, file_path AS filePath,
  thread_id AS threadId`;

export function outboxQueries(db: Db) {
  return {
    /** Queues a message unless one with the same idempotency key exists. Returns whether it was new. */
    enqueue(item: NewOutboxItem, now: number): boolean {
      const sql = `INSERT OR IGNORE INTO outbox
        (idempotency_key, channel, chat_id, text, kind, status, next_attempt_at, created_at, file_path, thread_id)
        VALUES (@idempotencyKey, @channel, @chatId, @text, @kind, 'pending', @now, @now, @filePath, @threadId)`;
      const row = { ...item, filePath: item.filePath ?? null, threadId: item.threadId ?? null, now };
      return db.run(sql, row).changes === 1;
    },
    /**
     * Claims due items (pending → sending, attempts + 1) so no two senders take the same one. Only the oldest
     * unsent item of each chat is eligible, so a retried message is never overtaken by a later one. Items of
     * `waiting` channels (not connected) are left alone: an outage burns no tries.
     */
    claimDue: db.transaction((now: number, limit: number, waiting: string[] = []): OutboxItem[] => {
      const sql = `SELECT ${ITEM_COLUMNS} FROM outbox o
        WHERE status = 'pending' AND next_attempt_at <= ? AND ${HEAD_OF_CHAT} AND ${NOT_WAITING} ORDER BY id LIMIT ?`;
      const items = db.all<OutboxItem>(sql, now, JSON.stringify(waiting), limit);
      const claim = `UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?`;
      for (const item of items) db.run(claim, item.id);
      return items.map((item) => ({ ...item, status: 'sending', attempts: item.attempts + 1 }));
    }),
    /** Forgets delivered and given-up items created before `before` (retention); waiting items stay. */
    pruneFinished: (before: number) =>
      db.run(`DELETE FROM outbox WHERE status IN ('sent', 'failed') AND created_at < ?`, before).changes,
    markSent(id: number, now: number): void {
      const sql = `UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ?`;
      db.run(sql, now, id);
    },
    markRetry(id: number, error: string, nextAttemptAt: number): void {
      const sql = `UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?`;
      db.run(sql, error, nextAttemptAt, id);
    },
    markFailed(id: number, error: string): void {
      db.run(`UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?`, error, id);
    },
    /** After a restart: a send that was under way is tried again (adapters get the idempotency key). */
    releaseSending: () => db.run(`UPDATE outbox SET status = 'pending' WHERE status = 'sending'`).changes,
    nextDueAt(waiting: string[] = []): number | null {
      const sql = `SELECT MIN(next_attempt_at) AS at FROM outbox o
        WHERE status = 'pending' AND ${HEAD_OF_CHAT} AND ${NOT_WAITING}`;
      return db.get<{ at: number | null }>(sql, JSON.stringify(waiting))?.at ?? null;
    },
    byKey(key: string): OutboxItem | null {
      const sql = `SELECT ${ITEM_COLUMNS} FROM outbox WHERE idempotency_key = ?`;
      return db.get<OutboxItem>(sql, key);
    },
    list(filter: { status?: OutboxItem['status']; limit: number }): OutboxItem[] {
      const sql = `SELECT ${ITEM_COLUMNS} FROM outbox WHERE @status IS NULL OR status = @status
        ORDER BY id DESC LIMIT @limit`;
      return db.all<OutboxItem>(sql, { status: null, ...filter });
    },
    counts(): Record<OutboxItem['status'], number> {
      const counts = { pending: 0, sending: 0, sent: 0, failed: 0 };
      const rows = db.prepare('SELECT status, COUNT(*) AS count FROM outbox GROUP BY status').all();
      for (const row of rows as Array<{ status: OutboxItem['status']; count: number }>)
        counts[row.status] = row.count;
      return counts;
    },
  };
}

export type OutboxQueries = ReturnType<typeof outboxQueries>;
