// Where things are inside an agent container and which env vars carry a run's settings: the part of the IPC protocol
// the runner needs before it loads anything else (zod included), so this file imports nothing. Shared with the
// agent image like ipc.ts, which re-exports it.

/** Where things are inside the container. The host mounts them; the runner only uses these paths. */
export const CONTAINER_PATHS = {
  /** The group's folder (rw). The agent's cwd; its CLAUDE.md is the group's memory. */
  group: '/workspace/group',
  /** Global memory (ro, rw for the admin group only). */
  global: '/workspace/global',
  ipc: '/workspace/ipc',
  /** Host → container files. Mount read-only: the agent cannot forge host messages. */
  input: '/workspace/ipc/input',
  /** Container → host files (rw). Untrusted on the host: the agent can write here too. */
  output: '/workspace/ipc/output',
  /** Allowlisted extra folders, one subfolder each. */
  extra: '/workspace/extra',
  /** HOME: a tmpfs owned by uid 1000, so ~/.claude.json, backups, snapshots and caches never persist. */
  home: '/home/agent',
  /**
   * The group's SDK session transcripts (rw, persistent): all that resume needs. Only this folder persists, not
   * all of ~/.claude, so an injected agent has no persistent config file to plant things in for its next run.
   */
  claudeState: '/home/agent/.claude/projects',
  /** The credential proxy's unix socket (a bind mount of the host's socket). */
  apiSocket: '/run/warren/api.sock',
  /** The egress gateway's unix socket, in the same folder: the agent's only way to the network. */
  egressSocket: '/run/warren/egress.sock',
  /** The egress gateway's CA certificate, which the agent trusts (the gateway adds secrets to some hosts' requests). */
  egressCa: '/run/warren/ca.pem',
} as const;

/** Env var names the host sets on the container. None of them is a secret; no secret is ever passed. */
export const RUN_ENV = {
  runId: 'WARREN_RUN_ID',
  groupFolder: 'WARREN_GROUP_FOLDER',
  isAdmin: 'WARREN_IS_ADMIN',
  chat: 'WARREN_CHAT',
  sessionId: 'WARREN_SESSION_ID',
  idleTimeoutMs: 'WARREN_IDLE_TIMEOUT_MS',
  assistantName: 'WARREN_ASSISTANT_NAME',
  model: 'WARREN_MODEL',
  webSearch: 'WARREN_WEB_SEARCH',
  mcpServers: 'WARREN_MCP_SERVERS',
} as const;
