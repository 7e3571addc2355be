// The SQLite store: owns every SQL statement; callers see camelCase records and whole operations.
import Database from 'better-sqlite3';
import { migrations } from './migrations.js';
import type { ChatAddress, Group, PromptMessage } from './types.js';

export const GROUP_FOLDER_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Names that would collide with Warren's own folders under the data directory. */
const RESERVED_FOLDERS = new Set(['global', 'ipc', 'sessions', 'sockets', 'logs', 'tmp']);

/** SQL condition on outbox row o: no earlier message to the same chat is still waiting to be sent. */
const HEAD_OF_CHAT = `NOT EXISTS (SELECT 1 FROM outbox p WHERE p.channel = o.channel AND p.chat_id = o.chat_id
  AND p.id < o.id AND p.status IN ('pending', 'sending'))`;

export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** Folder names become host paths: only a plain lowercase segment is accepted (no '..', '/', dots). */
export function checkGroupFolder(folder: string): string | null {
  if (!GROUP_FOLDER_PATTERN.test(folder)) {
    return `folder '${folder}' must be 1-64 of a-z, 0-9, '-' or '_', starting with a letter or digit`;
  }
  if (RESERVED_FOLDERS.has(folder)) return `folder '${folder}' is reserved`;
  return null;
}

export interface Chat extends ChatAddress {
  id: number;
  name: string | null;
  isDirect: boolean;
  groupId: number | null;
  lastSeenAt: number;
}

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

export interface ClaimedBatch {
  batchId: string;
  chat: ChatAddress;
  messages: PromptMessage[];
}

export type BatchFailure =
  | { outcome: 'retry'; retryAt: number; attempt: number; chat: ChatAddress }
  | { outcome: 'failed'; attempts: number; chat: ChatAddress };

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
}

export interface NewOutboxItem {
  idempotencyKey: string;
  channel: string;
  chatId: string;
  text: string;
  kind: 'reply' | 'notice';
}

export interface AuditEntry {
  groupFolder: string | null;
  actor: string;
  action: string;
  decision: 'allow' | 'deny';
  detail: Record<string, unknown>;
}

export interface UsageEntry {
  groupFolder: string;
  at: number;
  day: string;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

interface GroupRow {
  id: number;
  folder: string;
  name: string;
  trigger: 'mention' | 'always';
  trigger_word: string | null;
  is_admin: number;
  created_at: number;
}

interface ChatRow {
  id: number;
  channel: string;
  chat_id: string;
  name: string | null;
  is_direct: number;
  group_id: number | null;
  last_seen_at: number;
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
}

const toGroup = (row: GroupRow): Group => ({
  id: row.id,
  folder: row.folder,
  name: row.name,
  trigger: row.trigger,
  triggerWord: row.trigger_word,
  isAdmin: row.is_admin === 1,
  createdAt: row.created_at,
});

const toChat = (row: ChatRow): Chat => ({
  id: row.id,
  channel: row.channel,
  chatId: row.chat_id,
  name: row.name,
  isDirect: row.is_direct === 1,
  groupId: row.group_id,
  lastSeenAt: row.last_seen_at,
});

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
});

export type Store = ReturnType<typeof openStore>;

