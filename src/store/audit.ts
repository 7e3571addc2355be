// Audit SQL: privileged actions and refusals, repeated refusals folded per minute, and retention by last time.
import type { Db } from './db.js';

export interface AuditEntry {
  groupFolder: string | null;
  actor: string;
  action: string;
  decision: 'allow' | 'deny';
  detail: Record<string, unknown>;
}

/**
 * One row of the log: an entry (count 1, lastAt = at, lastDetail null), or the count refusals of one kind in one
 * minute, from at to lastAt, with the first one's detail and the last one's (lastDetail) as samples.
 */
export interface AuditRecord extends AuditEntry {
  at: number;
  count: number;
  lastAt: number;
  lastDetail: Record<string, unknown> | null;
}

/** Refusals are counted per minute: a flood costs one row a minute for each kind of refusal. */
const AUDIT_BUCKET_MS = 60_000;

type AuditRow = Omit<AuditRecord, 'detail' | 'lastDetail'> & { detail: string; lastDetail: string | null };

export interface AuditFilter {
  groupFolder?: string;
  action?: string;
  decision?: AuditEntry['decision'];
  since?: number;
}

const SELECT_RECORD = `SELECT at, group_folder AS groupFolder, actor, action, decision, detail, count,
  COALESCE(last_at, at) AS lastAt, last_detail AS lastDetail FROM audit`;

const toRecord = (row: AuditRow): AuditRecord => ({
  ...row,
  detail: parseDetail(row.detail),
  lastDetail: row.lastDetail === null ? null : parseDetail(row.lastDetail),
});

/**
 * What makes refusals "of one kind": the group, the kind of actor (the text before its first ':', so `agent`,
 * `local`, `telegram`, `host`) and the action. The actor's id and the reason are left out on purpose: a flood
 * from many addresses or with varying reasons in one group must still fold into one row.
 */
const repeatKeyOf = (entry: AuditEntry) =>
  JSON.stringify([entry.groupFolder, entry.actor.split(':', 1)[0], entry.action]);

export function auditQueries(db: Db) {
  return {
    /**
     * Records an entry. An allowed action is one row each. A refusal folds into the row of refusals of its kind in
     * the same minute (count + 1, last time moved on), so a hostile agent or web client cannot grow the table by
     * one row per attempt; yet nothing refused goes unrecorded: every refusal is counted, and the first and the
     * last one of each minute keep their full detail as samples.
     */
    record(entry: AuditEntry, at: number): void {
      const isRefusal = entry.decision === 'deny';
      const repeatKey = isRefusal ? repeatKeyOf(entry) : null;
      const bucket = isRefusal ? Math.floor(at / AUDIT_BUCKET_MS) : null;
      const sql = `INSERT INTO audit (at, group_folder, actor, action, decision, detail, repeat_key, bucket)
        VALUES (@at, @groupFolder, @actor, @action, @decision, @detail, @repeatKey, @bucket)
        ON CONFLICT (repeat_key, bucket) WHERE repeat_key IS NOT NULL DO UPDATE SET
          count = count + 1, last_at = MAX(COALESCE(last_at, at), excluded.at), last_detail = excluded.detail`;
      db.run(sql, { ...entry, at, detail: JSON.stringify(entry.detail), repeatKey, bucket });
    },
    recent(limit: number): AuditRecord[] {
      return db.all<AuditRow>(`${SELECT_RECORD} ORDER BY id DESC LIMIT ?`, limit).map(toRecord);
    },
    /**
     * The newest rows (at most limit, newest first) that match every filter given; since keeps a row whose last
     * entry is at or after it.
     */
    find(filter: AuditFilter, limit: number): AuditRecord[] {
      const where: string[] = [];
      if (filter.groupFolder !== undefined) where.push('group_folder = @groupFolder');
      if (filter.action !== undefined) where.push('action = @action');
      if (filter.decision !== undefined) where.push('decision = @decision');
      // A folded row's entries all lie in one minute after its at: a range on at (indexed) finds every candidate.
      if (filter.since !== undefined) where.push('at > @earliest AND COALESCE(last_at, at) >= @since');
      // At most 16 distinct SQL texts: the statement cache stays bounded.
      const sql = `${SELECT_RECORD} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY at DESC, id DESC LIMIT @limit`;
      const earliest = filter.since === undefined ? undefined : filter.since - AUDIT_BUCKET_MS;
      return db.all<AuditRow>(sql, { ...filter, earliest, limit }).map(toRecord);
    },
    /** Forgets rows whose last entry is older than before (a row still counting refusals stays); returns how many. */
    prune(before: number): number {
      return db.run('DELETE FROM audit WHERE COALESCE(last_at, at) < ?', before).changes;
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
