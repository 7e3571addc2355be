// The database schema as ordered migrations; index + 1 is the PRAGMA user_version each leads to. Never change what
// a shipped one does to an existing database: append a new one.
export const migrations: readonly string[] = [
  `
  CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('mention', 'always')),
    trigger_word TEXT,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  -- At most one admin group: privilege belongs to one place.
  CREATE UNIQUE INDEX groups_one_admin ON groups (is_admin) WHERE is_admin = 1;

  CREATE TABLE chats (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    name TEXT,
    is_direct INTEGER NOT NULL DEFAULT 0,
    group_id INTEGER REFERENCES groups (id) ON DELETE SET NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    UNIQUE (channel, chat_id)
  );

  -- The inbox. Each message carries its own status, so nothing depends on a timestamp cursor.
  -- status: pending (waiting for the agent), processing (in a batch handed to an agent),
  -- done (answered, or given as context), failed (gave up; the chat was told).
  CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    chat_ref INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    is_trigger INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    batch_id TEXT,
    last_error TEXT,
    UNIQUE (chat_ref, external_id)
  );
  CREATE INDEX messages_work ON messages (status, chat_ref, id);
  CREATE INDEX messages_batch ON messages (batch_id) WHERE batch_id IS NOT NULL;

  -- The durable outbox: every reply is written here first, then delivered, retried, and never duplicated.
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('reply', 'notice')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
  );
  CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
  CREATE INDEX outbox_chat ON outbox (channel, chat_id, status);

  CREATE TABLE sessions (
    group_id INTEGER PRIMARY KEY REFERENCES groups (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );

  CREATE TABLE agent_runs (
    id TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    end_reason TEXT
  );
  CREATE INDEX agent_runs_open ON agent_runs (ended_at) WHERE ended_at IS NULL;

  CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    schedule_kind TEXT NOT NULL CHECK (schedule_kind IN ('cron', 'interval', 'once')),
    schedule_value TEXT NOT NULL,
    timezone TEXT NOT NULL,
    context_mode TEXT NOT NULL CHECK (context_mode IN ('group', 'isolated')),
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'done', 'cancelled')),
    next_run_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );

  -- Every privileged action and every denial. detail is JSON.
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    group_folder TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
    detail TEXT NOT NULL
  );
  CREATE INDEX audit_at ON audit (at);

  CREATE TABLE usage (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    day TEXT NOT NULL,
    group_folder TEXT NOT NULL,
    model TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL
  );
  CREATE INDEX usage_group_day ON usage (group_folder, day);
  `,
  // Channels: connection state, durable cursors, parts of split replies already sent; pairing requests.
  `
  CREATE TABLE channel_state (
    channel TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT,
    updated_at INTEGER NOT NULL
  );

  CREATE TABLE channel_cursors (
    channel TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (channel, name)
  );

  -- One row per part of an outbox item a channel has sent (key#1, key#2 …), so a retry resends only the rest.
  CREATE TABLE sent_parts (
    part_key TEXT PRIMARY KEY,
    external_id TEXT,
    sent_at INTEGER NOT NULL
  );
  CREATE INDEX sent_parts_at ON sent_parts (sent_at);

  -- status: pending (code given to the sender), approved, denied (the sender stays ignored), expired.
  CREATE TABLE pairing_requests (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT
  );
  CREATE UNIQUE INDEX pairing_one_pending ON pairing_requests (channel, chat_id) WHERE status = 'pending';
  CREATE INDEX pairing_chat ON pairing_requests (channel, chat_id, id);
  `,
  // Extra host folders a group asks to see (JSON), checked against the mount allowlist at every start.
  `
  ALTER TABLE groups ADD COLUMN extra_mounts TEXT NOT NULL DEFAULT '[]';
  `,
  // Scheduled tasks. task_runs is built here (an unused first one, made by the first migration before, is dropped):
  // a run has attempts, a claim state and its agent run. usage.run_id tags model calls with the agent run, so a task
  // run's tokens are told apart.
  `
  ALTER TABLE tasks ADD COLUMN name TEXT NOT NULL DEFAULT '';
  ALTER TABLE tasks ADD COLUMN pre_check TEXT;
  ALTER TABLE tasks ADD COLUMN pre_check_timeout_ms INTEGER NOT NULL DEFAULT 60000;
  ALTER TABLE tasks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE tasks ADD COLUMN status_reason TEXT;
  ALTER TABLE tasks ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
  CREATE INDEX tasks_due ON tasks (status, next_run_at);
  CREATE INDEX tasks_group ON tasks (group_id);

  DROP TABLE IF EXISTS task_runs;
  -- One row per attempt. status: queued (claimed, waiting for the group's agent), running (handed to an agent
  -- run), then succeeded, skipped (the pre-check said there was nothing to do), failed, interrupted (the host
  -- stopped during the run; never repeated by itself) or cancelled (the task was paused or cancelled first).
  -- UNIQUE (task_id, scheduled_for, attempt) is the claim: a slot can be claimed once.
  CREATE TABLE task_runs (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    scheduled_for INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual', 'retry')),
    status TEXT NOT NULL CHECK (status IN
      ('queued', 'running', 'succeeded', 'skipped', 'failed', 'interrupted', 'cancelled')),
    due_at INTEGER NOT NULL,
    batch_id TEXT UNIQUE,
    agent_run_id TEXT,
    started_at INTEGER,
    ended_at INTEGER,
    result TEXT,
    error TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (task_id, scheduled_for, attempt)
  );
  CREATE INDEX task_runs_open ON task_runs (status, due_at) WHERE status IN ('queued', 'running');
  CREATE INDEX task_runs_task ON task_runs (task_id, id);

  ALTER TABLE usage ADD COLUMN run_id TEXT;
  CREATE INDEX usage_run ON usage (run_id, at) WHERE run_id IS NOT NULL;
  `,
  // Files an agent sends (send_file): the outbox item carries the checked host path; its text is the caption.
  `
  ALTER TABLE outbox ADD COLUMN file_path TEXT;
  `,
  // A bounded audit log: refusals of one kind (repeat_key) in one minute (bucket) fold into one counted row, from
  // at to last_at (NULL while it holds one entry). Rows are pruned by their last time.
  `
  ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE audit ADD COLUMN last_at INTEGER;
  ALTER TABLE audit ADD COLUMN last_detail TEXT;
  ALTER TABLE audit ADD COLUMN repeat_key TEXT;
  ALTER TABLE audit ADD COLUMN bucket INTEGER;
  CREATE UNIQUE INDEX audit_repeats ON audit (repeat_key, bucket) WHERE repeat_key IS NOT NULL;
  CREATE INDEX audit_last_at ON audit (COALESCE(last_at, at));
  `,
  // New texts of global/CLAUDE.md an agent proposed: written only once the owner approves, and only if the file
  // still has the text (base_sha256) they were made against; else stale, never written.
  `
  CREATE TABLE memory_proposals (
    id INTEGER PRIMARY KEY,
    group_folder TEXT NOT NULL,
    content TEXT NOT NULL,
    base_sha256 TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'stale')),
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT
  );
  CREATE INDEX memory_proposals_pending ON memory_proposals (status, group_folder);
  `,
  // A group's own disk quota in MiB (null: the default); disk_use, its last measurement (JSON), so a group over
  // its quota stays refused across restarts.
  `
  ALTER TABLE groups ADD COLUMN disk_quota_mb INTEGER;
  ALTER TABLE groups ADD COLUMN disk_use TEXT;
  `,
  // Attempts now count an agent's failures, not claims: a batch a crash or a stop cut short costs none.
  `UPDATE messages SET attempts = attempts - 1 WHERE status = 'processing' AND attempts > 0;`,
  // Budgets in money. usage.cost is priced when the call is recorded (a later price change does not rewrite the
  // past); calls before this were not priced, so they are at Sonnet 4's list price. A group's own daily and monthly
  // budget (null: the configured default). usage.day is now the owner's day (WARREN_TIMEZONE), not UTC's.
  // usage_days keeps each group's spend per day as calls are recorded: a budget check before every model call sums at
  // most a month of these rows, not every call of the month (15 ms a call at 200,000 calls).
  `
  ALTER TABLE usage ADD COLUMN web_searches INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE usage ADD COLUMN cost REAL NOT NULL DEFAULT 0;
  UPDATE usage SET cost = (input_tokens * 3 + output_tokens * 15 + cache_read_tokens * 0.3
    + cache_write_tokens * 3.75) / 1e6;
  CREATE INDEX usage_day ON usage (day);
  CREATE TABLE usage_days (
    group_folder TEXT NOT NULL,
    day TEXT NOT NULL,
    cost REAL NOT NULL,
    PRIMARY KEY (group_folder, day)
  ) WITHOUT ROWID;
  INSERT INTO usage_days SELECT group_folder, day, SUM(cost) FROM usage GROUP BY group_folder, day;
  ALTER TABLE groups ADD COLUMN daily_budget REAL;
  ALTER TABLE groups ADD COLUMN monthly_budget REAL;
  `,
  // Threads (Slack): the thread a message was written in, and the thread a reply goes to (null: the chat itself).
  `
  ALTER TABLE messages ADD COLUMN thread_id TEXT;
  ALTER TABLE outbox ADD COLUMN thread_id TEXT;
  `,
  // The owner's emergency stop: while this row is there no agent runs (kept across restarts).
  `CREATE TABLE emergency_stop (id INTEGER PRIMARY KEY CHECK (id = 1), by TEXT NOT NULL, at INTEGER NOT NULL);`,
  // Where each group's agent may connect through the egress gateway (none: nowhere). host is a name, *.suffix or an
  // address; is_lan lets an allowed name resolve to a private address (a service on the owner's network).
  `
  CREATE TABLE egress_rules (
    group_folder TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('allow', 'deny')),
    is_lan INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_folder, host, port)
  ) WITHOUT ROWID;
  `,
  // Secrets the egress gateway adds to a group's requests to one host (the values live in secrets.json, 0600, outside
  // every mount; only the name is here). header: its name; template: its value, {secret} standing for the secret.
  `
  CREATE TABLE secret_bindings (
    group_folder TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    header TEXT NOT NULL COLLATE NOCASE,
    template TEXT NOT NULL,
    secret_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_folder, host, port, header)
  ) WITHOUT ROWID;
  `,
  // Per group: web search (off by default), asking the owner about hosts not on its list (on), remote MCP servers.
  `ALTER TABLE groups ADD COLUMN web_search INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE groups ADD COLUMN egress_ask INTEGER NOT NULL DEFAULT 1;
  CREATE TABLE mcp_servers (group_folder TEXT NOT NULL, name TEXT NOT NULL, url TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (group_folder, name)) WITHOUT ROWID;`,
];
