// The SQLite store: owns every SQL statement; callers see camelCase records and whole operations.
import Database from 'better-sqlite3';
import { z } from 'zod';
import { auditQueries } from './audit.js';
import { channelQueries } from './channels.js';
import { memoryQueries } from './memory.js';
import { messageQueries } from './messages.js';
import { migrations } from './migrations.js';
import { outboxQueries } from './outbox.js';
import { pairingQueries } from './pairing.js';
import type { ChatAddress, Group } from './records.js';
import { taskQueries } from './tasks.js';

export type { AuditEntry, AuditRecord } from './audit.js';
export type { StoredChannelState } from './channels.js';
export type { MemoryProposal, MemoryProposalStatus } from './memory.js';
export type { BatchFailure, ClaimedBatch, NewMessage } from './messages.js';
export type { NewOutboxItem, OutboxItem } from './outbox.js';
export type { PairingRequest, PairingStatus } from './pairing.js';
export type { ContextMode, Task, TaskRun, TaskRunStatus, TaskStatus } from './tasks.js';

export const GROUP_FOLDER_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Names that would collide with Warren's own folders under the data directory. */
const RESERVED_FOLDERS = new Set(['global', 'ipc', 'sessions', 'sockets', 'logs', 'tmp']);

const extraMountsSchema = z.array(
  z.object({
    hostPath: z.string().min(1),
    containerName: z.string().min(1).optional(),
    isReadOnly: z.boolean().optional(),
  }),
);

/** An extra host folder a group asks to see; granted only if the mount allowlist allows it at start. */
export type ExtraMount = z.infer<typeof extraMountsSchema>[number];
const diskUseSchema = z.object({
  bytes: z.number().int().min(0),
  entries: z.number().int().min(0),
  diskUsedBefore: z.number().min(0),
});

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

/** A record as selected under its own names, but with its flag as SQLite stores booleans: 0 or 1. */
type Stored<T, Flag extends keyof T> = Omit<T, Flag> & Record<Flag, number>;

const GROUP_COLUMNS =
  'id, folder, name, trigger, trigger_word AS triggerWord, is_admin AS isAdmin, created_at AS createdAt';
type GroupRow = Stored<Group, 'isAdmin'>;
const toGroup = (row: GroupRow): Group => ({ ...row, isAdmin: row.isAdmin === 1 });

const CHAT_COLUMNS = `id, channel, chat_id AS chatId, name, is_direct AS isDirect, group_id AS groupId,
  last_seen_at AS lastSeenAt`;
type ChatRow = Stored<Chat, 'isDirect'>;
const toChat = (row: ChatRow): Chat => ({ ...row, isDirect: row.isDirect === 1 });

export type Store = ReturnType<typeof openStore>;

