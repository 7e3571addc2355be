// A group with a row in every table that can hold something of it, written straight into the database, and a search
// of every table for what is left: for the export and purge tests.
import Database from 'better-sqlite3';

/**
 * Gives a registered group (its chat `fake:<folder>`, as registerTestGroup makes it) a row in every table that can
 * hold something of it; every row carries the folder name, so rowsMentioning finds it. stagedFile: the file its
 * unsent reply names.
 */
export function seedGroupData(databaseFile: string, folder: string, stagedFile: string | null = null): void {
  const db = new Database(databaseFile);
  try {
    const { groupId, chatRef } = db
      .prepare(
        `SELECT g.id AS groupId, c.id AS chatRef FROM groups g JOIN chats c ON c.group_id = g.id
         WHERE g.folder = ? AND c.channel = 'fake'`,
      )
      .get(folder) as { groupId: number; chatRef: number };
    const at = { folder, groupId, chatRef, stagedFile, now: 1_750_000_000_000 };
    db.exec('BEGIN');
    for (const sql of [
      `INSERT INTO messages (chat_ref, external_id, sender_id, sender_name, text, sent_at, received_at, is_trigger,
         status) VALUES (@chatRef, 'm1', 'u1', 'Ann', @folder || ' secret question', @now, @now, 1, 'done')`,
      `INSERT INTO messages (chat_ref, external_id, sender_id, sender_name, text, sent_at, received_at, is_trigger,
         status) VALUES (@chatRef, 'm2', 'u1', 'Ann', @folder || ' still waiting', @now, @now, 1, 'pending')`,
      `INSERT INTO outbox (idempotency_key, channel, chat_id, text, kind, status, next_attempt_at, created_at)
         VALUES (@folder || '-reply', 'fake', @folder, 'the answer', 'reply', 'sent', @now, @now)`,
      `INSERT INTO outbox (idempotency_key, channel, chat_id, text, kind, status, next_attempt_at, created_at,
         file_path) VALUES (@folder || '-file', 'fake', @folder, 'a file', 'reply', 'pending', @now, @now, @stagedFile)`,
      `INSERT INTO sent_parts (part_key, external_id, sent_at) VALUES (@folder || '-reply#1', 'x1', @now)`,
      `INSERT INTO sessions (group_id, session_id, updated_at) VALUES (@groupId, @folder || '-session', @now)`,
      `INSERT INTO agent_runs (id, group_id, started_at) VALUES (@folder || '-run', @groupId, @now)`,
      `INSERT INTO tasks (id, group_id, channel, chat_id, prompt, schedule_kind, schedule_value, timezone,
         context_mode, status, created_at, updated_at, name)
         VALUES (@folder || '-task', @groupId, 'fake', @folder, 'brief me', 'cron', '0 9 * * *', 'UTC', 'group',
           'active', @now, @now, 'briefing')`,
      `INSERT INTO task_runs (task_id, scheduled_for, trigger, status, due_at, created_at, result)
         VALUES (@folder || '-task', @now, 'schedule', 'succeeded', @now, @now, 'done')`,
      `INSERT INTO task_runs (task_id, scheduled_for, trigger, status, due_at, created_at)
         VALUES (@folder || '-task', @now + 1, 'schedule', 'queued', @now, @now)`,
      `INSERT INTO usage (at, day, group_folder, model, input_tokens, output_tokens, cache_read_tokens,
         cache_write_tokens) VALUES (@now, '2025-06-15', @folder, 'claude', 100, 20, 0, 0)`,
      `INSERT INTO audit (at, group_folder, actor, action, decision, detail)
         VALUES (@now, @folder, 'agent', 'send-message', 'allow', '{"chat":"fake"}')`,
      `INSERT INTO memory_proposals (group_folder, content, base_sha256, status, created_at)
         VALUES (@folder, 'remember this', 'abc', 'pending', @now)`,
      `INSERT INTO egress_rules (group_folder, host, port, action, is_lan, created_at)
         VALUES (@folder, @folder || '.example.com', 443, 'allow', 0, @now)`,
      `INSERT INTO secret_bindings (group_folder, host, port, header, template, secret_name, created_at)
         VALUES (@folder, @folder || '.example.com', 443, 'Authorization', 'Bearer {secret}', 'TOKEN', @now)`,
      `INSERT INTO mcp_servers (group_folder, name, url, created_at)
         VALUES (@folder, 'crm', 'https://' || @folder || '.example.com/mcp', @now)`,
      `INSERT INTO pairing_requests (code, channel, chat_id, sender_id, sender_name, status, created_at, expires_at)
         VALUES (@folder || '-code', 'fake', @folder, 'u1', 'Ann', 'approved', @now, @now)`,
    ]) {
      const statement = db.prepare(sql);
      const names = new Set([...sql.matchAll(/@(\w+)/g)].map((match) => match[1] as string));
      statement.run(Object.fromEntries(Object.entries(at).filter(([name]) => names.has(name))));
    }
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

/** Per table, the rows whose values, as JSON, hold the text (a folder name, as seedGroupData writes it). */
export function rowsMentioning(databaseFile: string, text: string): Record<string, number> {
  const db = new Database(databaseFile, { readonly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .all() as Array<{ name: string }>;
    const counts: Record<string, number> = {};
    for (const { name } of tables) {
      const rows = db.prepare(`SELECT * FROM "${name}"`).all();
      const count = rows.filter((row) => JSON.stringify(row).includes(text)).length;
      if (count > 0) counts[name] = count;
    }
    return counts;
  } finally {
    db.close();
  }
}
