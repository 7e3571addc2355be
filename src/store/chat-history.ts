// A chat's conversation as the owner's page shows it: the messages people sent (inbox) and what went back (outbox),
// newest first, paged. Both tables keep their rows until retention prunes them, so history survives restarts.
import type { Db } from './db.js';
import type { ChatAddress } from './records.js';

export interface HistoryItem {
  /** Stable across reloads and the live stream: 'm:' + the message's external id, 'o:' + the reply's key. */
  key: string;
  role: 'user' | 'assistant';
  senderName: string;
  text: string;
  /** ms since the epoch. */
  at: number;
  /** The outbox's delivery status for replies; the inbox status for messages. */
  status: string;
  /** Where the next (older) page starts. */
  cursor: string;
}

const HISTORY = `SELECT * FROM (
    SELECT 'm:' || m.external_id AS key, 'user' AS role, m.sender_name AS senderName, m.text, m.sent_at AS at,
      m.status, 0 AS source, m.id AS rowId
    FROM messages m JOIN chats c ON c.id = m.chat_ref WHERE c.channel = @channel AND c.chat_id = @chatId
    UNION ALL
    SELECT 'o:' || idempotency_key, 'assistant', '', CASE WHEN file_path IS NULL THEN text
      ELSE '📎 ' || text END, created_at, status, 1, id
    FROM outbox WHERE channel = @channel AND chat_id = @chatId
  ) WHERE (at, source, rowId) < (@at, @source, @rowId)
  ORDER BY at DESC, source DESC, rowId DESC LIMIT @limit`;

const CURSOR = /^(\d{1,16})-([01])-(\d{1,16})$/;

export function chatHistoryQueries(db: Db) {
  return {
    /** Up to limit items older than cursor (null: the newest), newest first. Throws on a malformed cursor. */
    page(chat: ChatAddress, cursor: string | null, limit: number): HistoryItem[] {
      const match = cursor === null ? null : CURSOR.exec(cursor);
      if (cursor !== null && !match) throw new Error(`malformed history cursor ${JSON.stringify(cursor)}`);
      const [at, source, rowId] = match ? match.slice(1).map(Number) : [Number.MAX_SAFE_INTEGER, 1, 0];
      const rows = db.all<Omit<HistoryItem, 'cursor'> & { source: number; rowId: number }>(HISTORY, {
        ...chat,
        at,
        source,
        // Past the newest: every row of the newest instant too.
        rowId: match ? rowId : Number.MAX_SAFE_INTEGER,
        limit,
      });
      return rows.map(({ source: from, rowId: id, ...item }) => ({
        ...item,
        cursor: `${item.at}-${from}-${id}`,
      }));
    },
  };
}