/** Opens (creating if needed) the database at path (':memory:' for tests) and brings its schema up to date. */
export function openStore(path: string) {
  const db = new Database(path);
  cacheStatements(db);
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
      const row = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups WHERE id = ?`).get(id);
      return row ? toGroup(row as GroupRow) : null;
    },
    byFolder(folder: string): Group | null {
      const row = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups WHERE folder = ?`).get(folder);
      return row ? toGroup(row as GroupRow) : null;
    },
    admin(): Group | null {
      const row = db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups WHERE is_admin = 1`).get();
      return row ? toGroup(row as GroupRow) : null;
    },
    list(): Group[] {
      return (db.prepare(`SELECT ${GROUP_COLUMNS} FROM groups ORDER BY id`).all() as GroupRow[]).map(toGroup);
    },
    /** The extra host folders a group asks for; a column that does not parse counts as none (fail closed). */
    extraMounts(groupId: number): ExtraMount[] {
      const row = db.prepare('SELECT extra_mounts AS value FROM groups WHERE id = ?').get(groupId) as
        | { value: string }
        | undefined;
      if (!row) return [];
      let json: unknown;
      try {
        json = JSON.parse(row.value);
      } catch {
        return [];
      }
      const parsed = extraMountsSchema.safeParse(json);
      return parsed.success ? parsed.data : [];
    },
    setExtraMounts(groupId: number, mounts: ExtraMount[]): void {
      db.prepare('UPDATE groups SET extra_mounts = ? WHERE id = ?').run(
        JSON.stringify(extraMountsSchema.parse(mounts)),
        groupId,
      );
    },
    /** The group's own disk quota in MiB, or null for the configured default. */
    diskQuotaMb(folder: string): number | null {
      const row = db.prepare('SELECT disk_quota_mb AS value FROM groups WHERE folder = ?').get(folder) as
        | { value: number | null }
        | undefined;
      return row?.value ?? null;
    },
    setDiskQuotaMb(folder: string, megabytes: number | null): boolean {
      return (
        db.prepare('UPDATE groups SET disk_quota_mb = ? WHERE folder = ?').run(megabytes, folder).changes > 0
      );
    },
    /** The group's last disk measurement (disk-quota.ts); a value that does not parse counts as none. */
    diskUse(folder: string): { bytes: number; entries: number; diskUsedBefore: number } | null {
      const row = db.prepare('SELECT disk_use AS value FROM groups WHERE folder = ?').get(folder) as
        | { value: string | null }
        | undefined;
      if (!row?.value) return null;
      try {
        const parsed = diskUseSchema.safeParse(JSON.parse(row.value));
        return parsed.success ? parsed.data : null;
      } catch {
        return null;
      }
    },
    setDiskUse(folder: string, use: { bytes: number; entries: number; diskUsedBefore: number } | null): void {
      db.prepare('UPDATE groups SET disk_use = ? WHERE folder = ?').run(
        use === null ? null : JSON.stringify(use),
        folder,
      );
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
      const row = db
        .prepare(`SELECT ${CHAT_COLUMNS} FROM chats WHERE channel = ? AND chat_id = ?`)
        .get(channel, chatId);
      return row ? toChat(row as ChatRow) : null;
    },
    list(): Chat[] {
      const rows = db.prepare(`SELECT ${CHAT_COLUMNS} FROM chats ORDER BY last_seen_at DESC`).all();
      return (rows as ChatRow[]).map(toChat);
    },
    ofGroup(groupId: number): Chat[] {
      const rows = db
        .prepare(`SELECT ${CHAT_COLUMNS} FROM chats WHERE group_id = ? ORDER BY id`)
        .all(groupId);
      return (rows as ChatRow[]).map(toChat);
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

  const outbox = outboxQueries(db);
  const messages = messageQueries(db, outbox);
  const tasks = taskQueries(db, outbox);
  const channels = channelQueries(db);
  const pairing = pairingQueries(db);
  const memory = memoryQueries(db);

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

  const audit = auditQueries(db);

  const usage = {
    record(entry: UsageEntry): void {
      db.prepare(
        `INSERT INTO usage (at, day, group_folder, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, run_id)
         VALUES (@at, @day, @groupFolder, @model, @inputTokens, @outputTokens, @cacheReadTokens, @cacheWriteTokens, @runId)`,
      ).run({ ...entry, runId: entry.runId ?? null });
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
    channels,
    pairing,
    memory,
    sessions,
    runs,
    audit,
    usage,
    tasks,
    /** Runs fn in one transaction. */
    transaction<R>(fn: () => R): R {
      return db.transaction(fn)();
    },
    close(): void {
      if (db.open) db.close();
    },
  };
}

/**
 * Makes db.prepare return one compiled statement per SQL text. Every query here is a fixed string, so the cache
 * is bounded; without it each call compiles again (measured: 1.3–1.7× slower ingest, ~85 MB more garbage per
 * 100,000 messages). Safe because no caller changes a statement's mode (pluck/raw/expand) or iterates.
 */
function cacheStatements(db: Database.Database): void {
  const compile = db.prepare.bind(db);
  const statements = new Map<string, ReturnType<typeof compile>>();
  db.prepare = ((sql: string) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = compile(sql);
      statements.set(sql, statement);
    }
    return statement;
  }) as typeof db.prepare;
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
