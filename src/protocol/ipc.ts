// The file protocol between the host and the agent runner in a container: paths, names, caps, env and zod schemas.
// Shared by both sides (the agent image compiles src/protocol/ in), so it imports nothing but zod and its neighbours.
import { z } from 'zod';
import {
  chatAddress,
  id,
  MAX_IPC_FILE_BYTES,
  MAX_MESSAGE_CHARS,
  MAX_PRE_CHECK_CHARS,
  MAX_PRE_CHECK_TIMEOUT_MS,
  MAX_PROMPT_CHARS,
  shortText,
} from './limits.js';
import { RUN_ENV } from './paths.js';
import { parseJson } from './read.js';
import { requestFileSchema } from './tools.js';

// The caps and the tool requests have files of their own; importers see one protocol.
export * from './limits.js';
export { CONTAINER_PATHS, RUN_ENV } from './paths.js';
export * from './tools.js';

/** Bumped on any incompatible change; the runner reports it in its ready event. */
export const IPC_PROTOCOL_VERSION = 2;

export const IPC_INPUT_DIR = 'input';
export const IPC_OUTPUT_DIR = 'output';

/**
 * IPC file names: a zero-padded sequence number (per writer, per run, from 1), a unique part and `.json`,
 * so a plain sort is creation order. Writers write `.tmp-<unique>` first and rename it (atomic); readers
 * ignore every name that does not match this pattern, temp files included.
 */
export const IPC_FILE_NAME_PATTERN = /^(\d{12})-([A-Za-z0-9-]{1,64})\.json$/;

export function ipcFileName(sequence: number, unique: string): string {
  if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence >= 1e12) {
    throw new RangeError(`IPC sequence out of range: ${sequence}`);
  }
  const name = `${String(sequence).padStart(12, '0')}-${unique}.json`;
  if (!IPC_FILE_NAME_PATTERN.test(name)) throw new RangeError(`invalid IPC file name: ${name}`);
  return name;
}

export function isIpcFileName(name: string): boolean {
  return IPC_FILE_NAME_PATTERN.test(name);
}

// ---- host → container (input/) ----

/** A batch of chat messages for the agent. The first one is in input/ before the container starts. */
export const promptFileSchema = z.object({
  type: z.literal('prompt'),
  batchId: id,
  text: z.string().min(1).max(MAX_PROMPT_CHARS),
});

/** Asks the runner to end the run now (answered prompts stay answered; unanswered ones are reported). */
export const stopFileSchema = z.object({ type: z.literal('stop'), reason: shortText });

/** The host's answer to a request file. `result` is text for the model; `error` says why it was refused. */
export const responseFileSchema = z.object({
  type: z.literal('response'),
  id,
  ok: z.boolean(),
  result: z.string().max(MAX_MESSAGE_CHARS).optional(),
  error: shortText.optional(),
});

/**
 * A scheduled task's prompt with a pre-check: the runner runs the script in the container first and hands the
 * prompt to the model only if the script says so (a `pre-check` event reports the outcome either way). Its own
 * type, not a prompt field, so an older runner refuses it instead of waking the model without the check.
 */
export const taskFileSchema = z.object({
  type: z.literal('task'),
  batchId: id,
  text: z.string().min(1).max(MAX_PROMPT_CHARS),
  preCheck: z.object({
    script: z.string().min(1).max(MAX_PRE_CHECK_CHARS),
    timeoutMs: z.number().int().min(1_000).max(MAX_PRE_CHECK_TIMEOUT_MS),
  }),
});

export const inputFileSchema = z.discriminatedUnion('type', [
  promptFileSchema,
  stopFileSchema,
  responseFileSchema,
  taskFileSchema,
]);

// ---- container → host (output/) ----

/** The runner is up and watching input/. */
export const readyEventSchema = z.object({
  type: z.literal('ready'),
  protocolVersion: z.number().int(),
});

/** Mirrors AgentEvent 'turn-end' in src/types.ts. batchIds only name prompts the host sent in this run. */
export const turnEndEventSchema = z.object({
  type: z.literal('turn-end'),
  id,
  batchIds: z.array(id).max(1_000),
  result: z.string().max(MAX_MESSAGE_CHARS).nullable(),
  sessionId: id.nullable(),
  isError: z.boolean(),
  error: shortText.optional(),
});

/** Something the host should log (e.g. a stored session that could not be resumed). */
export const logEventSchema = z.object({
  type: z.literal('log'),
  level: z.enum(['info', 'warn', 'error']),
  message: shortText,
});

/** The runner is about to exit by itself. */
export const exitEventSchema = z.object({
  type: z.literal('exit'),
  reason: z.enum(['idle', 'stop', 'signal', 'error']),
  error: shortText.optional(),
});

/** A task pre-check ended: 'run' (the prompt went to the model), 'skip' (nothing to do) or 'error' (detail says why). */
export const preCheckEventSchema = z.object({
  type: z.literal('pre-check'),
  batchId: id,
  outcome: z.enum(['run', 'skip', 'error']),
  detail: shortText.optional(),
});

