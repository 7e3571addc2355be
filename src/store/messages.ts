// Inbox SQL: per-message status, batches handed to agents, retries and backoff.
import type { Db } from './db.js';
import type { NewOutboxItem, OutboxQueries } from './outbox.js';
import type { ChatAddress, PromptMessage } from './records.js';

interface NewMessage extends PromptMessage {
  chatRef: number;
  externalId: string;
  senderId: string;
  receivedAt: number;
  isTrigger: boolean;
  threadId?: string | null;
}

type BatchFailure =
  | { outcome: 'retry'; retryAt: number; attempt: number; chat: ChatAddress }
  | { outcome: 'failed'; attempts: number; chat: ChatAddress };

const FROM_MESSAGES = 'FROM messages m JOIN chats c ON c.id = m.chat_ref';
const IN_BATCH = `batch_id = ? AND status = 'processing'`;

/** The chat whose due trigger waits longest in a group. */
const DUE_CHAT = `SELECT m.chat_ref AS chatRef, c.channel, c.chat_id AS chatId ${FROM_MESSAGES}
  WHERE c.group_id = ? AND m.status = 'pending' AND m.is_trigger = 1 AND m.next_attempt_at <= ?
  ORDER BY m.id LIMIT 1`;

export function messageQueries(db: Db, outbox: OutboxQueries) {
  const dueChat = (groupId: number, now: number) =>
    db.get<ChatAddress & { chatRef: number }>(DUE_CHAT, groupId, now);
  return {
    /** Stores an inbound message of a registered chat. Returns null when it was stored before (redelivery). */
    insert(message: NewMessage): number | null {
      const sql = `INSERT OR IGNORE INTO messages
        (chat_ref, external_id, sender_id, sender_name, text, sent_at, received_at, is_trigger, status, thread_id)
        VALUES (@chatRef, @externalId, @senderId, @senderName, @text, @sentAt, @receivedAt, @isTrigger, 'pending',
          @threadId)`;
      const info = db.run(sql, {
        ...message,
        isTrigger: message.isTrigger ? 1 : 0,
        threadId: message.threadId ?? null,
      });
      return info.changes === 1 ? Number(info.lastInsertRowid) : null;
    },
    /** Groups that have a pending trigger due now, oldest first, and the earliest future due time of any other. */
    work(now: number): { dueGroupIds: number[]; nextDueAt: number | null } {
      const sql = `SELECT c.group_id AS groupId, MIN(m.next_attempt_at) AS dueAt, MIN(m.id) AS firstId ${FROM_MESSAGES}
        WHERE m.status = 'pending' AND m.is_trigger = 1 AND c.group_id IS NOT NULL
        GROUP BY c.group_id ORDER BY firstId`;
      const rows = db.all<{ groupId: number; dueAt: number }>(sql);
      const future = rows.filter((row) => row.dueAt > now).map((row) => row.dueAt);
      return {
        dueGroupIds: rows.filter((row) => row.dueAt <= now).map((row) => row.groupId),
        nextDueAt: future.length > 0 ? Math.min(...future) : null,
      };
    },
    /**
     * Claims the next batch for a group: every pending message of the chat whose trigger waits longest, with at
     * most contextLimit untriggered messages before it (older ones are marked done unseen). Null when nothing is due.
     */
    claimBatch: db.transaction((groupId: number, batchId: string, contextLimit: number, now: number) => {
      const first = dueChat(groupId, now);
      if (!first) return null;
      const sql = `SELECT id, sender_name AS senderName, text, sent_at AS sentAt, is_trigger AS isTrigger
        FROM messages WHERE chat_ref = ? AND status = 'pending' ORDER BY id`;
      const pending = db.all<PromptMessage & { id: number; isTrigger: number }>(sql, first.chatRef);
      const candidates = pending.slice(0, pending.findLastIndex((message) => message.isTrigger === 1) + 1);
      // Every trigger goes along, and the contextLimit untriggered messages nearest the last one.
      const context = candidates.filter((message) => message.isTrigger !== 1);
      const skipped = new Set(context.slice(0, Math.max(0, context.length - contextLimit)));
      const keep = candidates.filter((message) => !skipped.has(message));
      for (const { id } of skipped) db.run(`UPDATE messages SET status = 'done' WHERE id = ?`, id);
      // No attempt counted here: only an agent's own failure counts one (failBatch), never a crash or a stop.
      const claim = `UPDATE messages SET status = 'processing', batch_id = ? WHERE id = ?`;
      for (const { id } of keep) db.run(claim, batchId, id);
      return {
        batchId,
        chat: { channel: first.channel, chatId: first.chatId },
        messages: keep.map(({ senderName, text, sentAt }): PromptMessage => ({ senderName, text, sentAt })),
      };
    }),
    nextChat: (groupId: number, now: number): ChatAddress | null => dueChat(groupId, now),
    /** Hands a claimed batch back untouched: never handed over, or cut short by a stop (no attempt counted). */
    unclaim: (batchId: string) =>
      void db.run(`UPDATE messages SET status = 'pending', batch_id = NULL WHERE ${IN_BATCH}`, batchId),
    /** Marks batches answered and queues the answer, atomically, so a crash can neither lose nor repeat it. */
    completeBatches: db.transaction((batchIds: string[], reply: (NewOutboxItem & { now: number }) | null) => {
      // The answer goes to the thread of the batches' last trigger (none: the chat itself).
      const last = `SELECT thread_id AS threadId FROM messages WHERE batch_id IN (SELECT value FROM json_each(?))
        AND is_trigger = 1 ORDER BY id DESC LIMIT 1`;
      const threadId = reply
        ? (db.get<{ threadId: string | null }>(last, JSON.stringify(batchIds))?.threadId ?? null)
        : null;
      const done = `UPDATE messages SET status = 'done', last_error = NULL WHERE batch_id = ?`;
      for (const batchId of batchIds) db.run(done, batchId);
      if (reply) outbox.enqueue({ threadId, ...reply }, reply.now);
    }),
    /** Counts the agent's failure on the batch: back for a retry after backoff, or given up after maxAttempts. */
    failBatch: db.transaction(
      (
        batchId: string,
        error: string,
        policy: { maxAttempts: number; backoffMs: (attempt: number) => number; now: number },
      ): BatchFailure | null => {
        const find = `SELECT MAX(m.attempts) AS attempts, c.channel, c.chat_id AS chatId ${FROM_MESSAGES}
          WHERE m.${IN_BATCH}`;
        const info = db.prepare(find).get(batchId) as { attempts: number | null } & ChatAddress;
        if (info.attempts === null) return null;
        info.attempts += 1;
        db.run(`UPDATE messages SET attempts = attempts + 1 WHERE ${IN_BATCH}`, batchId);
        const chat = { channel: info.channel, chatId: info.chatId };
        if (info.attempts >= policy.maxAttempts) {
          const sql = `UPDATE messages SET status = 'failed', last_error = ? WHERE ${IN_BATCH}`;
          db.run(sql, error, batchId);
          return { outcome: 'failed', attempts: info.attempts, chat };
        }
        const retryAt = policy.now + policy.backoffMs(info.attempts);
        const sql = `UPDATE messages SET status = 'pending', batch_id = NULL, next_attempt_at = ?, last_error = ?
          WHERE ${IN_BATCH}`;
        db.run(sql, retryAt, error, batchId);
        return { outcome: 'retry', retryAt, attempt: info.attempts, chat };
      },
    ),
    /** Retention: forgets finished messages received before `before`; pending and processing ones always stay. */
    pruneFinished: (before: number) =>
      db.run(`DELETE FROM messages WHERE status IN ('done', 'failed') AND received_at < ?`, before).changes,
    /** After a restart nothing is processing any more: hand those messages back to the queue. */
    releaseProcessing: () =>
      db.run(`UPDATE messages SET status = 'pending', batch_id = NULL WHERE status = 'processing'`).changes,
    countByStatus: () =>
      db.all<{ groupId: number | null; status: string; count: number }>(
        `SELECT c.group_id AS groupId, m.status, COUNT(*) AS count ${FROM_MESSAGES} GROUP BY c.group_id, m.status`,
      ),
    /** The stored messages of one chat in order (tests read the inbox through it). */
    ofChat: (chatRef: number) =>
      db.all<{ text: string; status: string }>(
        'SELECT text, status FROM messages WHERE chat_ref = ? ORDER BY id',
        chatRef,
      ),
  };
}
