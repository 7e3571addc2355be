// Channel SQL: each channel's last connection state, its durable cursors, the parts of replies it sent, and chats
// the service gave a new id.
import type { Db } from './db.js';
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

export function channelQueries(db: Db) {
  return {
    /** Remembers a channel's latest state so the separate `warren status` process can show it. */
    setState(channel: string, state: ChannelState, now: number): void {
      if (!STATUSES.has(state.status)) throw new Error(`unknown channel state ${state.status}`);
      const sql = `INSERT INTO channel_state (channel, status, reason, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (channel) DO UPDATE SET status = excluded.status, reason = excluded.reason,
          updated_at = excluded.updated_at`;
      db.run(sql, channel, state.status, 'reason' in state ? state.reason : null, now);
    },
    states(): StoredChannelState[] {
      const sql =
        'SELECT channel, status, reason, updated_at AS updatedAt FROM channel_state ORDER BY channel';
      return db.all<StateRow>(sql).map(toStored);
    },
    getCursor(channel: string, name: string): string | null {
      const sql = 'SELECT value FROM channel_cursors WHERE channel = ? AND name = ?';
      return db.get<{ value: string }>(sql, channel, name)?.value ?? null;
    },
    setCursor(channel: string, name: string, value: string, now: number): void {
      const sql = `INSERT INTO channel_cursors (channel, name, value, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (channel, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
      db.run(sql, channel, name, value, now);
    },
    /** The channel's id for a part already sent (undefined when it was not), e.g. for key "k#2". */
    sentPart(partKey: string) {
      const sql = 'SELECT external_id AS externalId FROM sent_parts WHERE part_key = ?';
      return db.prepare(sql).get(partKey) as { externalId: string | null } | undefined;
    },
    recordSentPart(partKey: string, externalId: string | null, now: number): void {
      const sql = 'INSERT OR REPLACE INTO sent_parts (part_key, external_id, sent_at) VALUES (?, ?, ?)';
      db.run(sql, partKey, externalId, now);
      db.run('DELETE FROM sent_parts WHERE sent_at < ?', now - SENT_PART_RETENTION_MS);
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
        if (to) db.run('DELETE FROM chats WHERE id = ?', to.id);
        db.run('UPDATE chats SET chat_id = ? WHERE id = ?', toChatId, from.id);
        const move = { channel, from: fromChatId, to: toChatId, now };
        const sql = `UPDATE outbox SET chat_id = @to,
            next_attempt_at = CASE WHEN status = 'pending' THEN MIN(next_attempt_at, @now) ELSE next_attempt_at END
          WHERE channel = @channel AND chat_id = @from`;
        db.run(sql, move);
        db.run('UPDATE tasks SET chat_id = @to WHERE channel = @channel AND chat_id = @from', move);
        return 'moved';
      })();
    },
  };
}
