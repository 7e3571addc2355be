// The file protocol between the host and the agent runner in a container: names, caps, zod schemas and env.
// Shared by both sides (the agent image compiles src/protocol/ in), so it imports nothing but zod and its neighbours.
import { z } from 'zod';
import { RUN_ENV } from './paths.js';
import { parseJson } from './read.js';

export { CONTAINER_PATHS, RUN_ENV } from './paths.js';

/** Bumped on any incompatible change; the runner reports it in its ready event. */
export const IPC_PROTOCOL_VERSION = 2;

export const IPC_INPUT_DIR = 'input';
export const IPC_OUTPUT_DIR = 'output';

/** Hard cap on one IPC file, both directions. Readers reject larger files without parsing them. */
export const MAX_IPC_FILE_BYTES = 1024 * 1024;
const MAX_PROMPT_CHARS = 256_000;
/** Cap on one message the agent sends (send_message text, turn-end result). */
export const MAX_MESSAGE_CHARS = 64_000;
/** Cap on ids, reasons and other short strings. */
export const MAX_SHORT_CHARS = 1_000;
/** How long a tool waits for the host's response file before telling the model the host did not answer. */
export const TOOL_RESPONSE_TIMEOUT_MS = 60_000;
const MAX_TASK_PROMPT_CHARS = 16_000;
const MAX_PRE_CHECK_CHARS = 8_000;
/** A pre-check's time limit: default and ceiling. Past it the script is killed and the check failed. */
export const DEFAULT_PRE_CHECK_TIMEOUT_MS = 60_000;
const MAX_PRE_CHECK_TIMEOUT_MS = 300_000;
/** A pre-check printing more than this on stdout fails (it is a decision, not a report). */
export const MAX_PRE_CHECK_OUTPUT_BYTES = 64 * 1024;
/** Cap on the data a pre-check hands to the model (as JSON text). */
export const MAX_PRE_CHECK_DATA_CHARS = 16_000;
/** Cap on proposed global memory, in UTF-8 bytes: agent/src/memory.ts cuts longer memory files anyway. */
export const MAX_GLOBAL_MEMORY_BYTES = 64 * 1024;

const id = z.string().min(1).max(128);
const shortText = z.string().max(MAX_SHORT_CHARS);
const promptText = z.string().min(1).max(MAX_PROMPT_CHARS);
/** A chat as "channel:chatId", e.g. "telegram:-100123". */
const chatAddress = z
  .string()
  .max(MAX_SHORT_CHARS)
  .regex(/^[a-z][a-z0-9_-]*:.+$/, 'expected "channel:chatId"');

/**
 * IPC file names: a zero-padded sequence number (per writer, per run, from 1), a unique part and `.json`, so a plain
 * sort is creation order. Readers ignore every other name, writers' `.tmp-<unique>` files included.
 */
const IPC_FILE_NAME_PATTERN = /^(\d{12})-([A-Za-z0-9-]{1,64})\.json$/;

export function ipcFileName(sequence: number, unique: string): string {
  if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence >= 1e12) {
    throw new RangeError(`IPC sequence out of range: ${sequence}`);
  }
  const name = `${String(sequence).padStart(12, '0')}-${unique}.json`;
  if (!IPC_FILE_NAME_PATTERN.test(name)) throw new RangeError(`invalid IPC file name: ${name}`);
  return name;
}

export const isIpcFileName = (name: string): boolean => IPC_FILE_NAME_PATTERN.test(name);

// ---- host → container (input/) ----

const inputFileSchema = z.discriminatedUnion('type', [
  /** A batch of chat messages for the agent. The first one is in input/ before the container starts. */
  z.object({ type: z.literal('prompt'), batchId: id, text: promptText }),
  /** Asks the runner to end the run now (answered prompts stay answered; unanswered ones are reported). */
  z.object({ type: z.literal('stop'), reason: shortText }),
  /** The host's answer to a request file. `result` is text for the model; `error` says why it was refused. */
  z.object({
    type: z.literal('response'),
    id,
    ok: z.boolean(),
    result: z.string().max(MAX_MESSAGE_CHARS).optional(),
    error: shortText.optional(),
  }),
  /**
   * A task's prompt behind a pre-check script the runner runs first (reported in a `pre-check` event). Its own type,
   * not a prompt field, so an older runner refuses it instead of waking the model without the check.
   */
  z.object({
    type: z.literal('task'),
    batchId: id,
    text: promptText,
    preCheck: z.object({
      script: z.string().min(1).max(MAX_PRE_CHECK_CHARS),
      timeoutMs: z.number().int().min(1_000).max(MAX_PRE_CHECK_TIMEOUT_MS),
    }),
  }),
]);

