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
const REQUEST_COLUMNS = `id, code, channel, chat_id AS chatId, sender_id AS senderId, sender_name AS senderName, status,
  created_at AS createdAt, expires_at AS expiresAt, decided_at AS decidedAt, decided_by AS decidedBy`;

/** The pairing queries over an open database. */
export function pairingQueries(db: Database.Database) {
  const tx = <A extends unknown[], R>(fn: (...args: A) => R) => db.transaction(fn);
  const queries = {
    /** Marks pending requests whose time is up as expired. Returns how many. */
    expire(now: number): number {
      return db
        .prepare(
          `UPDATE pairing_requests SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?`,
        )
        .run(now).changes;
    },
    /**
     * Creates a pending request unless the chat has one or maxPending are already waiting (expired ones are
     * expired first). Returns the new request, or why none was made.
     */
    create: tx(
      (
        input: { code: string; channel: string; chatId: string; senderId: string; senderName: string },
        policy: { now: number; ttlMs: number; maxPending: number },
      ): { status: 'created'; request: PairingRequest } | { status: 'exists' | 'full' } => {
        queries.expire(policy.now);
        if (queries.pendingFor(input.channel, input.chatId)) return { status: 'exists' };
        const pending = db
          .prepare(`SELECT COUNT(*) AS count FROM pairing_requests WHERE status = 'pending'`)
          .get() as { count: number };
        if (pending.count >= policy.maxPending) return { status: 'full' };
        const info = db
          .prepare(
            `INSERT INTO pairing_requests (code, channel, chat_id, sender_id, sender_name, status, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`,
          )
          .run(
            input.code,
            input.channel,
            input.chatId,
            input.senderId,
            input.senderName,
            policy.now,
            policy.now + policy.ttlMs,
          );
        const request = db
          .prepare(`SELECT ${REQUEST_COLUMNS} FROM pairing_requests WHERE id = ?`)
          .get(info.lastInsertRowid) as PairingRequest;
        return { status: 'created', request };
      },
    ),
    pendingFor(channel: string, chatId: string): PairingRequest | null {
      const row = db
        .prepare(
          `SELECT ${REQUEST_COLUMNS} FROM pairing_requests WHERE channel = ? AND chat_id = ? AND status = 'pending'`,
        )
        .get(channel, chatId);
      return (row as PairingRequest | undefined) ?? null;
    },
    /** The most recent request of a chat, whatever its status (a denied sender stays ignored). */
    latestFor(channel: string, chatId: string): PairingRequest | null {
      const row = db
        .prepare(
          `SELECT ${REQUEST_COLUMNS} FROM pairing_requests WHERE channel = ? AND chat_id = ? ORDER BY id DESC LIMIT 1`,
        )
        .get(channel, chatId);
      return (row as PairingRequest | undefined) ?? null;
    },
    byCode(code: string): PairingRequest | null {
      const row = db.prepare(`SELECT ${REQUEST_COLUMNS} FROM pairing_requests WHERE code = ?`).get(code);
      return (row as PairingRequest | undefined) ?? null;
    },
    listPending(now: number): PairingRequest[] {
      queries.expire(now);
      return db
        .prepare(`SELECT ${REQUEST_COLUMNS} FROM pairing_requests WHERE status = 'pending' ORDER BY id`)
        .all() as PairingRequest[];
    },
    /** Decides a pending request. Returns false when it is not pending (any more). */
    decide(code: string, status: 'approved' | 'denied', actor: string, now: number): boolean {
      return (
        db
          .prepare(
            `UPDATE pairing_requests SET status = ?, decided_at = ?, decided_by = ?
             WHERE code = ? AND status = 'pending' AND expires_at > ?`,
          )
          .run(status, now, actor, code, now).changes === 1
      );
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

export type PairingQueries = ReturnType<typeof pairingQueries>;
