// The agent's tool requests (container → host, in output/): send_message and send_file, the task tools and the admin
// group's global memory proposal. Shared with the agent image like ipc.ts; the host authorizes each by the folder
// the file came from, never by what it claims.
import { z } from 'zod';
import {
  chatAddress,
  id,
  MAX_GLOBAL_MEMORY_BYTES,
  MAX_MESSAGE_CHARS,
  MAX_PRE_CHECK_CHARS,
  MAX_PRE_CHECK_TIMEOUT_MS,
  MAX_SHORT_CHARS,
  MAX_TASK_PROMPT_CHARS,
} from './limits.js';

/** A tool asks the host to send a message. chat defaults to the run's chat (WARREN_CHAT). */
export const sendMessageRequestSchema = z.object({
  type: z.literal('request'),
  id,
  tool: z.literal('send_message'),
  args: z.object({ text: z.string().min(1).max(MAX_MESSAGE_CHARS), chat: chatAddress.optional() }),
});

/** A tool asks the host to send a file from the group's folder (path relative to it), with an optional caption. */
export const sendFileRequestSchema = z.object({
  type: z.literal('request'),
  id,
  tool: z.literal('send_file'),
  args: z.object({
    path: z.string().min(1).max(MAX_SHORT_CHARS),
    caption: z.string().max(MAX_SHORT_CHARS).optional(),
    chat: chatAddress.optional(),
  }),
});

// Task tools: requests the host authorizes by the folder the file came from.
const taskId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a task id as list_tasks shows it');
/** Same rule as the host's group folders; only the admin group may name one (the host checks). */
const groupFolder = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a group folder name');
const scheduleKind = z.enum(['cron', 'interval', 'once']);
const scheduleText = z.string().min(1).max(200);
const timezoneName = z.string().min(1).max(100);
const taskName = z.string().min(1).max(100);
const contextMode = z.enum(['group', 'isolated']);
const preCheckTimeoutSeconds = z
  .number()
  .int()
  .min(1)
  .max(MAX_PRE_CHECK_TIMEOUT_MS / 1000);

export const scheduleTaskArgsSchema = z.object({
  prompt: z.string().min(1).max(MAX_TASK_PROMPT_CHARS),
  scheduleKind,
  schedule: scheduleText,
  timezone: timezoneName.optional(),
  name: taskName.optional(),
  contextMode: contextMode.optional(),
  preCheck: z.string().min(1).max(MAX_PRE_CHECK_CHARS).optional(),
  preCheckTimeoutSeconds: preCheckTimeoutSeconds.optional(),
  group: groupFolder.optional(),
});
export const listTasksArgsSchema = z.object({ group: groupFolder.optional() });
export const updateTaskArgsSchema = z.object({
  taskId,
  prompt: z.string().min(1).max(MAX_TASK_PROMPT_CHARS).optional(),
  scheduleKind: scheduleKind.optional(),
  schedule: scheduleText.optional(),
  timezone: timezoneName.optional(),
  name: taskName.optional(),
  contextMode: contextMode.optional(),
  /** An empty string removes the pre-check. */
  preCheck: z.string().max(MAX_PRE_CHECK_CHARS).optional(),
  preCheckTimeoutSeconds: preCheckTimeoutSeconds.optional(),
});
export const taskIdArgsSchema = z.object({ taskId });

const toolRequest = <T extends string, A extends z.ZodType>(tool: T, args: A) =>
  z.object({ type: z.literal('request'), id, tool: z.literal(tool), args });

export const taskRequestSchemas = [
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
    .refine((text) => new TextEncoder().encode(text).length <= MAX_GLOBAL_MEMORY_BYTES, {
      message: `at most ${MAX_GLOBAL_MEMORY_BYTES / 1024} KiB of UTF-8`,
    }),
});
export const updateGlobalMemoryRequestSchema = toolRequest(
  'update_global_memory',
  updateGlobalMemoryArgsSchema,
);

/** Unknown tools fail to parse: the host refuses them (fail closed). */
export const requestFileSchema = z.discriminatedUnion('tool', [
  sendMessageRequestSchema,
  sendFileRequestSchema,
  ...taskRequestSchemas,
  updateGlobalMemoryRequestSchema,
]);

export type SendMessageRequest = z.infer<typeof sendMessageRequestSchema>;
export type SendFileRequest = z.infer<typeof sendFileRequestSchema>;
export type UpdateGlobalMemoryRequest = z.infer<typeof updateGlobalMemoryRequestSchema>;
export type RequestFile = z.infer<typeof requestFileSchema>;
export type TaskToolRequest = Exclude<
  RequestFile,
  SendMessageRequest | SendFileRequest | UpdateGlobalMemoryRequest
>;
export type TaskToolName = TaskToolRequest['tool'];
