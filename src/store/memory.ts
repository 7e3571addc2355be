// Global memory proposals SQL: new texts of global/CLAUDE.md an agent proposed, kept until the owner decides.
import type { Db } from './db.js';

export interface MemoryProposal {
  id: number;
  /** The group whose agent proposed it (the IPC folder the request came from). */
  groupFolder: string;
  /** The complete new text of global/CLAUDE.md. */
  content: string;
  /** SHA-256 (hex) of the text the proposal was made against; approving needs the file to still have it. */
  baseSha256: string;
  /**
   * pending (waiting for the owner), approved (written), rejected, or stale: global memory changed after it was
   * proposed, so its diff no longer shows what approving would do, and it is never written.
   */
  status: 'pending' | 'approved' | 'rejected' | 'stale';
  createdAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
}

/** A proposal's columns under its record's names; status holds only the values decide() and markStale() write. */
const SELECT_PROPOSAL = `SELECT id, group_folder AS groupFolder, content, base_sha256 AS baseSha256, status,
  created_at AS createdAt, decided_at AS decidedAt, decided_by AS decidedBy FROM memory_proposals`;

export function memoryQueries(db: Db) {
  const proposalsWhere = (where: string, ...args: unknown[]) =>
    db.all<MemoryProposal>(`${SELECT_PROPOSAL} WHERE ${where}`, ...args);
  const queries = {
    /** Stores a pending proposal unless the group already has maxPending waiting (counted in the same transaction). */
    create: db.transaction(
      (
        input: { groupFolder: string; content: string; baseSha256: string },
        policy: { now: number; maxPending: number },
      ): { status: 'created'; proposal: MemoryProposal } | { status: 'full' } => {
        const count = `SELECT COUNT(*) AS n FROM memory_proposals WHERE group_folder = ? AND status = 'pending'`;
        const { n } = db.prepare(count).get(input.groupFolder) as { n: number };
        if (n >= policy.maxPending) return { status: 'full' };
        const sql = `INSERT INTO memory_proposals (group_folder, content, base_sha256, status, created_at)
          VALUES (@groupFolder, @content, @baseSha256, 'pending', @now)`;
        const info = db.run(sql, { ...input, now: policy.now });
        return { status: 'created', proposal: queries.byId(Number(info.lastInsertRowid)) as MemoryProposal };
      },
    ),
    byId: (id: number) => proposalsWhere('id = ?', id)[0] ?? null,
    pending: () => proposalsWhere(`status = 'pending' ORDER BY id`),
    decide(
      id: number,
      status: Exclude<MemoryProposal['status'], 'pending'>,
      actor: string,
      now: number,
    ): boolean {
      const sql = `UPDATE memory_proposals SET status = ?, decided_at = ?, decided_by = ?
        WHERE id = ? AND status = 'pending'`;
      return db.run(sql, status, now, actor, id).changes === 1;
    },
    /** Global memory now has the text with this hash: pending proposals made against another text are stale. */
    markStale(currentSha256: string, actor: string, now: number): number {
      const sql = `UPDATE memory_proposals SET status = 'stale', decided_at = ?, decided_by = ?
        WHERE status = 'pending' AND base_sha256 != ?`;
      return db.run(sql, now, actor, currentSha256).changes;
    },
  };
  return queries;
}