// ---- the agent's tool requests (container → host, in output/) ----
// The host authorizes each by the folder the file came from, never by what it claims.

const toolRequest = <T extends string, A extends z.ZodType>(tool: T, args: A) =>
  z.object({ type: z.literal('request'), id, tool: z.literal(tool), args });

/** A tool asks the host to send a message. chat defaults to the run's chat (WARREN_CHAT). */
export const sendMessageRequestSchema = toolRequest(
  'send_message',
  z.object({ text: z.string().min(1).max(MAX_MESSAGE_CHARS), chat: chatAddress.optional() }),
);

/** A tool asks the host to send a file from the group's folder (path relative to it), with an optional caption. */
export const sendFileRequestSchema = toolRequest(
  'send_file',
  z.object({
    path: z.string().min(1).max(MAX_SHORT_CHARS),
    caption: z.string().max(MAX_SHORT_CHARS).optional(),
    chat: chatAddress.optional(),
  }),
);

const taskId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a task id as list_tasks shows it');
/** Same rule as the host's group folders; only the admin group may name one (the host checks). */
const groupFolder = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a group folder name');
const preCheckTimeoutSeconds = z
  .number()
  .int()
  .min(1)
  .max(MAX_PRE_CHECK_TIMEOUT_MS / 1000)
  .optional();
const scheduleFields = {
  prompt: z.string().min(1).max(MAX_TASK_PROMPT_CHARS),
  scheduleKind: z.enum(['cron', 'interval', 'once']),
  schedule: z.string().min(1).max(200),
  timezone: z.string().min(1).max(100).optional(),
  name: z.string().min(1).max(100).optional(),
  contextMode: z.enum(['group', 'isolated']).optional(),
};

export const scheduleTaskArgsSchema = z.object({
  ...scheduleFields,
  preCheck: z.string().min(1).max(MAX_PRE_CHECK_CHARS).optional(),
  preCheckTimeoutSeconds,
  group: groupFolder.optional(),
});
export const listTasksArgsSchema = z.object({ group: groupFolder.optional() });
export const updateTaskArgsSchema = z.object({
  taskId,
  ...z.object(scheduleFields).partial().shape,
  /** An empty string removes the pre-check. */
  preCheck: z.string().max(MAX_PRE_CHECK_CHARS).optional(),
  preCheckTimeoutSeconds,
});
export const taskIdArgsSchema = z.object({ taskId });

const taskRequestSchemas = [
  toolRequest('schedule_task', scheduleTaskArgsSchema),
  toolRequest('list_tasks', listTasksArgsSchema),
  toolRequest('update_task', updateTaskArgsSchema),
  toolRequest('pause_task', taskIdArgsSchema),
  toolRequest('resume_task', taskIdArgsSchema),
  toolRequest('cancel_task', taskIdArgsSchema),
] as const;

/**
 * The admin group's agent proposes the complete new text of global memory. Nothing is written until the owner
 * approves it in the admin chat (the host's memory-proposals.ts), because every group's agent reads that file.
 */
export const updateGlobalMemoryArgsSchema = z.object({
  content: z
    .string()
    .max(MAX_GLOBAL_MEMORY_BYTES)
    .refine((text) => Buffer.byteLength(text) <= MAX_GLOBAL_MEMORY_BYTES, {
      message: `at most ${MAX_GLOBAL_MEMORY_BYTES / 1024} KiB of UTF-8`,
    }),
});

/** Unknown tools fail to parse: the host refuses them (fail closed). */
const requestFileSchema = z.discriminatedUnion('tool', [
  sendMessageRequestSchema,
  sendFileRequestSchema,
  ...taskRequestSchemas,
  toolRequest('update_global_memory', updateGlobalMemoryArgsSchema),
]);

// ---- container → host (output/) ----

const outputFileSchema = z.union([
  z.discriminatedUnion('type', [
    /** The runner is up and watching input/. */
    z.object({ type: z.literal('ready'), protocolVersion: z.number().int() }),
    /** Mirrors AgentEvent 'turn-end' in src/types.ts. batchIds only name prompts the host sent in this run. */
    z.object({
      type: z.literal('turn-end'),
      id,
      batchIds: z.array(id).max(1_000),
      result: z.string().max(MAX_MESSAGE_CHARS).nullable(),
      sessionId: id.nullable(),
      isError: z.boolean(),
      error: shortText.optional(),
    }),
    /** Something the host should log (e.g. a stored session that could not be resumed). */
    z.object({ type: z.literal('log'), level: z.enum(['info', 'warn', 'error']), message: shortText }),
    /** The runner is about to exit by itself. */
    z.object({
      type: z.literal('exit'),
      reason: z.enum(['idle', 'stop', 'signal', 'error']),
      error: shortText.optional(),
    }),
    /** A task pre-check ended: 'run' (the prompt went to the model), 'skip' (nothing to do) or 'error' (see detail). */
    z.object({
      type: z.literal('pre-check'),
      batchId: id,
      outcome: z.enum(['run', 'skip', 'error']),
      detail: shortText.optional(),
    }),
  ]),
  requestFileSchema,
]);

