// Groups and chats SQL: who is registered, which chats belong to which group, each group's mounts and quota.
import { z } from 'zod';
import { type Db, StoreError } from './db.js';
import type { ChatAddress, Group } from './records.js';

/**
 * Folder names become host paths: only a plain lowercase segment is accepted (no '..', '/', dots), and none that
 * would collide with Warren's own folders under the data directory.
 */
export function checkGroupFolder(folder: string): string | null {
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(folder)) {
    return `folder '${folder}' must be 1-64 of a-z, 0-9, '-' or '_', starting with a letter or digit`;
  }
  const reserved = ['global', 'ipc', 'sessions', 'sockets', 'logs', 'tmp'];
  return reserved.includes(folder) ? `folder '${folder}' is reserved` : null;
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

export type Budget = { daily: number | null; monthly: number | null };

/** A JSON column as its schema says, or null when it is empty or does not parse (fail closed). */
function parseColumn<T>(schema: z.ZodType<T>, text: unknown): T | null {
  try {
    return schema.safeParse(JSON.parse(String(text))).data ?? null;
  } catch {
    return null;
  }
}

/** A record as selected under its own names, but with its flag as SQLite stores booleans: 0 or 1. */
type Stored<T, Flag extends keyof T> = Omit<T, Flag> & Record<Flag, number>;

const SELECT_GROUP = `SELECT id, folder, name, trigger, trigger_word AS triggerWord, is_admin AS isAdmin,
  created_at AS createdAt FROM groups`;
const SELECT_CHAT = `SELECT id, channel, chat_id AS chatId, name, is_direct AS isDirect, group_id AS groupId,
  last_seen_at AS lastSeenAt FROM chats`;

type NewGroup = Pick<Group, 'folder' | 'name' | 'trigger'> & Partial<Pick<Group, 'triggerWord' | 'isAdmin'>>;

