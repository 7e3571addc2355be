// Configuration: read once from the environment, a .env file and <dataDir>/config.json; validated; frozen.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { type SettingName, settings } from './settings.js';

/** Secrets are never echoed in error messages. */
const SECRET_SETTINGS: ReadonlySet<string> = new Set([
  'telegramBotToken',
  'slackBotToken',
  'slackAppToken',
  'discordBotToken',
]);
/** Settings that decide where a secret goes (or what it is) can only come from the environment or .env. */
const ENV_ONLY_SETTINGS: ReadonlySet<string> = new Set([
  'dataDir',
  'telegramBotToken',
  'telegramApiRoot',
  'slackBotToken',
  'slackAppToken',
  'slackApiRoot',
  'discordBotToken',
  'discordApiRoot',
  'modelBaseUrl',
  'mountAllowlistPath',
  'egressCaFile',
]);

const LOOPBACK_URL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const httpsOrLoopback = z
  .url({ protocol: /^https?$/ })
  .refine(
    (url) => url.startsWith('https://') || LOOPBACK_URL_HOSTS.has(new URL(url).host.replace(/:\d+$/, '')),
    'must be https (plain http only on loopback)',
  );
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const flag = z.enum(['true', 'false']).transform((value) => value === 'true');
const emptyOr = (pattern: RegExp, message: string) =>
  z.union([z.literal(''), z.string().regex(pattern, message)]);

const money = z.coerce.number().min(0).max(1e9);
const priceSchema = z.strictObject({
  input: money,
  output: money,
  cacheWrite: money.optional(),
  cacheRead: money.optional(),
  webSearch: money.optional(),
});

const isValidTimezone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};

const configSchema = z.object({
  dataDir: z.string().min(1),
  assistantName: z
    .string()
    .min(1)
    .max(40)
    .regex(/^[\p{L}\p{N}][\p{L}\p{N} _.-]*$/u, 'letters, digits, spaces, _ . - only'),
  timezone: z.string().refine(isValidTimezone, 'not a known IANA timezone'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  maxConcurrentAgents: int(1, 100),
  localPort: int(0, 65535),
  isLocalChatEnabled: flag,
  maxAttempts: int(1, 20),
  retryBaseMs: int(1, 3_600_000),
  deliveryGiveUpHours: z.coerce
    .number()
    .min(0.01)
    .max(24 * 30),
  contextMessages: int(1, 1000),
  runtime: z.enum(['docker', 'podman', 'gvisor']),
  agentImage: z.string().regex(/^[a-z0-9][a-z0-9._/:-]*$/, 'an image tag like warren-agent:latest'),
  baseImage: z.string().min(1),
  agentMemoryMb: int(128, 65536),
  agentCpus: z.coerce.number().min(0.1).max(64),
  agentPids: int(32, 65536),
  agentIdleSeconds: int(1, 86_400),
  agentMaxRunMinutes: int(1, 1440),
  // The proxy sends the model credential to it: plain http only to this machine.
  modelBaseUrl: httpsOrLoopback,
  currency: z.string().regex(/^[\p{L}$€£¥]{1,8}$/u, 'a short unit like USD or EUR'),
  groupDailyBudget: money,
  groupMonthlyBudget: money,
  dailyBudget: money,
  monthlyBudget: money,
  modelPrices: z
    .string()
    .transform((text, ctx) => {
      try {
        return text === '' ? {} : JSON.parse(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string().min(1), priceSchema)),
  mountAllowlistPath: z.string().min(1),
  telegramBotToken: emptyOr(/^\d+:[\w-]{20,}$/, 'a token like 123456:ABC-DEF…'),
  // The token travels in every request's path: plain http only to this machine.
  telegramApiRoot: httpsOrLoopback,
  slackBotToken: emptyOr(/^xoxb-[\w-]{10,}$/, 'a bot token like xoxb-…'),
  slackAppToken: emptyOr(/^xapp-[\w-]{10,}$/, 'an app-level token like xapp-…'),
  // The tokens go to it in every request: plain http only to this machine.
  slackApiRoot: httpsOrLoopback,
  discordBotToken: emptyOr(
    /^[\w-]{16,}\.[\w-]{4,}\.[\w-]{16,}$/,
    'a bot token from the developer portal (three dot-separated parts)',
  ),
  // The token goes to it in every request: plain http only to this machine.
  discordApiRoot: httpsOrLoopback,
  isWhatsAppEnabled: flag,
  whatsappPhoneNumber: emptyOr(/^\d{7,15}$/, 'digits only, with country code'),
  whatsappUnknownSenders: z.enum(['pairing', 'ignore']),
  mediaMaxMb: int(1, 2000),
  retentionDays: int(0, 36500),
  auditRetentionDays: int(0, 36500),
  diskQuotaMb: int(0, 16 * 1024 * 1024),
  diskQuotaMode: z.enum(['auto', 'volume', 'watched']),
  minFreeDiskMb: int(0, 16 * 1024 * 1024),
  egressRequestsPerMinute: int(1, 100_000),
  egressMbPerDay: int(0, 16 * 1024 * 1024),
  egressCaFile: z.string(),
  egressAskSeconds: int(0, 3600),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  env: Record<string, string | undefined>;
  /** The directory whose .env file is read (the current directory for the CLI). */
  cwd: string;
}

/**
 * Two CPUs per agent, or fewer on a smaller machine (the engine refuses more than it has). An agent is Node plus
 * Claude Code, several busy threads at start-up: under a one-CPU quota its start took about 0.4 s longer, and the
 * runner cannot start Claude Code side by side with its own loading (docs/BENCHMARKS.md). The limit still caps a
 * runaway agent; the queue's concurrency cap bounds the total.
 */
export function defaultAgentCpus(): number {
  return Math.min(2, availableParallelism());
}

const defaults = (env: Record<string, string | undefined>): Record<SettingName, string> => ({
  dataDir: join(env.HOME ?? homedir(), '.warren'),
  assistantName: 'Warren',
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
  logLevel: 'info',
  maxConcurrentAgents: '5',
  localPort: '7777',
  isLocalChatEnabled: 'true',
  maxAttempts: '3',
  retryBaseMs: '2000',
  deliveryGiveUpHours: '24',
  contextMessages: '50',
  runtime: 'docker',
  agentImage: 'warren-agent:latest',
  baseImage: 'node:22-bookworm-slim',
  agentMemoryMb: '1024',
  agentCpus: String(defaultAgentCpus()),
  agentPids: '256',
  agentIdleSeconds: '300',
  agentMaxRunMinutes: '30',
  modelBaseUrl: 'https://api.anthropic.com',
  currency: 'USD',
  groupDailyBudget: '5',
  groupMonthlyBudget: '50',
  dailyBudget: '0',
  monthlyBudget: '0',
  modelPrices: '',
  mountAllowlistPath: join(env.HOME ?? homedir(), '.config', 'warren', 'mount-allowlist.json'),
  telegramBotToken: '',
  telegramApiRoot: 'https://api.telegram.org',
  slackBotToken: '',
  slackAppToken: '',
  slackApiRoot: 'https://slack.com/api',
  discordBotToken: '',
  discordApiRoot: 'https://discord.com/api',
  isWhatsAppEnabled: 'false',
  whatsappPhoneNumber: '',
  whatsappUnknownSenders: 'pairing',
  mediaMaxMb: '20',
  retentionDays: '90',
  auditRetentionDays: '365',
  diskQuotaMb: '4096',
  diskQuotaMode: 'auto',
  minFreeDiskMb: '1024',
  egressRequestsPerMinute: '120',
  egressMbPerDay: '1024',
  egressCaFile: '',
  egressAskSeconds: '120',
});

/** In the data directory: the running host's pid, where it read .env, and that file's fingerprint. */
export const STARTED_WITH = 'started-with.json';

/** The .env in cwd as a salted hash per key: `warren doctor` tells from it whether a running host read it as it is. */
export function dotEnvFingerprint(cwd: string, salt: string): Record<string, string> {
  const hash = (value: string) => createHash('sha256').update(`${salt}\0${value}`).digest('hex').slice(0, 16);
  return Object.fromEntries(Object.entries(readDotEnv(cwd)).map(([key, value]) => [key, hash(value)]));
}

function readDotEnv(cwd: string): Record<string, string> {
  const path = join(cwd, '.env');
  if (!existsSync(path)) return {};
  return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
}

// Objects only for settings that are JSON (modelPrices); they are validated as that setting's JSON text.
const fileSchema = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown())]),
);

