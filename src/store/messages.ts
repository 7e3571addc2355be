// Inbox SQL: per-message status, batches handed to agents, retries and backoff.
import type Database from 'better-sqlite3';
import type { NewOutboxItem, OutboxQueries } from './outbox.js';
import type { ChatAddress, PromptMessage } from './records.js';

export interface NewMessage {
  chatRef: number;
  externalId: string;
  senderId: string;
  senderName: string;
  text: string;
  sentAt: number;
  receivedAt: number;
  isTrigger: boolean;
}

export type ClaimedBatch = { batchId: string; chat: ChatAddress; messages: PromptMessage[] };

export type BatchFailure =
  | { outcome: 'retry'; retryAt: number; attempt: number; chat: ChatAddress }
  | { outcome: 'failed'; attempts: number; chat: ChatAddress };

/** The inbox queries over an open database; completing a batch also writes its reply to the outbox. */
export function messageQueries(db: Database.Database, outbox: OutboxQueries) {
  /** The chat whose due trigger waits longest in this group. */
  const dueChat = (groupId: number, now: number) =>
    db
      .prepare(
        `SELECT m.chat_ref AS chatRef, c.channel, c.chat_id AS chatId
         FROM messages m JOIN chats c ON c.id = m.chat_ref
         WHERE c.group_id = ? AND m.status = 'pending' AND m.is_trigger = 1 AND m.next_attempt_at <= ?
         ORDER BY m.id LIMIT 1`,
      )
      .get(groupId, now) as (ChatAddress & { chatRef: number }) | undefined;
  return {
    /** Stores an inbound message of a registered chat. Returns null when it was stored before (redelivery). */
    insert(message: NewMessage): number | null {
      const info = db
        .prepare(
          `INSERT OR IGNORE INTO messages
             (chat_ref, external_id, sender_id, sender_name, text, sent_at, received_at, is_trigger, status)
           VALUES (@chatRef, @externalId, @senderId, @senderName, @text, @sentAt, @receivedAt, @isTrigger, 'pending')`,
        )
        .run({ ...message, isTrigger: message.isTrigger ? 1 : 0 });
      return info.changes === 1 ? Number(info.lastInsertRowid) : null;
    },
    /** Groups that have a pending trigger due now, oldest first, and the earliest future due time of any other. */
    work(now: number): { dueGroupIds: number[]; nextDueAt: number | null } {
      const rows = db
        .prepare(
          `SELECT c.group_id AS groupId, MIN(m.next_attempt_at) AS dueAt, MIN(m.id) AS firstId
           FROM messages m JOIN chats c ON c.id = m.chat_ref
           WHERE m.status = 'pending' AND m.is_trigger = 1 AND c.group_id IS NOT NULL
           GROUP BY c.group_id ORDER BY firstId`,
        )
        .all() as Array<{ groupId: number; dueAt: number }>;
      const dueGroupIds = rows.filter((row) => row.dueAt <= now).map((row) => row.groupId);
      const future = rows.filter((row) => row.dueAt > now).map((row) => row.dueAt);
      return { dueGroupIds, nextDueAt: future.length > 0 ? Math.min(...future) : null };
    },
    /**
     * Claims the next batch for a group: every pending message of the chat whose trigger waits longest, with at
     * most contextLimit untriggered messages before it (older ones are marked done unseen). Null when nothing is due.
     */
    claimBatch: db.transaction(
      (groupId: number, batchId: string, contextLimit: number, now: number): ClaimedBatch | null => {
        const first = dueChat(groupId, now);
        if (!first) return null;
        const pending = db
          .prepare(
            `SELECT id, sender_name AS senderName, text, sent_at AS sentAt, is_trigger AS isTrigger
           FROM messages WHERE chat_ref = ? AND status = 'pending' ORDER BY id`,
          )
          .all(first.chatRef) as Array<PromptMessage & { id: number; isTrigger: number }>;
        const lastTrigger = pending.findLastIndex((message) => message.isTrigger === 1);
        const candidates = pending.slice(0, lastTrigger + 1);
        // Every trigger goes along, and the contextLimit untriggered messages nearest the last one.
        const context = candidates.filter((message) => message.isTrigger !== 1);
        const skipped = new Set(context.slice(0, Math.max(0, context.length - contextLimit)));
        const keep = candidates.filter((message) => !skipped.has(message));
        const markSkipped = db.prepare(`UPDATE messages SET status = 'done' WHERE id = ?`);
        for (const message of skipped) markSkipped.run(message.id);
        const claim = db.prepare(
          `UPDATE messages SET status = 'processing', batch_id = ?, attempts = attempts + 1 WHERE id = ?`,
        );
        for (const message of keep) claim.run(batchId, message.id);
        return {
          batchId,
          chat: { channel: first.channel, chatId: first.chatId },
          messages: keep.map(({ senderName, text, sentAt }) => ({ senderName, text, sentAt })),
        };
      },
    ),
    /** The chat whose due trigger waits longest in this group, or null. */
    nextChat: (groupId: number, now: number): ChatAddress | null => dueChat(groupId, now) ?? null,
    /** Undoes a claim that was never handed to an agent (the attempt does not count). */
    unclaim(batchId: string): void {
      db.prepare(
        `UPDATE messages SET status = 'pending', batch_id = NULL, attempts = attempts - 1
         WHERE batch_id = ? AND status = 'processing'`,
      ).run(batchId);
    },
    /** Marks batches answered and queues the answer, atomically, so a crash can neither lose nor repeat it. */
    completeBatches: db.transaction(
      (batchIds: string[], reply: (NewOutboxItem & { now: number }) | null): void => {
        const done = db.prepare(`UPDATE messages SET status = 'done', last_error = NULL WHERE batch_id = ?`);
        for (const batchId of batchIds) done.run(batchId);
        if (reply) outbox.enqueue(reply, reply.now);
      },
    ),
    /** Puts a batch back for a retry after backoff, or gives up once its triggers used maxAttempts. */
    failBatch: db.transaction(
      (
        batchId: string,
        error: string,
        policy: { maxAttempts: number; backoffMs: (attempt: number) => number; now: number },
      ): BatchFailure | null => {
        const info = db
          .prepare(
            `SELECT MAX(m.attempts) AS attempts, c.channel, c.chat_id AS chatId
             FROM messages m JOIN chats c ON c.id = m.chat_ref WHERE m.batch_id = ? AND m.status = 'processing'`,
          )
          .get(batchId) as { attempts: number | null; channel: string; chatId: string };
        if (info.attempts === null) return null;
        const chat = { channel: info.channel, chatId: info.chatId };
        if (info.attempts >= policy.maxAttempts) {
          db.prepare(
            `UPDATE messages SET status = 'failed', last_error = ? WHERE batch_id = ? AND status = 'processing'`,
          ).run(error, batchId);
          return { outcome: 'failed', attempts: info.attempts, chat };
        }
        const retryAt = policy.now + policy.backoffMs(info.attempts);
        db.prepare(
          `UPDATE messages SET status = 'pending', batch_id = NULL, next_attempt_at = ?, last_error = ?
           WHERE batch_id = ? AND status = 'processing'`,
        ).run(retryAt, error, batchId);
        return { outcome: 'retry', retryAt, attempt: info.attempts, chat };
      },
    ),
    /**
     * Forgets finished messages (done or failed) received before `before`: retention. Pending and processing
     * messages are never pruned, so work is not lost to a short retention.
     */
    pruneFinished(before: number): number {
      return db
        .prepare(`DELETE FROM messages WHERE status IN ('done', 'failed') AND received_at < ?`)
        .run(before).changes;
    },
    /** After a restart nothing is processing any more: hand those messages back to the queue. */
    releaseProcessing(): number {
      return db
        .prepare(`UPDATE messages SET status = 'pending', batch_id = NULL WHERE status = 'processing'`)
        .run().changes;
    },
    countByStatus(): Array<{ groupId: number | null; status: string; count: number }> {
      return db
        .prepare(
          `SELECT c.group_id AS groupId, m.status, COUNT(*) AS count
           FROM messages m JOIN chats c ON c.id = m.chat_ref GROUP BY c.group_id, m.status`,
        )
        .all() as Array<{ groupId: number | null; status: string; count: number }>;
    },
    /** The stored messages of one chat in order (tests read the inbox through it). */
    ofChat(chatRef: number): Array<{ text: string; status: string }> {
      const sql = 'SELECT text, status FROM messages WHERE chat_ref = ? ORDER BY id';
      return db.prepare(sql).all(chatRef) as Array<{ text: string; status: string }>;
    },
  };
}