export function groupQueries(db: Db) {
  const groupsWhere = (where: string, ...args: unknown[]): Group[] =>
    db.all<Stored<Group, 'isAdmin'>>(`${SELECT_GROUP} WHERE ${where}`, ...args).map((row) => ({
      ...row,
      isAdmin: row.isAdmin === 1,
    }));
  const column = (name: string, key: 'id' | 'folder', value: number | string) =>
    db.get<{ v: unknown }>(`SELECT ${name} AS v FROM groups WHERE ${key} = ?`, value)?.v ?? null;
  const setColumn = (name: string, key: 'id' | 'folder', value: number | string, to: unknown) =>
    db.run(`UPDATE groups SET ${name} = ? WHERE ${key} = ?`, to, value).changes > 0;
  const groups = {
    create(input: NewGroup & { now: number }): Group {
      const problem = checkGroupFolder(input.folder);
      if (problem) throw new StoreError(problem);
      try {
        const sql = `INSERT INTO groups (folder, name, trigger, trigger_word, is_admin, created_at)
          VALUES (@folder, @name, @trigger, @triggerWord, @isAdmin, @now)`;
        db.run(sql, { ...input, triggerWord: input.triggerWord ?? null, isAdmin: input.isAdmin ? 1 : 0 });
        return groups.byFolder(input.folder) as Group;
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
    extraMounts: (id: number) => parseColumn(extraMountsSchema, column('extra_mounts', 'id', id)) ?? [],
    setExtraMounts: (id: number, mounts: ExtraMount[]) =>
      void setColumn('extra_mounts', 'id', id, JSON.stringify(extraMountsSchema.parse(mounts))),
    /** Whether the group's agent may search the web (the model API's server tool); off unless the owner said so. */
    isWebSearchOn: (folder: string) => column('web_search', 'folder', folder) === 1,
    setWebSearch: (folder: string, isOn: boolean) => setColumn('web_search', 'folder', folder, isOn ? 1 : 0),
    /** Whether a connection to a host not on the group's list waits while the owner is asked (on by default). */
    isEgressAskOn: (folder: string) => column('egress_ask', 'folder', folder) === 1,
    setEgressAsk: (folder: string, isOn: boolean) => setColumn('egress_ask', 'folder', folder, isOn ? 1 : 0),
    /** The group's own disk quota in MiB, or null for the configured default. */
    diskQuotaMb: (folder: string) => column('disk_quota_mb', 'folder', folder) as number | null,
    setDiskQuotaMb: (folder: string, megabytes: number | null) =>
      setColumn('disk_quota_mb', 'folder', folder, megabytes),
    /** The group's own money budgets (null: the configured default; 0: no limit); null when there is no group. */
    budget: (folder: string) =>
      db.get<Budget>(
        'SELECT daily_budget AS daily, monthly_budget AS monthly FROM groups WHERE folder = ?',
        folder,
      ),
    setBudget: (folder: string, budget: Budget) =>
      db.run('UPDATE groups SET daily_budget = @daily, monthly_budget = @monthly WHERE folder = @folder', {
        ...budget,
        folder,
      }).changes > 0,
    /** The group's last disk measurement (disk-quota.ts); a value that does not parse counts as none. */
    diskUse: (folder: string) => parseColumn(diskUseSchema, column('disk_use', 'folder', folder)),
    setDiskUse: (folder: string, use: z.infer<typeof diskUseSchema> | null) =>
      void setColumn('disk_use', 'folder', folder, use && JSON.stringify(use)),
    /**
     * Removes the group and the stored text of its messages; its folder on disk is left alone. Its egress rules,
     * secret bindings and MCP servers go too, as its mounts do with its row: a group made again under the name must not inherit its
     * network access or the owner's secrets.
     */
    remove: db.transaction((folder: string): boolean => {
      const chatsOf = 'SELECT c.id FROM chats c JOIN groups g ON g.id = c.group_id WHERE g.folder = ?';
      db.run(`DELETE FROM messages WHERE chat_ref IN (${chatsOf})`, folder);
      db.run('DELETE FROM egress_rules WHERE group_folder = ?', folder);
      db.run('DELETE FROM secret_bindings WHERE group_folder = ?', folder);
      db.run('DELETE FROM mcp_servers WHERE group_folder = ?', folder);
      return db.run('DELETE FROM groups WHERE folder = ?', folder).changes > 0;
    }),
    /** The group's agent session (Claude Code's), resumed by its next run. */
    session: (groupId: number) =>
      db.get<{ id: string }>('SELECT session_id AS id FROM sessions WHERE group_id = ?', groupId)?.id ?? null,
    /** The next run starts a fresh conversation. */
    clearSession: (groupId: number) => db.run('DELETE FROM sessions WHERE group_id = ?', groupId).changes > 0,
    setSession(groupId: number, sessionId: string, now: number): void {
      const sql = `INSERT INTO sessions (group_id, session_id, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (group_id) DO UPDATE SET session_id = excluded.session_id, updated_at = excluded.updated_at`;
      db.run(sql, groupId, sessionId, now);
    },
  };
  return groups;
}

export function chatQueries(db: Db) {
  const chatsWhere = (where: string, ...args: unknown[]): Chat[] =>
    db.all<Stored<Chat, 'isDirect'>>(`${SELECT_CHAT} WHERE ${where}`, ...args).map((row) => ({
      ...row,
      isDirect: row.isDirect === 1,
    }));
  const chats = {
    /** Records that a chat exists (name and last activity only, never message text). */
    upsert(input: ChatAddress & { name?: string; isDirect: boolean; now: number }): Chat {
      const sql = `INSERT INTO chats (channel, chat_id, name, is_direct, first_seen_at, last_seen_at)
        VALUES (@channel, @chatId, @name, @isDirect, @now, @now)
        ON CONFLICT (channel, chat_id) DO UPDATE SET
          name = COALESCE(excluded.name, chats.name), last_seen_at = excluded.last_seen_at`;
      db.run(sql, { ...input, name: input.name ?? null, isDirect: input.isDirect ? 1 : 0 });
      return chats.get(input.channel, input.chatId) as Chat;
    },
    get: (channel: string, chatId: string): Chat | null =>
      chatsWhere('channel = ? AND chat_id = ?', channel, chatId)[0] ?? null,
    list: () => chatsWhere('1 ORDER BY last_seen_at DESC'),
    ofGroup: (groupId: number) => chatsWhere('group_id = ? ORDER BY id', groupId),
    /** Registers a chat to a group (creating the chat record if it was never seen). */
    attach(input: ChatAddress & { groupId: number; isDirect: boolean; now: number }): Chat {
      const chat = chats.upsert(input);
      db.run('UPDATE chats SET group_id = ? WHERE id = ?', input.groupId, chat.id);
      return { ...chat, groupId: input.groupId };
    },
  };
  return chats;
}
