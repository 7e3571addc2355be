// The Claude Agent SDK model loop: one streaming query() per session, results mapped to turns.
import type { UUID } from 'node:crypto';
import {
  type McpSdkServerConfigWithInstance,
  type Options,
  type Query,
  query,
  type SDKResultMessage,
  type SDKUserMessage,
} from '@anthropic-ai/claude-agent-sdk';
import type { AgentLoop, LoopEnd, LoopTurn } from './agent-loop.js';
import { errorMessage, type Log } from './log.js';
import type { QueuedPrompt } from './prompt-queue.js';
import { WARREN_SERVER_NAME } from './warren-tools.js';

export interface ClaudeLoopOptions {
  cwd: string;
  /** HOME for Claude Code: writable, with .claude the group's session state. */
  home: string;
  /** The relay's URL: the SDK's only way to the model API. */
  apiBaseUrl: string;
  tools: McpSdkServerConfigWithInstance;
  systemPromptAppend: string;
  /** Folders besides cwd the agent may work in (global memory, extra mounts). */
  additionalDirectories: string[];
  model?: string;
  log: Log;
}

/**
 * Built-in tools the agent does not get. WebFetch/WebSearch: the container has no network, and web search runs
 * server-side, which would go around the host's per-group egress policy. Cron*, ScheduleWakeup: in-session timers
 * die with the container; scheduling is the host's job. SendMessage: Claude Code's agent-to-agent messaging, easily
 * confused with Warren's send_message.
 */
export const DISALLOWED_TOOLS = [
  'WebFetch',
  'WebSearch',
  'CronCreate',
  'CronDelete',
  'CronList',
  'ScheduleWakeup',
  'SendMessage',
];

/** How long close() waits for an interrupt to be acknowledged before closing anyway. */
const INTERRUPT_TIMEOUT_MS = 500;

export function buildClaudeOptions(options: ClaudeLoopOptions, resumeSessionId: string | null): Options {
  return {
    cwd: options.cwd,
    ...(resumeSessionId ? { resume: resumeSessionId } : {}),
    ...(options.model ? { model: options.model } : {}),
    // No filesystem settings at all. 'project' would also load .claude/settings.json (hooks, MCP servers,
    // permissions) from the group folder, which the agent can write: an injected agent could plant a hook that
    // runs at its next start. 'user' reads ~/.claude/settings.json, which the agent can write during a run.
    // Everything is set here in code instead, and CLAUDE.md memory is passed in the system prompt (memory.ts).
    settingSources: [],
    // Settings from code only (the "flag" layer). No auto-memory: CLAUDE.md is the one memory the host knows
    // about. No hooks from anywhere, as a second lock behind settingSources.
    settings: { autoMemoryEnabled: false, disableAllHooks: true },
    strictMcpConfig: true,
    mcpServers: { [WARREN_SERVER_NAME]: options.tools },
    // The container is the sandbox (no network, read-only root, only the group's mounts), so the agent may use
    // its tools without asking; nobody is there to answer a permission prompt. Refused as root: we run as uid 1000.
    permissionMode: 'bypassPermissions',
    allowDangerouslySkipPermissions: true,
    disallowedTools: DISALLOWED_TOOLS,
    additionalDirectories: options.additionalDirectories,
    systemPrompt: { type: 'preset', preset: 'claude_code', append: options.systemPromptAppend },
    env: {
      ...process.env,
      HOME: options.home,
      ANTHROPIC_BASE_URL: options.apiBaseUrl,
      // Not a secret: the host's credential proxy replaces it with the real key.
      ANTHROPIC_API_KEY: 'warren-proxy',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_NON_ESSENTIAL_MODEL_CALLS: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_AGENT_SDK_CLIENT_APP: 'warren-agent/0.1.0',
    },
    stderr: (data) => options.log.debug({ data: data.trimEnd() }, 'claude code stderr'),
  };
}

export function createClaudeLoop(options: ClaudeLoopOptions): AgentLoop {
  const { log } = options;
  let current: Query | null = null;
  let isClosing = false;

  return {
    async run({ prompts, resumeSessionId, onTurnEnd }): Promise<LoopEnd> {
      isClosing = false;
      let isInitialized = false;
      let session: Query | null = null;
      try {
        session = query({
          prompt: toSdkMessages(prompts),
          options: buildClaudeOptions(options, resumeSessionId),
        });
        current = session;
        for await (const message of session) {
          if (message.type === 'system' && message.subtype === 'init') {
            // Claude Code repeats init at every turn; the first one starts the session.
            if (!isInitialized)
              log.info({ sessionId: message.session_id, model: message.model }, 'session started');
            isInitialized = true;
          } else if (message.type === 'result') {
            // An error before the session even started, while resuming: the stored session is unusable
            // (seen: "No conversation found with session ID" for missing and corrupt transcripts).
            if (!isInitialized && resumeSessionId && message.is_error) {
              return { status: 'resume-failed', error: resultError(message) ?? 'resume failed' };
            }
            onTurnEnd(toTurn(message));
          }
        }
        return { status: 'ended' };
      } catch (error) {
        if (isClosing) return { status: 'ended' };
        if (!isInitialized && resumeSessionId) return { status: 'resume-failed', error: errorMessage(error) };
        log.error({ err: error }, 'claude session failed');
        return { status: 'failed', error: errorMessage(error) };
      } finally {
        current = null;
        // Make sure the Claude Code process is gone, also when we returned early.
        try {
          session?.close();
        } catch (error) {
          log.debug({ err: error }, 'closing the claude session failed');
        }
      }
    },
    close() {
      isClosing = true;
      const session = current;
      if (!session) return;
      // Interrupt the turn first: an idle Claude Code process exits as soon as its input ends, while close() on
      // a busy one waits 2 s before it sends SIGTERM.
      const closeNow = () => {
        clearTimeout(fallback);
        session.close();
      };
      const fallback = setTimeout(closeNow, INTERRUPT_TIMEOUT_MS);
      session.interrupt().then(closeNow, closeNow);
    },
  };
}

async function* toSdkMessages(prompts: AsyncIterable<QueuedPrompt>): AsyncGenerator<SDKUserMessage> {
  for await (const prompt of prompts) {
    yield {
      type: 'user',
      message: { role: 'user', content: prompt.text },
      parent_tool_use_id: null,
      // Echoed back in result.user_message_uuids: how a result is bound to the batches it answered.
      uuid: prompt.uuid as UUID,
    };
  }
}

function toTurn(message: SDKResultMessage): LoopTurn {
  const uuids =
    message.user_message_uuids ?? (message.user_message_uuid ? [message.user_message_uuid] : null);
  const error = resultError(message);
  return {
    promptUuids: uuids,
    result: message.subtype === 'success' ? message.result : null,
    sessionId: message.session_id,
    isError: message.is_error,
    ...(error ? { error } : {}),
  };
}

function resultError(message: SDKResultMessage): string | undefined {
  if (message.subtype !== 'success') return message.errors.join('; ') || message.subtype;
  return message.is_error ? message.result : undefined;
}
