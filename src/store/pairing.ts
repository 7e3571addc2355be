// Pairing SQL: one-time codes given to unknown people who write to the bot directly, until the owner decides.
import type Database from 'better-sqlite3';

export type PairingStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface PairingRequest {
  id: number;
  code: string;
  channel: string;
  chatId: string;
  senderId: string;
  senderName: string;
  status: PairingStatus;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
}

/** A request's columns under its record's names; status holds only the values this file writes. */
const SELECT_REQUEST = `SELECT id, code, channel, chat_id AS chatId, sender_id AS senderId, sender_name AS senderName,
  status, created_at AS createdAt, expires_at AS expiresAt, decided_at AS decidedAt, decided_by AS decidedBy
  FROM pairing_requests`;

/** The pairing queries over an open database. */
export function pairingQueries(db: Database.Database) {
  const requestWhere = (where: string, ...args: unknown[]) =>
    (db.prepare(`${SELECT_REQUEST} WHERE ${where}`).get(...args) as PairingRequest | undefined) ?? null;
  const queries = {
    /** Marks pending requests whose time is up as expired. Returns how many. */
    expire(now: number): number {
      const sql = `UPDATE pairing_requests SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?`;
      return db.prepare(sql).run(now).changes;
    },
    /**
     * Creates a pending request unless the chat has one or maxPending are already waiting (expired ones are
     * expired first). Returns the new request, or why none was made.
     */
    create: db.transaction(
      (
        input: { code: string; channel: string; chatId: string; senderId: string; senderName: string },
        policy: { now: number; ttlMs: number; maxPending: number },
      ): { status: 'created'; request: PairingRequest } | { status: 'exists' | 'full' } => {
        queries.expire(policy.now);
        const pending = db
          .prepare(
            `SELECT COUNT(*) AS count, COUNT(*) FILTER (WHERE channel = ? AND chat_id = ?) AS ofChat
             FROM pairing_requests WHERE status = 'pending'`,
          )
          .get(input.channel, input.chatId) as { count: number; ofChat: number };
        if (pending.ofChat > 0) return { status: 'exists' };
        if (pending.count >= policy.maxPending) return { status: 'full' };
        const info = db
          .prepare(
            `INSERT INTO pairing_requests (code, channel, chat_id, sender_id, sender_name, status, created_at, expires_at)
             VALUES (@code, @channel, @chatId, @senderId, @senderName, 'pending', @now, @expiresAt)`,
          )
          .run({ ...input, now: policy.now, expiresAt: policy.now + policy.ttlMs });
        return { status: 'created', request: requestWhere('id = ?', info.lastInsertRowid) as PairingRequest };
      },
    ),
    /** The most recent request of a chat, whatever its status (a denied sender stays ignored). */
    latestFor: (channel: string, chatId: string) =>
      requestWhere('channel = ? AND chat_id = ? ORDER BY id DESC LIMIT 1', channel, chatId),
    byCode: (code: string) => requestWhere('code = ?', code),
    listPending(now: number): PairingRequest[] {
      queries.expire(now);
      return db.prepare(`${SELECT_REQUEST} WHERE status = 'pending' ORDER BY id`).all() as PairingRequest[];
    },
    /** Decides a pending request. Returns false when it is not pending (any more). */
    decide(code: string, status: 'approved' | 'denied', actor: string, now: number): boolean {
      const sql = `UPDATE pairing_requests SET status = ?, decided_at = ?, decided_by = ?
        WHERE code = ? AND status = 'pending' AND expires_at > ?`;
      return db.prepare(sql).run(status, now, actor, code, now).changes === 1;
    },
    /** A chat was registered some other way (`groups add`, /register): its pending request is settled. */
    settleChat(channel: string, chatId: string, actor: string, now: number): void {
      db.prepare(
        `UPDATE pairing_requests SET status = 'approved', decided_at = ?, decided_by = ?
         WHERE channel = ? AND chat_id = ? AND status = 'pending'`,
      ).run(now, actor, channel, chatId);
    },
  };
  return queries;
}
