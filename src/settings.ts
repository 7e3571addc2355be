// Every setting Warren reads: its environment key and what it means. The README's configuration table and
// `warren help config` mirror this; config.ts reads, validates and defaults them.
/** Every setting, its environment key, and what it means. The README's configuration table mirrors this. */
export const settings = {
  dataDir: { env: 'WARREN_DATA_DIR', help: 'where the database, group folders and logs live' },
  assistantName: { env: 'WARREN_ASSISTANT_NAME', help: 'the name that triggers the agent in group chats' },
  timezone: { env: 'WARREN_TIMEZONE', help: "IANA timezone for prompts and schedules, e.g. 'Europe/Berlin'" },
  logLevel: { env: 'WARREN_LOG_LEVEL', help: 'trace, debug, info, warn, error or silent' },
  maxConcurrentAgents: { env: 'WARREN_MAX_AGENTS', help: 'agents that may run at once' },
  localPort: { env: 'WARREN_LOCAL_PORT', help: 'port of the local web chat on 127.0.0.1' },
  isLocalChatEnabled: { env: 'WARREN_LOCAL_CHAT', help: "'true' or 'false': serve the local web chat" },
  maxAttempts: { env: 'WARREN_MAX_ATTEMPTS', help: 'tries per message before a failure notice' },
  retryBaseMs: { env: 'WARREN_RETRY_BASE_MS', help: 'first retry delay; doubles each time' },
  deliveryGiveUpHours: {
    env: 'WARREN_DELIVERY_GIVE_UP_HOURS',
    help: 'how long a reply a chat service does not take is retried before the owner is told it failed',
  },
  contextMessages: {
    env: 'WARREN_CONTEXT_MESSAGES',
    help: 'untriggered messages given to the agent as context',
  },
  runtime: {
    env: 'WARREN_RUNTIME',
    help: "container runtime: 'docker', 'podman' or 'gvisor' (docker + runsc)",
  },
  agentImage: { env: 'WARREN_AGENT_IMAGE', help: 'the agent container image tag' },
  baseImage: { env: 'WARREN_BASE_IMAGE', help: 'base image the agent image is built FROM' },
  agentMemoryMb: { env: 'WARREN_AGENT_MEMORY_MB', help: 'memory limit per agent container, in MiB' },
  agentCpus: { env: 'WARREN_AGENT_CPUS', help: 'CPU limit per agent container' },
  agentPids: { env: 'WARREN_AGENT_PIDS', help: 'process limit per agent container' },
  agentIdleSeconds: {
    env: 'WARREN_AGENT_IDLE_SECONDS',
    help: 'an idle agent container exits after this long',
  },
  agentMaxRunMinutes: { env: 'WARREN_AGENT_MAX_RUN_MINUTES', help: 'hard ceiling on one container run' },
  modelBaseUrl: {
    env: 'ANTHROPIC_BASE_URL',
    help: 'upstream Messages API base URL (a gateway or proxy works)',
  },
  currency: {
    env: 'WARREN_CURRENCY',
    help: 'the unit of budgets and prices (a label: prices are USD unless you set your own)',
  },
  groupDailyBudget: {
    env: 'WARREN_GROUP_DAILY_BUDGET',
    help: 'what each group may spend on the model per day (its own budget overrides it); 0 means no limit',
  },
  groupMonthlyBudget: {
    env: 'WARREN_GROUP_MONTHLY_BUDGET',
    help: 'what each group may spend per calendar month (its own budget overrides it); 0 means no limit',
  },
  dailyBudget: {
    env: 'WARREN_DAILY_BUDGET',
    help: 'what all groups together may spend per day; 0 means no limit',
  },
  monthlyBudget: {
    env: 'WARREN_MONTHLY_BUDGET',
    help: 'what all groups together may spend per calendar month; 0 means no limit',
  },
  modelPrices: {
    env: 'WARREN_MODEL_PRICES',
    help: 'JSON prices per model id prefix over the built-in table, e.g. {"claude-x":{"input":3,"output":15}} (per million tokens)',
  },
  mountAllowlistPath: {
    env: 'WARREN_MOUNT_ALLOWLIST',
    help: 'JSON allowlist of extra host folders for agents',
  },
  telegramBotToken: {
    env: 'WARREN_TELEGRAM_BOT_TOKEN',
    help: 'the Telegram bot token from @BotFather; empty means Telegram is off',
  },
  telegramApiRoot: {
    env: 'WARREN_TELEGRAM_API_ROOT',
    help: 'Telegram Bot API server (https, or http on loopback for a self-hosted one)',
  },
  slackBotToken: {
    env: 'WARREN_SLACK_BOT_TOKEN',
    help: "the Slack app's bot token (xoxb-…); with WARREN_SLACK_APP_TOKEN it turns Slack on",
  },
  slackAppToken: {
    env: 'WARREN_SLACK_APP_TOKEN',
    help: "the Slack app's app-level token (xapp-…, scope connections:write) for Socket Mode",
  },
  slackApiRoot: {
    env: 'WARREN_SLACK_API_ROOT',
    help: 'Slack Web API root (https, or http on loopback for a test server)',
  },
  discordBotToken: {
    env: 'WARREN_DISCORD_BOT_TOKEN',
    help: "the Discord bot's token (developer portal → Bot → Reset Token); empty means Discord is off",
  },
  discordApiRoot: {
    env: 'WARREN_DISCORD_API_ROOT',
    help: 'Discord REST API root (https, or http on loopback for a test server); the Gateway URL comes from it',
  },
  isWhatsAppEnabled: { env: 'WARREN_WHATSAPP', help: "'true' or 'false': connect to WhatsApp (Baileys)" },
  whatsappPhoneNumber: {
    env: 'WARREN_WHATSAPP_PHONE',
    help: 'pair WhatsApp by code for this number (digits with country code) instead of a QR code',
  },
  whatsappUnknownSenders: {
    env: 'WARREN_WHATSAPP_UNKNOWN_SENDERS',
    help: "'pairing' (reply with a pairing code) or 'ignore' (stay silent; for a personal number)",
  },
  mediaMaxMb: {
    env: 'WARREN_MEDIA_MAX_MB',
    help: 'largest photo, document or voice note saved from a chat, in MB',
  },
  retentionDays: {
    env: 'WARREN_RETENTION_DAYS',
    help: 'days to keep answered messages and sent replies; 0 keeps them forever',
  },
  auditRetentionDays: {
    env: 'WARREN_AUDIT_RETENTION_DAYS',
    help: 'days to keep audit log entries (refusals counted per minute, by their last time); 0 keeps them forever',
  },
  diskQuotaMb: {
    env: 'WARREN_DISK_QUOTA_MB',
    help: "each group's disk quota (its folder, session state and IPC files) in MiB; 0 means none",
  },
  diskQuotaMode: {
    env: 'WARREN_DISK_QUOTA_MODE',
    help: "'auto' (a file system per group, a hard limit, when Warren runs as root on Linux; else watched), 'volume' or 'watched'",
  },
  minFreeDiskMb: {
    env: 'WARREN_MIN_FREE_DISK_MB',
    help: "no agent runs while the data directory's disk has less than this free, in MiB",
  },
  egressRequestsPerMinute: {
    env: 'WARREN_EGRESS_REQUESTS_PER_MINUTE',
    help: "connections each group's agent may open per minute through the egress gateway (allowed hosts only)",
  },
  egressMbPerDay: {
    env: 'WARREN_EGRESS_MB_PER_DAY',
    help: "MiB each group's agent may move per day (UTC) through the egress gateway; 0 means no cap",
  },
  egressAskSeconds: {
    env: 'WARREN_EGRESS_ASK_SECONDS',
    help: 'how long a connection to a host not on the list waits while the admin chat is asked; 0 never asks',
  },
  egressCaFile: {
    env: 'WARREN_EGRESS_CA_FILE',
    help: 'a PEM file of extra CAs the egress gateway trusts when it sends a secret on (a self-hosted service with its own CA)',
  },
} as const;

export type SettingName = keyof typeof settings;