/** Opens (creating if needed) the database at path (':memory:' for tests) and brings its schema up to date. */
export function openStore(path: string) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);

  const tx = <A extends unknown[], R>(fn: (...args: A) => R) => db.transaction(fn);

  const groups = {
    create(input: {
      folder: string;
      name: string;
      trigger: Group['trigger'];
      triggerWord?: string | null;
      isAdmin?: boolean;
      now: number;
    }): Group {
      const problem = checkGroupFolder(input.folder);
      if (problem) throw new StoreError(problem);
      try {
        const info = db
          .prepare(
            `INSERT INTO groups (folder, name, trigger, trigger_word, is_admin, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
          )
          .run(
            input.folder,
            input.name,
            input.trigger,
            input.triggerWord ?? null,
            input.isAdmin ? 1 : 0,
            input.now,
          );
        return groups.byId(Number(info.lastInsertRowid)) as Group;
      } catch (error) {
        if (String(error).includes('UNIQUE')) {
          const what = String(error).includes('is_admin')
            ? 'an admin group already exists'
            : 'already exists';
          throw new StoreError(`group '${input.folder}': ${what}`, { cause: error });
        }
        throw error;
      }
    },
    byId(id: number): Group | null {
      const row = db.prepare('SELECT * FROM groups WHERE id = ?').get(id) as GroupRow | undefined;
      return row ? toGroup(row) : null;
    },
    byFolder(folder: string): Group | null {
      const row = db.prepare('SELECT * FROM groups WHERE folder = ?').get(folder) as GroupRow | undefined;
      return row ? toGroup(row) : null;
    },
    admin(): Group | null {
      const row = db.prepare('SELECT * FROM groups WHERE is_admin = 1').get() as GroupRow | undefined;
      return row ? toGroup(row) : null;
    },
    list(): Group[] {
      return (db.prepare('SELECT * FROM groups ORDER BY id').all() as GroupRow[]).map(toGroup);
    },
    /** Removes the group and the stored text of its messages; its folder on disk is left alone. */
    remove: tx((folder: string): boolean => {
      const group = groups.byFolder(folder);
      if (!group) return false;
      db.prepare('DELETE FROM messages WHERE chat_ref IN (SELECT id FROM chats WHERE group_id = ?)').run(
        group.id,
      );
      db.prepare('DELETE FROM groups WHERE id = ?').run(group.id);
      return true;
    }),
  };

  const chats = {
    /** Records that a chat exists (name and last activity only, never message text). */
    upsert(input: { channel: string; chatId: string; name?: string; isDirect: boolean; now: number }): Chat {
      db.prepare(
        `INSERT INTO chats (channel, chat_id, name, is_direct, first_seen_at, last_seen_at)
         VALUES (@channel, @chatId, @name, @isDirect, @now, @now)
         ON CONFLICT (channel, chat_id) DO UPDATE SET
           name = COALESCE(excluded.name, chats.name), last_seen_at = excluded.last_seen_at`,
      ).run({ ...input, name: input.name ?? null, isDirect: input.isDirect ? 1 : 0 });
      return chats.get(input.channel, input.chatId) as Chat;
    },
    get(channel: string, chatId: string): Chat | null {
      const row = db.prepare('SELECT * FROM chats WHERE channel = ? AND chat_id = ?').get(channel, chatId) as
        | ChatRow
        | undefined;
      return row ? toChat(row) : null;
    },
    list(): Chat[] {
      return (db.prepare('SELECT * FROM chats ORDER BY last_seen_at DESC').all() as ChatRow[]).map(toChat);
    },
    ofGroup(groupId: number): Chat[] {
      return (db.prepare('SELECT * FROM chats WHERE group_id = ? ORDER BY id').all(groupId) as ChatRow[]).map(
        toChat,
      );
    },
    /** Registers a chat to a group (creating the chat record if it was never seen). */
    attach(input: {
      channel: string;
      chatId: string;
      groupId: number;
      isDirect: boolean;
      now: number;
    }): Chat {
      const chat = chats.upsert(input);
      db.prepare('UPDATE chats SET group_id = ? WHERE id = ?').run(input.groupId, chat.id);
      return { ...chat, groupId: input.groupId };
    },
  };

  const messages = {
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
    claimBatch: tx(
      (groupId: number, batchId: string, contextLimit: number, now: number): ClaimedBatch | null => {
        const first = db
          .prepare(
            `SELECT m.chat_ref AS chatRef, c.channel, c.chat_id AS chatId
           FROM messages m JOIN chats c ON c.id = m.chat_ref
           WHERE c.group_id = ? AND m.status = 'pending' AND m.is_trigger = 1 AND m.next_attempt_at <= ?
           ORDER BY m.id LIMIT 1`,
          )
          .get(groupId, now) as { chatRef: number; channel: string; chatId: string } | undefined;
        if (!first) return null;
        const pending = db
          .prepare(
            `SELECT id, sender_name AS senderName, text, sent_at AS sentAt, is_trigger AS isTrigger
           FROM messages WHERE chat_ref = ? AND status = 'pending' ORDER BY id`,
          )
          .all(first.chatRef) as Array<PromptMessage & { id: number; isTrigger: number }>;
        const lastTrigger = pending.findLastIndex((message) => message.isTrigger === 1);
        const candidates = pending.slice(0, lastTrigger + 1);
        const keep: typeof candidates = [];
        const skipped: number[] = [];
        let contextLeft = contextLimit;
        for (let index = candidates.length - 1; index >= 0; index--) {
          const message = candidates[index] as (typeof candidates)[number];
          if (message.isTrigger === 1) keep.unshift(message);
          else if (contextLeft > 0) {
            contextLeft--;
            keep.unshift(message);
          } else skipped.push(message.id);
        }
        const markSkipped = db.prepare(`UPDATE messages SET status = 'done' WHERE id = ?`);
        for (const id of skipped) markSkipped.run(id);
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
    nextChat(groupId: number, now: number): ChatAddress | null {
      const row = db
        .prepare(
          `SELECT c.channel, c.chat_id AS chatId FROM messages m JOIN chats c ON c.id = m.chat_ref
           WHERE c.group_id = ? AND m.status = 'pending' AND m.is_trigger = 1 AND m.next_attempt_at <= ?
           ORDER BY m.id LIMIT 1`,
        )
        .get(groupId, now) as ChatAddress | undefined;
      return row ?? null;
    },
    /** Undoes a claim that was never handed to an agent (the attempt does not count). */
    unclaim(batchId: string): void {
      db.prepare(
        `UPDATE messages SET status = 'pending', batch_id = NULL, attempts = attempts - 1
         WHERE batch_id = ? AND status = 'processing'`,
      ).run(batchId);
    },
    /** Marks batches answered and queues the answer, atomically, so a crash can neither lose nor repeat it. */
    completeBatches: tx((batchIds: string[], reply: (NewOutboxItem & { now: number }) | null): void => {
      const done = db.prepare(`UPDATE messages SET status = 'done', last_error = NULL WHERE batch_id = ?`);
      for (const batchId of batchIds) done.run(batchId);
      if (reply) outbox.enqueue(reply, reply.now);
    }),
    /** Puts a batch back for a retry after backoff, or gives up once its triggers used maxAttempts. */
    failBatch: tx(
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
    /** Test and status helper: the messages of one chat in order. */
    ofChat(
      chatRef: number,
    ): Array<{ id: number; text: string; status: string; attempts: number; isTrigger: boolean }> {
      return (
        db
          .prepare(
            'SELECT id, text, status, attempts, is_trigger AS isTrigger FROM messages WHERE chat_ref = ? ORDER BY id',
          )
          .all(chatRef) as Array<{
          id: number;
          text: string;
          status: string;
          attempts: number;
          isTrigger: number;
        }>
      ).map((row) => ({ ...row, isTrigger: row.isTrigger === 1 }));
    },
  };

  const outbox = {
    /** Queues a message unless one with the same idempotency key exists. Returns whether it was new. */
    enqueue(item: NewOutboxItem, now: number): boolean {
      const info = db
        .prepare(
          `INSERT OR IGNORE INTO outbox (idempotency_key, channel, chat_id, text, kind, status, next_attempt_at, created_at)
           VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`,
        )
        .run(item.idempotencyKey, item.channel, item.chatId, item.text, item.kind, now, now);
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

  const sessions = {
    get(groupId: number): string | null {
      const row = db
        .prepare('SELECT session_id AS sessionId FROM sessions WHERE group_id = ?')
        .get(groupId) as { sessionId: string } | undefined;
      return row?.sessionId ?? null;
    },
    set(groupId: number, sessionId: string, now: number): void {
      db.prepare(
        `INSERT INTO sessions (group_id, session_id, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (group_id) DO UPDATE SET session_id = excluded.session_id, updated_at = excluded.updated_at`,
      ).run(groupId, sessionId, now);
    },
    clear(groupId: number): void {
      db.prepare('DELETE FROM sessions WHERE group_id = ?').run(groupId);
    },
  };

  const runs = {
    start(id: string, groupId: number, now: number): void {
      db.prepare('INSERT INTO agent_runs (id, group_id, started_at) VALUES (?, ?, ?)').run(id, groupId, now);
    },
    end(id: string, reason: string, now: number): void {
      db.prepare('UPDATE agent_runs SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL').run(
        now,
        reason,
        id,
      );
    },
    /** Runs still open belong to a host that is gone: close them. */
    closeAll(reason: string, now: number): number {
      return db
        .prepare('UPDATE agent_runs SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL')
        .run(now, reason).changes;
    },
    open(): Array<{ id: string; groupId: number; startedAt: number }> {
      return db
        .prepare(
          'SELECT id, group_id AS groupId, started_at AS startedAt FROM agent_runs WHERE ended_at IS NULL',
        )
        .all() as Array<{ id: string; groupId: number; startedAt: number }>;
    },
  };

  const audit = {
    record(entry: AuditEntry, at: number): void {
      db.prepare(
        'INSERT INTO audit (at, group_folder, actor, action, decision, detail) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(at, entry.groupFolder, entry.actor, entry.action, entry.decision, JSON.stringify(entry.detail));
    },
    recent(limit: number): Array<AuditEntry & { at: number }> {
      const rows = db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit) as Array<{
        at: number;
        group_folder: string | null;
        actor: string;
        action: string;
        decision: 'allow' | 'deny';
        detail: string;
      }>;
      return rows.map((row) => ({
        at: row.at,
        groupFolder: row.group_folder,
        actor: row.actor,
        action: row.action,
        decision: row.decision,
        detail: parseDetail(row.detail),
      }));
    },
  };

  const usage = {
    record(entry: UsageEntry): void {
      db.prepare(
        `INSERT INTO usage (at, day, group_folder, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
         VALUES (@at, @day, @groupFolder, @model, @inputTokens, @outputTokens, @cacheReadTokens, @cacheWriteTokens)`,
      ).run(entry);
    },
    totalForDay(groupFolder: string, day: string): { inputTokens: number; outputTokens: number } {
      return db
        .prepare(
          `SELECT COALESCE(SUM(input_tokens + cache_read_tokens + cache_write_tokens), 0) AS inputTokens,
                  COALESCE(SUM(output_tokens), 0) AS outputTokens
           FROM usage WHERE group_folder = ? AND day = ?`,
        )
        .get(groupFolder, day) as { inputTokens: number; outputTokens: number };
    },
  };

  return {
    groups,
    chats,
    messages,
    outbox,
    sessions,
    runs,
    audit,
    usage,
    /** Runs fn in one transaction. */
    transaction<R>(fn: () => R): R {
      return db.transaction(fn)();
    },
    close(): void {
      if (db.open) db.close();
    },
  };
}

function parseDetail(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { value };
  } catch {
    return { unparsed: text };
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new StoreError(
      `the database is at schema version ${current}, newer than this Warren (${migrations.length}); upgrade Warren`,
    );
  }
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
