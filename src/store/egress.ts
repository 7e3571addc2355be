// Egress rules SQL: each group's list of destinations its agent may (or may not) reach through the egress gateway.
import type { Db } from './db.js';

/** host: an exact name, *.suffix (any name under it, not the suffix itself), or an IP address. */
export type EgressRule = {
  host: string;
  port: number;
  action: 'allow' | 'deny';
  isLan: boolean;
  createdAt: number;
};

export function egressQueries(db: Db) {
  return {
    /** A group's rules; read for every request, so a change applies to the next one. */
    of: (groupFolder: string): EgressRule[] =>
      db
        .all<Omit<EgressRule, 'isLan'> & { isLan: number }>(
          `SELECT host, port, action, is_lan AS isLan, created_at AS createdAt FROM egress_rules
           WHERE group_folder = ? ORDER BY host, port`,
          groupFolder,
        )
        .map((row) => ({ ...row, isLan: row.isLan === 1 })),
    /** Adds the rule, or replaces the one for the same host and port. */
    set: (groupFolder: string, rule: Omit<EgressRule, 'createdAt'>, now: number): void =>
      void db.run(
        `INSERT OR REPLACE INTO egress_rules (group_folder, host, port, action, is_lan, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
        groupFolder,
        rule.host,
        rule.port,
        rule.action,
        rule.isLan ? 1 : 0,
        now,
      ),
    remove: (groupFolder: string, host: string, port: number): boolean =>
      db.run(
        'DELETE FROM egress_rules WHERE group_folder = ? AND host = ? AND port = ?',
        groupFolder,
        host,
        port,
      ).changes > 0,
  };
}
