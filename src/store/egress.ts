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

/** A header the gateway sets on a group's requests to host:port: template with {secret} replaced by the value. */
export type SecretBinding = {
  host: string;
  port: number;
  header: string;
  template: string;
  secretName: string;
  createdAt: number;
};

const SELECT_BINDING = `SELECT host, port, header, template, secret_name AS secretName, created_at AS createdAt
  FROM secret_bindings`;

/** A remote MCP server (streamable HTTP) a group's agent is given; reached through the egress gateway. */
export type McpServer = { name: string; url: string; createdAt: number };

export function egressQueries(db: Db) {
  return {
    mcpServers: (groupFolder: string): McpServer[] =>
      db.all<McpServer>(
        'SELECT name, url, created_at AS createdAt FROM mcp_servers WHERE group_folder = ? ORDER BY name',
        groupFolder,
      ),
    /** Adds the server, or replaces the one of the same name. */
    setMcpServer: (groupFolder: string, name: string, url: string, now: number): void =>
      void db.run('INSERT OR REPLACE INTO mcp_servers VALUES (?, ?, ?, ?)', groupFolder, name, url, now),
    removeMcpServer: (groupFolder: string, name: string): boolean =>
      db.run('DELETE FROM mcp_servers WHERE group_folder = ? AND name = ?', groupFolder, name).changes > 0,
    /** A group's secret bindings (all hosts), read for every connection like the rules. */
    bindings: (groupFolder: string): SecretBinding[] =>
      db.all<SecretBinding>(
        `${SELECT_BINDING} WHERE group_folder = ? ORDER BY host, port, header`,
        groupFolder,
      ),
    /** Every group's bindings of one secret (what removing it would break). */
    bindingsOf: (secretName: string): Array<SecretBinding & { groupFolder: string }> =>
      db.all(
        `SELECT group_folder AS groupFolder, host, port, header, template, secret_name AS secretName,
           created_at AS createdAt FROM secret_bindings WHERE secret_name = ? ORDER BY group_folder, host`,
        secretName,
      ),
    /** Adds the binding, or replaces the one for the same host, port and header. */
    bind: (groupFolder: string, binding: Omit<SecretBinding, 'createdAt'>, now: number): void =>
      void db.run(
        `INSERT OR REPLACE INTO secret_bindings (group_folder, host, port, header, template, secret_name, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        groupFolder,
        binding.host,
        binding.port,
        binding.header,
        binding.template,
        binding.secretName,
        now,
      ),
    /** Removes a group's bindings for host:port (one header, or all of them); how many went. */
    unbind: (groupFolder: string, host: string, port: number, header?: string): number =>
      db.run(
        `DELETE FROM secret_bindings WHERE group_folder = ? AND host = ? AND port = ?
           AND (? IS NULL OR lower(header) = lower(?))`,
        groupFolder,
        host,
        port,
        header ?? null,
        header ?? null,
      ).changes,
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
