// Groups and chats SQL: who is registered, which chats belong to which group, each group's mounts and quota.
import type Database from 'better-sqlite3';
import { z } from 'zod';
import type { ChatAddress, Group } from './records.js';

const GROUP_FOLDER_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Names that would collide with Warren's own folders under the data directory. */
const RESERVED_FOLDERS = new Set(['global', 'ipc', 'sessions', 'sockets', 'logs', 'tmp']);

export class StoreError extends Error {
  override name = 'StoreError';
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

const extraMountsSchema = z.array(
  z.object({
    hostPath: z.string().min(1),
    containerName: z.string().min(1).optional(),
    isReadOnly: z.boolean().optional(),
  }),
);
/** An extra host folder a group asks to see; granted only if the mount allowlist allows it at start. */
type ExtraMount = z.infer<typeof extraMountsSchema>[number];
const diskUseSchema = z.object({
  bytes: z.number().int().min(0),
  entries: z.number().int().min(0),
  diskUsedBefore: z.number().min(0),
});
type DiskUse = z.infer<typeof diskUseSchema>;

/** A JSON column as its schema says, or null when it is empty or does not parse (fail closed). */
function parseColumn<T>(schema: z.ZodType<T>, text: string | null | undefined): T | null {
  if (!text) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** A record as selected under its own names, but with its flag as SQLite stores booleans: 0 or 1. */
type Stored<T, Flag extends keyof T> = Omit<T, Flag> & Record<Flag, number>;

const SELECT_GROUP = `SELECT id, folder, name, trigger, trigger_word AS triggerWord, is_admin AS isAdmin,
  created_at AS createdAt FROM groups`;
const toGroup = (row: Stored<Group, 'isAdmin'>): Group => ({ ...row, isAdmin: row.isAdmin === 1 });

const SELECT_CHAT = `SELECT id, channel, chat_id AS chatId, name, is_direct AS isDirect, group_id AS groupId,
  last_seen_at AS lastSeenAt FROM chats`;
const toChat = (row: Stored<Chat, 'isDirect'>): Chat => ({ ...row, isDirect: row.isDirect === 1 });

type NewGroup = Pick<Group, 'folder' | 'name' | 'trigger'> & Partial<Pick<Group, 'triggerWord' | 'isAdmin'>>;

export function groupQueries(db: Database.Database) {
  const groupsWhere = (where: string, ...args: unknown[]) =>
    (db.prepare(`${SELECT_GROUP} WHERE ${where}`).all(...args) as Array<Stored<Group, 'isAdmin'>>).map(
      toGroup,
    );
  /** One column of the group whose key column (id or folder) has this value; null when there is none. */
  const column = (name: string, key: 'id' | 'folder', value: number | string) => {
    const row = db.prepare(`SELECT ${name} AS value FROM groups WHERE ${key} = ?`).get(value);
    return (row as { value: string | number | null } | undefined)?.value ?? null;
  };
  const groups = {
    create(input: NewGroup & { now: number }): Group {
      const problem = checkGroupFolder(input.folder);
      if (problem) throw new StoreError(problem);
      try {
        const info = db
          .prepare(
            `INSERT INTO groups (folder, name, trigger, trigger_word, is_admin, created_at)
             VALUES (@folder, @name, @trigger, @triggerWord, @isAdmin, @now)`,
          )
          .run({ ...input, triggerWord: input.triggerWord ?? null, isAdmin: input.isAdmin ? 1 : 0 });
        return groups.byId(Number(info.lastInsertRowid)) as Group;
      } catch (error) {
        if (!String(error).includes('UNIQUE')) throw error;
        const what = String(error).includes('is_admin') ? 'an admin group already exists' : 'already exists';
        throw new StoreError(`group '${input.folder}': ${what}`, { cause: error });
      }
    },
    byId: (id: number): Group | null => groupsWhere('id = ?', id)[0] ?? null,
    byFolder: (folder: string): Group | null => groupsWhere('folder = ?', folder)[0] ?? null,
    admin: (): Group | null => groupsWhere('is_admin = 1')[0] ?? null,
    list: () => groupsWhere('1 ORDER BY id'),
    /** The extra host folders a group asks for; a column that does not parse counts as none (fail closed). */
    extraMounts: (groupId: number): ExtraMount[] =>
      parseColumn(extraMountsSchema, column('extra_mounts', 'id', groupId) as string | null) ?? [],
    setExtraMounts(groupId: number, mounts: ExtraMount[]): void {
      const json = JSON.stringify(extraMountsSchema.parse(mounts));
      db.prepare('UPDATE groups SET extra_mounts = ? WHERE id = ?').run(json, groupId);
    },
    /** The group's own disk quota in MiB, or null for the configured default. */
    diskQuotaMb: (folder: string) => column('disk_quota_mb', 'folder', folder) as number | null,
    setDiskQuotaMb(folder: string, megabytes: number | null): boolean {
      const sql = 'UPDATE groups SET disk_quota_mb = ? WHERE folder = ?';
      return db.prepare(sql).run(megabytes, folder).changes > 0;
    },
    /** The group's last disk measurement (disk-quota.ts); a value that does not parse counts as none. */
    diskUse: (folder: string) =>
      parseColumn(diskUseSchema, column('disk_use', 'folder', folder) as string | null),
    setDiskUse(folder: string, use: DiskUse | null): void {
      const json = use === null ? null : JSON.stringify(use);
      db.prepare('UPDATE groups SET disk_use = ? WHERE folder = ?').run(json, folder);
    },
    /** Removes the group and the stored text of its messages; its folder on disk is left alone. */
    remove: db.transaction((folder: string): boolean => {
      const group = groups.byFolder(folder);
      if (!group) return false;
      db.prepare('DELETE FROM messages WHERE chat_ref IN (SELECT id FROM chats WHERE group_id = ?)').run(
        group.id,
      );
      db.prepare('DELETE FROM groups WHERE id = ?').run(group.id);
      return true;
    }),
  };
  return groups;
}

export function chatQueries(db: Database.Database) {
  const chatsWhere = (where: string, ...args: unknown[]) =>
    (db.prepare(`${SELECT_CHAT} WHERE ${where}`).all(...args) as Array<Stored<Chat, 'isDirect'>>).map(toChat);
  const chats = {
    /** Records that a chat exists (name and last activity only, never message text). */
    upsert(input: ChatAddress & { name?: string; isDirect: boolean; now: number }): Chat {
      db.prepare(
        `INSERT INTO chats (channel, chat_id, name, is_direct, first_seen_at, last_seen_at)
         VALUES (@channel, @chatId, @name, @isDirect, @now, @now)
         ON CONFLICT (channel, chat_id) DO UPDATE SET
           name = COALESCE(excluded.name, chats.name), last_seen_at = excluded.last_seen_at`,
      ).run({ ...input, name: input.name ?? null, isDirect: input.isDirect ? 1 : 0 });
      return chats.get(input.channel, input.chatId) as Chat;
    },
    get: (channel: string, chatId: string): Chat | null =>
      chatsWhere('channel = ? AND chat_id = ?', channel, chatId)[0] ?? null,
    list: () => chatsWhere('1 ORDER BY last_seen_at DESC'),
    ofGroup: (groupId: number) => chatsWhere('group_id = ? ORDER BY id', groupId),
    /** Registers a chat to a group (creating the chat record if it was never seen). */
    attach(input: ChatAddress & { groupId: number; isDirect: boolean; now: number }): Chat {
      const chat = chats.upsert(input);
      db.prepare('UPDATE chats SET group_id = ? WHERE id = ?').run(input.groupId, chat.id);
      return { ...chat, groupId: input.groupId };
    },
  };
  return chats;
}