export const outputFileSchema = z.union([
  z.discriminatedUnion('type', [
    readyEventSchema,
    turnEndEventSchema,
    logEventSchema,
    exitEventSchema,
    preCheckEventSchema,
  ]),
  requestFileSchema,
]);

export type PromptFile = z.infer<typeof promptFileSchema>;
export type StopFile = z.infer<typeof stopFileSchema>;
export type ResponseFile = z.infer<typeof responseFileSchema>;
export type InputFile = z.infer<typeof inputFileSchema>;
export type TaskFile = z.infer<typeof taskFileSchema>;
export type PreCheckEvent = z.infer<typeof preCheckEventSchema>;
export type ReadyEvent = z.infer<typeof readyEventSchema>;
export type TurnEndEvent = z.infer<typeof turnEndEventSchema>;
export type LogEvent = z.infer<typeof logEventSchema>;
export type ExitEvent = z.infer<typeof exitEventSchema>;
export type OutputFile = z.infer<typeof outputFileSchema>;

export type IpcFileKind = 'input' | 'output';
type FileOf<K extends IpcFileKind> = K extends 'input' ? InputFile : OutputFile;

/** What the parse and encode helpers return: they never throw. */
export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: string };

const encoder = new TextEncoder();

function utf8Length(text: string): number {
  // A UTF-16 code unit is at least one UTF-8 byte: skip encoding when the length alone already decides.
  if (text.length > MAX_IPC_FILE_BYTES) return text.length;
  return encoder.encode(text).length;
}

/** Parses one IPC file's text. Never throws: oversized, non-JSON and off-schema files come back as errors. */
export function parseIpcFile<K extends IpcFileKind>(kind: K, text: string): IpcResult<FileOf<K>> {
  if (utf8Length(text) > MAX_IPC_FILE_BYTES) return { ok: false, error: 'file too large' };
  const value = parseJson(text);
  if (value === undefined) return { ok: false, error: 'not JSON' };
  const schema = kind === 'input' ? inputFileSchema : outputFileSchema;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      error: `invalid ${kind} file: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? ''}`,
    };
  }
  return { ok: true, value: parsed.data as FileOf<K> };
}

/** Validates and serializes a file for writing. Never throws; refuses what the reader would reject. */
export function encodeIpcFile<K extends IpcFileKind>(kind: K, file: FileOf<K>): IpcResult<string> {
  const schema = kind === 'input' ? inputFileSchema : outputFileSchema;
  const parsed = schema.safeParse(file);
  if (!parsed.success)
    return { ok: false, error: `invalid ${kind} file: ${parsed.error.issues[0]?.message}` };
  const text = JSON.stringify(parsed.data);
  if (utf8Length(text) > MAX_IPC_FILE_BYTES) return { ok: false, error: 'file too large' };
  return { ok: true, value: text };
}

// ---- run settings (env) ----

const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);

export const runSettingsSchema = z.object({
  runId: id,
  groupFolder: id,
  isAdmin: z
    .enum(['0', '1', 'true', 'false'])
    .default('0')
    .transform((value) => value === '1' || value === 'true'),
  chat: chatAddress,
  sessionId: z.preprocess(emptyToUndefined, id.optional()).transform((value) => value ?? null),
  idleTimeoutMs: z.preprocess(
    emptyToUndefined,
    z.coerce.number().int().min(1_000).max(86_400_000).default(300_000),
  ),
  assistantName: z.preprocess(emptyToUndefined, z.string().min(1).max(100).default('Warren')),
  model: z.preprocess(emptyToUndefined, z.string().min(1).max(200).optional()),
});

export type RunSettings = z.infer<typeof runSettingsSchema>;

/** Reads run settings from an environment. Never throws. */
export function parseRunSettings(env: Record<string, string | undefined>): IpcResult<RunSettings> {
  const raw = Object.fromEntries(Object.entries(RUN_ENV).map(([key, name]) => [key, env[name]]));
  const parsed = runSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = RUN_ENV[issue?.path[0] as keyof typeof RUN_ENV] ?? '(env)';
    return { ok: false, error: `invalid ${name}: ${issue?.message ?? ''}` };
  }
  return { ok: true, value: parsed.data };
}

/** The env the host passes to `docker run -e` for these settings. */
export function runSettingsToEnv(settings: RunSettings): Record<string, string> {
  const env: Record<string, string> = {
    [RUN_ENV.runId]: settings.runId,
    [RUN_ENV.groupFolder]: settings.groupFolder,
    [RUN_ENV.isAdmin]: settings.isAdmin ? '1' : '0',
    [RUN_ENV.chat]: settings.chat,
    [RUN_ENV.idleTimeoutMs]: String(settings.idleTimeoutMs),
    [RUN_ENV.assistantName]: settings.assistantName,
  };
  if (settings.sessionId) env[RUN_ENV.sessionId] = settings.sessionId;
  if (settings.model) env[RUN_ENV.model] = settings.model;
  return env;
}
