// One group's data as a whole, for a client who leaves: everything stored of it read out a page at a time (export),
// and everything deleted in one transaction but the audit (purge).
import type { Db } from './db.js';

/** One exported row: its kind, then its columns under camelCase names (JSON columns parsed). */
export type GroupDataRecord = { type: string } & Record<string, unknown>;

const PAGE_ROWS = 500;
const JSON_COLUMNS = new Set(['detail', 'last_detail', 'extra_mounts', 'disk_use']);

/**
 * What an export holds, each kind as SQL over the group (@id, @folder) with a `cursor` (its rowid): read in pages
 * after the last cursor, so a big group never has to fit in memory and no statement stays open between pages.
 * Outbox items are the agent's side of the conversation (the inbox holds only what people wrote).
 */
const EXPORTED: Array<[type: string, sql: string]> = [
  [
    'message',
    `SELECT m.rowid AS cursor, c.channel, c.chat_id, m.* FROM messages m JOIN chats c ON c.id = m.chat_ref
     WHERE c.group_id = @id`,
  ],
  [
    'outbox',
    `SELECT o.rowid AS cursor, o.* FROM outbox o JOIN chats c ON c.channel = o.channel AND c.chat_id = o.chat_id
     WHERE c.group_id = @id`,
  ],
  ['task', 'SELECT t.rowid AS cursor, t.* FROM tasks t WHERE t.group_id = @id'],
  [
    'task-run',
    'SELECT r.rowid AS cursor, r.* FROM task_runs r JOIN tasks t ON t.id = r.task_id WHERE t.group_id = @id',
  ],
  ['usage', 'SELECT u.rowid AS cursor, u.* FROM usage u WHERE u.group_folder = @folder'],
  ['memory-proposal', 'SELECT p.rowid AS cursor, p.* FROM memory_proposals p WHERE p.group_folder = @folder'],
  ['audit', 'SELECT a.rowid AS cursor, a.* FROM audit a WHERE a.group_folder = @folder'],
];

function toRecord(type: string, row: Record<string, unknown>): GroupDataRecord {
  const record: GroupDataRecord = { type };
  for (const [column, value] of Object.entries(row)) {
    if (column === 'cursor') continue;
    const key = column.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
    record[key] = JSON_COLUMNS.has(column) && typeof value === 'string' ? parseOrKeep(value) : value;
  }
  return record;
}

