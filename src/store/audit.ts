// Audit SQL: privileged actions and refusals, repeated refusals folded per minute, and retention by last time.
import type Database from 'better-sqlite3';

export interface AuditEntry {
  groupFolder: string | null;
  actor: string;
  action: string;
  decision: 'allow' | 'deny';
  detail: Record<string, unknown>;
}

/** One row of the log: an entry, or refusals of one kind in one minute with the first one's detail as sample. */
export interface AuditRecord extends AuditEntry {
  /** The first (or only) entry's time. */
  at: number;
  /** Entries this row stands for: 1, or the refusals folded into it. */
  count: number;
  /** The last entry's time; equal to at for a single entry. */
  lastAt: number;
  /** The last folded refusal's detail (a second sample); null for a single entry. */
  lastDetail: Record<string, unknown> | null;
}

/** Refusals are counted per minute: a flood costs one row a minute for each kind of refusal. */
const AUDIT_BUCKET_MS = 60_000;

/** A row under its record's names; the details are still JSON text. */
type AuditRow = Omit<AuditRecord, 'detail' | 'lastDetail'> & { detail: string; lastDetail: string | null };

/**
 * What makes refusals "of one kind": the group, the kind of actor (the text before its first ':', so `agent`,
 * `local`, `telegram`, `host`) and the action. The actor's id and the reason are left out on purpose: a flood
 * from many addresses or with varying reasons in one group must still fold into one row.
 */
function repeatKeyOf(entry: AuditEntry): string {
  const actorKind = entry.actor.split(':', 1)[0] ?? entry.actor;
  return JSON.stringify([entry.groupFolder, actorKind, entry.action]);
}

export function auditQueries(db: Database.Database) {
  return {
    /**
     * Records an entry. An allowed action is one row each. A refusal folds into the row of refusals of its kind in
     * the same minute (count + 1, last time moved on), so a hostile agent or web client cannot grow the table by
     * one row per attempt; yet nothing refused goes unrecorded: every refusal is counted, and the first and the
     * last one of each minute keep their full detail as samples.
     */
    record(entry: AuditEntry, at: number): void {
      const isRefusal = entry.decision === 'deny';
      db.prepare(
        `INSERT INTO audit (at, group_folder, actor, action, decision, detail, repeat_key, bucket)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repeat_key, bucket) WHERE repeat_key IS NOT NULL DO UPDATE SET
           count = count + 1, last_at = MAX(COALESCE(last_at, at), excluded.at), last_detail = excluded.detail`,
      ).run(
        at,
        entry.groupFolder,
        entry.actor,
        entry.action,
        entry.decision,
        JSON.stringify(entry.detail),
        isRefusal ? repeatKeyOf(entry) : null,
        isRefusal ? Math.floor(at / AUDIT_BUCKET_MS) : null,
      );
    },
    /** The newest rows first. */
    recent(limit: number): AuditRecord[] {
      const sql = `SELECT at, group_folder AS groupFolder, actor, action, decision, detail, count,
        COALESCE(last_at, at) AS lastAt, last_detail AS lastDetail FROM audit ORDER BY id DESC LIMIT ?`;
      return (db.prepare(sql).all(limit) as AuditRow[]).map((row) => ({
        ...row,
        detail: parseDetail(row.detail),
        lastDetail: row.lastDetail === null ? null : parseDetail(row.lastDetail),
      }));
    },
    /** Forgets rows whose last entry is older than before (a row still counting refusals stays); returns how many. */
    prune(before: number): number {
      return db.prepare('DELETE FROM audit WHERE COALESCE(last_at, at) < ?').run(before).changes;
    },
  };
}

function parseDetail(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { value };
  } catch {
    return { unparsed: text };
  }
}