function readConfigFile(dataDir: string): Partial<Record<SettingName, string>> {
  const path = join(dataDir, 'config.json');
  if (!existsSync(path)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON (${(error as Error).message}); fix or delete it`, path);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${path} must be a JSON object of settings`, path);
  const result: Partial<Record<SettingName, string>> = {};
  for (const [key, value] of Object.entries(parsed.data)) {
    if (!(key in settings)) {
      const known = Object.keys(settings).join(', ');
      throw new ConfigError(`${path}: unknown setting '${key}'; known settings: ${known}`, key);
    }
    if (ENV_ONLY_SETTINGS.has(key))
      throw new ConfigError(`${path}: '${key}' can only be set in the environment or .env`, key);
    result[key as SettingName] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return result;
}

/**
 * Builds the configuration. Precedence: process environment, then .env, then <dataDir>/config.json, then
 * defaults. Throws ConfigError naming the bad key and how to fix it.
 */
export function loadConfig(sources: ConfigSources): Config {
  const defined = Object.entries(sources.env).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  const env = { ...readDotEnv(sources.cwd), ...Object.fromEntries(defined) };
  const fromEnv: Partial<Record<SettingName, string>> = {};
  for (const [name, setting] of Object.entries(settings) as Array<[SettingName, { env: string }]>) {
    const value = env[setting.env];
    if (value !== undefined && value !== '') fromEnv[name] = value;
  }
  const base = defaults(env);
  const dataDir = resolve(sources.cwd, fromEnv.dataDir ?? base.dataDir);
  const merged = { ...base, ...readConfigFile(dataDir), ...fromEnv, dataDir };
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'config') as SettingName;
    const setting = settings[name];
    const key = setting?.env ?? name;
    const shown = SECRET_SETTINGS.has(name) ? '(hidden)' : JSON.stringify(merged[name]);
    throw new ConfigError(
      `invalid ${key}=${shown}: ${issue?.message ?? 'invalid'}. Set ${key} to ${setting?.help ?? 'a valid value'} ` +
        `(in the environment, .env, or "${name}" in ${join(dataDir, 'config.json')})`,
      key,
    );
  }
  return Object.freeze(parsed.data);
}

/** The settings table for help text and docs. */
export function describeSettings(): Array<{ name: string; env: string; help: string; default: string }> {
  const base = defaults({ HOME: '~' });
  return (Object.entries(settings) as Array<[SettingName, { env: string; help: string }]>).map(
    ([name, { env, help }]) => ({ name, env, help, default: base[name] }),
  );
}
