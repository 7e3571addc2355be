// Channel SQL: each channel's last connection state, its durable cursors, the parts of replies it sent, and chats
// the service gave a new id.
import type Database from 'better-sqlite3';
import type { ChannelState } from './records.js';

export type StoredChannelState = { channel: string; state: ChannelState; updatedAt: number };

/** Parts sent longer ago than this are forgotten: an outbox item is never retried that late. */
const SENT_PART_RETENTION_MS = 14 * 24 * 3600_000;

const STATUSES = new Set(['connected', 'reconnecting', 'disconnected', 'logged-out']);

type StateRow = Omit<StoredChannelState, 'state'> & { status: string; reason: string | null };
/** A channel_state row as a record; a status this version does not know reads as disconnected. */
function toStored(row: StateRow): StoredChannelState {
  const state: ChannelState =
    row.status === 'connected'
      ? { status: 'connected' }
      : STATUSES.has(row.status)
        ? ({ status: row.status, reason: row.reason ?? '' } as ChannelState)
        : { status: 'disconnected', reason: `unknown state '${row.status}'` };
  return { channel: row.channel, state, updatedAt: row.updatedAt };
}

/** The channel queries over an open database. */
export function channelQueries(db: Database.Database) {
  return {
    /** Remembers a channel's latest state so the separate `warren status` process can show it. */
    setState(channel: string, state: ChannelState, now: number): void {
      if (!STATUSES.has(state.status)) throw new Error(`unknown channel state ${state.status}`);
      db.prepare(
        `INSERT INTO channel_state (channel, status, reason, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (channel) DO UPDATE SET status = excluded.status, reason = excluded.reason,
           updated_at = excluded.updated_at`,
      ).run(channel, state.status, 'reason' in state ? state.reason : null, now);
    },
    states(): StoredChannelState[] {
      const sql =
        'SELECT channel, status, reason, updated_at AS updatedAt FROM channel_state ORDER BY channel';
      return (db.prepare(sql).all() as StateRow[]).map(toStored);
    },
    getCursor(channel: string, name: string): string | null {
      const row = db
        .prepare('SELECT value FROM channel_cursors WHERE channel = ? AND name = ?')
        .get(channel, name);
      return (row as { value: string } | undefined)?.value ?? null;
    },
    setCursor(channel: string, name: string, value: string, now: number): void {
      db.prepare(
        `INSERT INTO channel_cursors (channel, name, value, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (channel, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ).run(channel, name, value, now);
    },
    /** The channel's id for a part already sent (undefined when it was not), e.g. for key "k#2". */
    sentPart(partKey: string): { externalId: string | null } | undefined {
      return db.prepare('SELECT external_id AS externalId FROM sent_parts WHERE part_key = ?').get(partKey) as
        | { externalId: string | null }
        | undefined;
    },
    recordSentPart(partKey: string, externalId: string | null, now: number): void {
      const sql = 'INSERT OR REPLACE INTO sent_parts (part_key, external_id, sent_at) VALUES (?, ?, ?)';
      db.prepare(sql).run(partKey, externalId, now);
      db.prepare('DELETE FROM sent_parts WHERE sent_at < ?').run(now - SENT_PART_RETENTION_MS);
    },
    /**
     * A chat got a new id on its channel (a Telegram group upgraded to a supergroup). Its record (so its group and
     * messages), its replies and its tasks follow it, in one transaction; replies still to send are due at once.
     * A record already under the new id that belongs to no group is dropped (the service says the two are one
     * chat); if it is registered too, nothing moves ('conflict').
     */
    moveChat(channel: string, fromChatId: string, toChatId: string, now: number) {
      return db.transaction((): 'moved' | 'unknown' | 'conflict' => {
        const chatRow = (chatId: string) =>
          db
            .prepare('SELECT id, group_id AS groupId FROM chats WHERE channel = ? AND chat_id = ?')
            .get(channel, chatId) as { id: number; groupId: number | null } | undefined;
        const from = chatRow(fromChatId);
        if (!from || fromChatId === toChatId) return 'unknown';
        const to = chatRow(toChatId);
        if (to && to.groupId !== null) return 'conflict';
        if (to) db.prepare('DELETE FROM chats WHERE id = ?').run(to.id);
        db.prepare('UPDATE chats SET chat_id = ? WHERE id = ?').run(toChatId, from.id);
        const move = { channel, from: fromChatId, to: toChatId, now };
        db.prepare(
          `UPDATE outbox SET chat_id = @to,
             next_attempt_at = CASE WHEN status = 'pending' THEN MIN(next_attempt_at, @now) ELSE next_attempt_at END
           WHERE channel = @channel AND chat_id = @from`,
        ).run(move);
        db.prepare('UPDATE tasks SET chat_id = @to WHERE channel = @channel AND chat_id = @from').run(move);
        return 'moved';
      })();
    },
  };
}
