// Pairing SQL: one-time codes given to unknown people who write to the bot directly, until the owner decides.
import type { Db } from './db.js';

export interface PairingRequest {
  id: number;
  code: string;
  channel: string;
  chatId: string;
  senderId: string;
  senderName: string;
  status: 'pending' | 'approved' | 'denied' | 'expired';
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
}

/** A request's columns under its record's names; status holds only the values this file writes. */
const SELECT_REQUEST = `SELECT id, code, channel, chat_id AS chatId, sender_id AS senderId, sender_name AS senderName,
  status, created_at AS createdAt, expires_at AS expiresAt, decided_at AS decidedAt, decided_by AS decidedBy
  FROM pairing_requests`;

export function pairingQueries(db: Db) {
  const requestsWhere = (where: string, ...args: unknown[]) =>
    db.all<PairingRequest>(`${SELECT_REQUEST} WHERE ${where}`, ...args);
  const queries = {
    expire(now: number): number {
      const sql = `UPDATE pairing_requests SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?`;
      return db.run(sql, now).changes;
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
        const count = `SELECT COUNT(*) AS count, COUNT(*) FILTER (WHERE channel = ? AND chat_id = ?) AS ofChat
          FROM pairing_requests WHERE status = 'pending'`;
        const pending = db.prepare(count).get(input.channel, input.chatId) as {
          count: number;
          ofChat: number;
        };
        if (pending.ofChat > 0) return { status: 'exists' };
        if (pending.count >= policy.maxPending) return { status: 'full' };
        const sql = `INSERT INTO pairing_requests
          (code, channel, chat_id, sender_id, sender_name, status, created_at, expires_at)
          VALUES (@code, @channel, @chatId, @senderId, @senderName, 'pending', @now, @expiresAt)`;
        db.run(sql, { ...input, now: policy.now, expiresAt: policy.now + policy.ttlMs });
        return { status: 'created', request: queries.byCode(input.code) as PairingRequest };
      },
    ),
    /** The most recent request of a chat, whatever its status (a denied sender stays ignored). */
    latestFor: (channel: string, chatId: string) =>
      requestsWhere('channel = ? AND chat_id = ? ORDER BY id DESC LIMIT 1', channel, chatId)[0] ?? null,
    byCode: (code: string) => requestsWhere('code = ?', code)[0] ?? null,
    listPending(now: number): PairingRequest[] {
      queries.expire(now);
      return requestsWhere(`status = 'pending' ORDER BY id`);
    },
    decide(code: string, status: 'approved' | 'denied', actor: string, now: number): boolean {
      const sql = `UPDATE pairing_requests SET status = ?, decided_at = ?, decided_by = ?
        WHERE code = ? AND status = 'pending' AND expires_at > ?`;
      return db.run(sql, status, now, actor, code, now).changes === 1;
    },
    /** A chat was registered some other way (`groups add`, /register): its pending request is settled. */
    settleChat(channel: string, chatId: string, actor: string, now: number): void {
      const sql = `UPDATE pairing_requests SET status = 'approved', decided_at = ?, decided_by = ?
        WHERE channel = ? AND chat_id = ? AND status = 'pending'`;
      db.run(sql, now, actor, channel, chatId);
    },
  };
  return queries;
}
