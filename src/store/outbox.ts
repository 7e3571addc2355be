// Outbox SQL: the durable queue of replies and notices, claimed per chat in order.
import type Database from 'better-sqlite3';

/** SQL condition on outbox row o: no earlier message to the same chat is still waiting to be sent. */
const HEAD_OF_CHAT = `NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel AND p.chat_id = o.chat_id
  AND p.id < o.id AND p.status IN ('pending', 'sending'))`;

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
}

export interface NewOutboxItem {
  idempotencyKey: string;
  channel: string;
  chatId: string;
  text: string;
  kind: 'reply' | 'notice';
  filePath?: string | null;
}

interface OutboxRow {
  id: number;
  idempotency_key: string;
  channel: string;
  chat_id: string;
  text: string;
  kind: 'reply' | 'notice';
  status: OutboxItem['status'];
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  file_path: string | null;
}

const toOutbox = (row: OutboxRow): OutboxItem => ({
  id: row.id,
  idempotencyKey: row.idempotency_key,
  channel: row.channel,
  chatId: row.chat_id,
  text: row.text,
  kind: row.kind,
  status: row.status,
  attempts: row.attempts,
  nextAttemptAt: row.next_attempt_at,
  lastError: row.last_error,
  createdAt: row.created_at,
  filePath: row.file_path,
});

/** The outbox queries over an open database. */
export function outboxQueries(db: Database.Database) {
  const tx = <A extends unknown[], R>(fn: (...args: A) => R) => db.transaction(fn);
  return {
    /** Queues a message unless one with the same idempotency key exists. Returns whether it was new. */
    enqueue(item: NewOutboxItem, now: number): boolean {
      const info = db
        .prepare(
          `INSERT OR IGNORE INTO outbox
             (idempotency_key, channel, chat_id, text, kind, status, next_attempt_at, created_at, file_path)
           VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
        )
        .run(
          item.idempotencyKey,
          item.channel,
          item.chatId,
          item.text,
          item.kind,
          now,
          now,
          item.filePath ?? null,
        );
      return info.changes === 1;
    },
    /**
     * Claims due items (pending → sending, attempts + 1) so no two senders take the same one. Only the oldest
     * unsent item of each chat is eligible, so a retried message is never overtaken by a later one.
     */
    claimDue: tx((now: number, limit: number): OutboxItem[] => {
      const rows = db
        .prepare(
          `SELECT * FROM outbox o WHERE status = 'pending' AND next_attempt_at <= ? AND ${HEAD_OF_CHAT} ORDER BY id LIMIT ?`,
        )
        .all(now, limit) as OutboxRow[];
      const claim = db.prepare(`UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?`);
      for (const row of rows) claim.run(row.id);
      return rows.map((row) => toOutbox({ ...row, status: 'sending', attempts: row.attempts + 1 }));
    }),
    /** Forgets delivered and given-up items created before `before` (retention); waiting items stay. */
    pruneFinished(before: number): number {
      return db
        .prepare(`DELETE FROM outbox WHERE status IN ('sent', 'failed') AND created_at < ?`)
        .run(before).changes;
    },
    markSent(id: number, now: number): void {
      db.prepare(`UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ?`).run(
        now,
        id,
      );
    },
    markRetry(id: number, error: string, nextAttemptAt: number): void {
      db.prepare(
        `UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ? WHERE id = ?`,
      ).run(error, nextAttemptAt, id);
    },
    markFailed(id: number, error: string): void {
      db.prepare(`UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?`).run(error, id);
    },
    /** After a restart: a send that was under way is tried again (adapters get the idempotency key). */
    releaseSending(): number {
      return db.prepare(`UPDATE outbox SET status = 'pending' WHERE status = 'sending'`).run().changes;
    },
    nextDueAt(): number | null {
      const row = db
        .prepare(
          `SELECT MIN(next_attempt_at) AS at FROM outbox o WHERE status = 'pending' AND ${HEAD_OF_CHAT}`,
        )
        .get() as {
        at: number | null;
      };
      return row.at;
    },
    byKey(key: string): OutboxItem | null {
      const row = db.prepare('SELECT * FROM outbox WHERE idempotency_key = ?').get(key) as
        | OutboxRow
        | undefined;
      return row ? toOutbox(row) : null;
    },
    list(filter: { status?: OutboxItem['status']; limit: number }): OutboxItem[] {
      const rows = filter.status
        ? db
            .prepare('SELECT * FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?')
            .all(filter.status, filter.limit)
        : db.prepare('SELECT * FROM outbox ORDER BY id DESC LIMIT ?').all(filter.limit);
      return (rows as OutboxRow[]).map(toOutbox);
    },
    counts(): Record<OutboxItem['status'], number> {
      const counts = { pending: 0, sending: 0, sent: 0, failed: 0 };
      const rows = db.prepare('SELECT status, COUNT(*) AS count FROM outbox GROUP BY status').all() as Array<{
        status: OutboxItem['status'];
        count: number;
      }>;
      for (const row of rows) counts[row.status] = row.count;
      return counts;
    },
  };
}

export type OutboxQueries = ReturnType<typeof outboxQueries>;