function parseOrKeep(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The group's chats as a subquery: its messages, replies and pairing requests are found through them. */
const CHATS_OF = 'SELECT id FROM chats WHERE group_id = @id';
const ADDRESSED_TO = `(channel, chat_id) IN (SELECT channel, chat_id FROM chats WHERE group_id = @id)`;

export function groupDataQueries(db: Db) {
  return {
    /**
     * Everything stored of a group, the group itself (with its chats) first; null when there is no such group.
     * The generator reads one page per step, so the caller may wait (a full pipe) between records.
     */
    export(folder: string): Iterable<GroupDataRecord> | null {
      const group = db.get<Record<string, unknown> & { id: number }>(
        'SELECT * FROM groups WHERE folder = ?',
        folder,
      );
      if (!group) return null;
      const at = { id: group.id, folder };
      return (function* () {
        const chats = db.all<Record<string, unknown>>(
          'SELECT * FROM chats WHERE group_id = ? ORDER BY id',
          group.id,
        );
        // The group's network settings are few rows each (the owner's): read whole. Secrets' values are the owner's,
        // not the group's, and never exported; a binding names its secret only.
        const settingsOf = (table: string) =>
          db.all<Record<string, unknown>>(`SELECT * FROM ${table} WHERE group_folder = ?`, folder);
        yield {
          ...toRecord('group', group),
          chats: chats.map((chat) => toRecord('chat', chat)),
          egressRules: settingsOf('egress_rules').map((row) => toRecord('egress-rule', row)),
          secretBindings: settingsOf('secret_bindings').map((row) => toRecord('secret-binding', row)),
          mcpServers: settingsOf('mcp_servers').map((row) => toRecord('mcp-server', row)),
        };
        for (const [type, sql] of EXPORTED) {
          const page = `SELECT * FROM (${sql}) WHERE cursor > @after ORDER BY cursor LIMIT ${PAGE_ROWS}`;
          for (let after = 0; ; ) {
            const rows = db.all<Record<string, unknown> & { cursor: number }>(page, { ...at, after });
            for (const row of rows) yield toRecord(type, row);
            if (rows.length < PAGE_ROWS) break;
            after = (rows.at(-1) as { cursor: number }).cursor;
          }
        }
      })();
    },

    /**
     * Deletes a group and everything stored of it in one transaction, except the audit; null when there is no
     * such group. Returns the rows deleted per table, and the staged files of its unsent replies (the caller
     * deletes those). Per table:
     * - messages, outbox (and sent_parts, each sent part of a reply), pairing_requests, chats: through the group's
     *   chats; the chats go too (their names are the client's), and a chat that writes again is a stranger.
     * - tasks and task_runs: here, to be counted (the cascade from groups would take them too).
     * - sessions, agent_runs: by cascade from groups.
     * - usage, usage_days, memory_proposals, egress_rules, secret_bindings, mcp_servers: by folder (no foreign key; a group made
     *   again under the name starts afresh). The secrets themselves are the owner's (secrets.json): they stay.
     * - audit: kept. It is the owner's record of what happened, this purge included; it prunes by age.
     * - channel_state, channel_cursors: kept, per channel, not per chat.
     */
    purge: db.transaction((folder: string) => {
      const group = db.get<{ id: number }>('SELECT id FROM groups WHERE folder = ?', folder);
      if (!group) return null;
      const at = { id: group.id, folder };
      const files = db
        .all<{ file: string }>(
          `SELECT file_path AS file FROM outbox WHERE file_path IS NOT NULL AND ${ADDRESSED_TO}`,
          at,
        )
        .map((row) => row.file);
      const count = (sql: string) => db.run(sql, at).changes;
      const counts = {
        // A part's key is its reply's key, '#' and its number ('$' follows '#'): a range of sent_parts' key.
        sentParts: count(`DELETE FROM sent_parts WHERE rowid IN (SELECT s.rowid FROM outbox o
          JOIN chats c ON c.channel = o.channel AND c.chat_id = o.chat_id
          JOIN sent_parts s ON s.part_key >= o.idempotency_key || '#' AND s.part_key < o.idempotency_key || '$'
          WHERE c.group_id = @id)`),
        messages: count(`DELETE FROM messages WHERE chat_ref IN (${CHATS_OF})`),
        outbox: count(`DELETE FROM outbox WHERE ${ADDRESSED_TO}`),
        pairingRequests: count(`DELETE FROM pairing_requests WHERE ${ADDRESSED_TO}`),
        taskRuns: count('DELETE FROM task_runs WHERE task_id IN (SELECT id FROM tasks WHERE group_id = @id)'),
        tasks: count('DELETE FROM tasks WHERE group_id = @id'),
        usage: count('DELETE FROM usage WHERE group_folder = @folder'),
        usageDays: count('DELETE FROM usage_days WHERE group_folder = @folder'),
        memoryProposals: count('DELETE FROM memory_proposals WHERE group_folder = @folder'),
        egressRules: count('DELETE FROM egress_rules WHERE group_folder = @folder'),
        secretBindings: count('DELETE FROM secret_bindings WHERE group_folder = @folder'),
        mcpServers: count('DELETE FROM mcp_servers WHERE group_folder = @folder'),
        chats: count(`DELETE FROM chats WHERE group_id = @id`),
        groups: count('DELETE FROM groups WHERE id = @id'),
      };
      return { counts, files };
    }),
  };
}