export type InputFile = z.infer<typeof inputFileSchema>;
export type TaskFile = Extract<InputFile, { type: 'task' }>;
export type ResponseFile = Extract<InputFile, { type: 'response' }>;
export type OutputFile = z.infer<typeof outputFileSchema>;
export type RequestFile = z.infer<typeof requestFileSchema>;
export type SendMessageRequest = z.infer<typeof sendMessageRequestSchema>;
export type SendFileRequest = z.infer<typeof sendFileRequestSchema>;
export type TaskToolRequest = z.infer<(typeof taskRequestSchemas)[number]>;

type IpcFileKind = 'input' | 'output';
type FileOf<K extends IpcFileKind> = K extends 'input' ? InputFile : OutputFile;
/** What the parse and encode helpers return: they never throw. */
export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: string };

// A UTF-16 code unit is at least one UTF-8 byte: the length alone may already decide.
const isTooLarge = (text: string) =>
  text.length > MAX_IPC_FILE_BYTES || Buffer.byteLength(text) > MAX_IPC_FILE_BYTES;

function validate<K extends IpcFileKind>(kind: K, value: unknown): IpcResult<FileOf<K>> {
  const parsed = (kind === 'input' ? inputFileSchema : outputFileSchema).safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data as FileOf<K> };
  const issue = parsed.error.issues[0];
  return {
    ok: false,
    error: `invalid ${kind} file: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? ''}`,
  };
}

/** Parses one IPC file's text. Never throws: oversized, non-JSON and off-schema files come back as errors. */
export function parseIpcFile<K extends IpcFileKind>(kind: K, text: string): IpcResult<FileOf<K>> {
  if (isTooLarge(text)) return { ok: false, error: 'file too large' };
  const value = parseJson(text);
  return value === undefined ? { ok: false, error: 'not JSON' } : validate(kind, value);
}

/** Validates and serializes a file for writing. Never throws; refuses what the reader would reject. */
export function encodeIpcFile<K extends IpcFileKind>(kind: K, file: FileOf<K>): IpcResult<string> {
  const valid = validate(kind, file);
  if (!valid.ok) return valid;
  const text = JSON.stringify(valid.value);
  return isTooLarge(text) ? { ok: false, error: 'file too large' } : { ok: true, value: text };
}

// ---- run settings (env) ----

const emptyToUndefined = (value: unknown) => (value === '' ? undefined : value);

const runSettingsSchema = z.object({
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
  /** The group's remote MCP servers (JSON: [{name, url}]), reached through the egress gateway. */
  mcpServers: z.preprocess(
    (value) => (value === undefined || value === '' ? [] : parseJson(String(value))),
    z
      .array(
        z.object({ name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/), url: z.url({ protocol: /^https?$/ }) }),
      )
      .max(10),
  ),
  /** The owner turned web search on for the group (the credential proxy refuses it otherwise). */
  webSearch: z
    .enum(['0', '1'])
    .default('0')
    .transform((value) => value === '1'),
});

export type RunSettings = z.infer<typeof runSettingsSchema>;

/** Reads run settings from an environment. Never throws. */
export function parseRunSettings(env: Record<string, string | undefined>): IpcResult<RunSettings> {
  const raw = Object.fromEntries(Object.entries(RUN_ENV).map(([key, name]) => [key, env[name]]));
  const parsed = runSettingsSchema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const name = RUN_ENV[issue?.path[0] as keyof typeof RUN_ENV] ?? '(env)';
  return { ok: false, error: `invalid ${name}: ${issue?.message ?? ''}` };
}

/** The env the host passes to `docker run -e` for these settings (unset ones left out). */
export function runSettingsToEnv(settings: RunSettings): Record<string, string> {
  const values: Record<string, unknown> = {
    ...settings,
    isAdmin: settings.isAdmin ? '1' : '0',
    webSearch: settings.webSearch ? '1' : '0',
    mcpServers: settings.mcpServers.length > 0 ? JSON.stringify(settings.mcpServers) : null,
  };
  const set = Object.entries(RUN_ENV).filter(([key]) => values[key] != null);
  return Object.fromEntries(set.map(([key, name]) => [name, String(values[key])]));
}
