// The protocol's caps, and the fields bounded by them that every file uses. Shared with the agent image like ipc.ts.
import { z } from 'zod';

/** Hard cap on one IPC file, both directions. Readers reject larger files without parsing them. */
export const MAX_IPC_FILE_BYTES = 1024 * 1024;
/** Cap on a prompt's text (a batch of chat messages). */
export const MAX_PROMPT_CHARS = 256_000;
/** Cap on one message the agent sends (send_message text, turn-end result). */
export const MAX_MESSAGE_CHARS = 64_000;
/** Cap on ids, reasons and other short strings. */
export const MAX_SHORT_CHARS = 1_000;
/** How long a tool waits for the host's response file before telling the model the host did not answer. */
export const TOOL_RESPONSE_TIMEOUT_MS = 60_000;
/** Cap on a scheduled task's prompt. */
export const MAX_TASK_PROMPT_CHARS = 16_000;
/** Cap on a task's pre-check script. */
export const MAX_PRE_CHECK_CHARS = 8_000;
/** A pre-check's time limit: default and ceiling. Past it the script is killed and the check failed. */
export const DEFAULT_PRE_CHECK_TIMEOUT_MS = 60_000;
export const MAX_PRE_CHECK_TIMEOUT_MS = 300_000;
/** A pre-check printing more than this on stdout fails (it is a decision, not a report). */
export const MAX_PRE_CHECK_OUTPUT_BYTES = 64 * 1024;
/** Cap on the data a pre-check hands to the model (as JSON text). */
export const MAX_PRE_CHECK_DATA_CHARS = 16_000;
/**
 * Cap on global memory (global/CLAUDE.md) an agent proposes, in UTF-8 bytes: the runner's MAX_MEMORY_BYTES
 * (agent/src/memory.ts), since a longer text would be cut in every system prompt anyway.
 */
export const MAX_GLOBAL_MEMORY_BYTES = 64 * 1024;

export const id = z.string().min(1).max(128);
export const shortText = z.string().max(MAX_SHORT_CHARS);
/** A chat as "channel:chatId", e.g. "telegram:-100123". */
export const CHAT_ADDRESS_PATTERN = /^[a-z][a-z0-9_-]*:.+$/;
export const chatAddress = z
  .string()
  .max(MAX_SHORT_CHARS)
  .regex(CHAT_ADDRESS_PATTERN, 'expected "channel:chatId"');
