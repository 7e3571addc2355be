// The Claude Agent SDK model loop: one streaming query() per session, results mapped to turns.
import type { UUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type McpSdkServerConfigWithInstance,
  type Options,
  type Query,
  query,
  type SDKResultMessage,
} from '@anthropic-ai/claude-agent-sdk';
import type { AgentLoop, LoopEnd, LoopTurn } from './agent-loop.js';
import { type ClaudeLaunch, type ClaudeSpawner, launchOptions } from './claude-launch.js';
import { errorMessage, type Log } from './log.js';
import type { QueuedPrompt } from './prompt-queue.js';

export interface ClaudeLoopOptions {
  /** Where Claude Code runs and how; the early process for the first session, fresh ones after (claude-launch.ts). */
  launch: ClaudeLaunch;
  spawner: ClaudeSpawner;
  tools: McpSdkServerConfigWithInstance;
  /** The group's remote MCP servers (streamable HTTP), reached through the egress gateway like every request. */
  remoteMcp: Array<{ name: string; url: string }>;
  systemPromptAppend: string;
  log: Log;
}

/** The SDK options: what claude-launch.ts decides, plus what never goes on Claude Code's command line. */
export function buildClaudeOptions(options: ClaudeLoopOptions, resumeSessionId: string | null): Options {
  return {
    ...launchOptions(options.launch, resumeSessionId),
    spawnClaudeCodeProcess: (request) => options.spawner.spawn(request),
    // The in-process server never goes on the command line; the group's remote ones do (argv, as the SDK would).
    mcpServersDelivery: 'argv',
    mcpServers: {
      ...Object.fromEntries(options.remoteMcp.map(({ name, url }) => [name, { type: 'http' as const, url }])),
      [options.tools.name]: options.tools,
    },
    systemPrompt: { type: 'preset', preset: 'claude_code', append: options.systemPromptAppend },
  };
}

/** How long close() waits for an interrupt to be acknowledged before closing anyway. */
const INTERRUPT_TIMEOUT_MS = 500;

export function createClaudeLoop(options: ClaudeLoopOptions): AgentLoop {
  const { log } = options;
  let current: Query | null = null;
  let isClosing = false;

  return {
    async run({ prompts, resumeSessionId, onTurnEnd }): Promise<LoopEnd> {
      isClosing = false;
      let isInitialized = false;
      try {
        current = query({
          prompt: toSdkMessages(prompts),
          options: buildClaudeOptions(options, resumeSessionId),
        });
        for await (const message of current) {
          if (message.type === 'system' && message.subtype === 'init' && !isInitialized) {
            // Claude Code repeats init at every turn; the first one starts the session.
            log.info({ sessionId: message.session_id, model: message.model }, 'session started');
            isInitialized = true;
          } else if (message.type === 'result') {
            const turn = toTurn(message);
            // An error before the session even started, while resuming: the stored session is unusable
            // (seen: "No conversation found with session ID" for missing and corrupt transcripts).
            if (!isInitialized && resumeSessionId && turn.isError) {
              return { status: 'resume-failed', error: turn.result ?? 'resume failed' };
            }
            onTurnEnd(turn);
          }
        }
        return { status: 'ended' };
      } catch (error) {
        if (isClosing) return { status: 'ended' };
        if (!isInitialized && resumeSessionId) return { status: 'resume-failed', error: errorMessage(error) };
        log.error({ err: error }, 'claude session failed');
        return { status: 'failed', error: errorMessage(error) };
      } finally {
        // Make sure the Claude Code process is gone, also when we returned early.
        try {
          current?.close();
        } catch (error) {
          log.debug({ err: error }, 'closing the claude session failed');
        }
        current = null;
      }
    },
    close() {
      isClosing = true;
      const session = current;
      if (!session) return;
      // Interrupt the turn first: an idle Claude Code process exits as soon as its input ends, while close() on
      // a busy one waits 2 s before it sends SIGTERM.
      const interrupted = session.interrupt().catch(() => {});
      const waited = sleep(INTERRUPT_TIMEOUT_MS, undefined, { ref: false });
      void Promise.race([interrupted, waited]).then(() => session.close());
    },
  };
}

async function* toSdkMessages(prompts: AsyncIterable<QueuedPrompt>) {
  for await (const prompt of prompts) {
    yield {
      type: 'user' as const,
      message: { role: 'user' as const, content: prompt.text },
      parent_tool_use_id: null,
      // Echoed back in result.user_message_uuids: how a result is bound to the batches it answered.
      uuid: prompt.uuid as UUID,
    };
  }
}

/** A result as a turn: an error's text (the errors, or the failed result) goes in `result` too. */
function toTurn(message: SDKResultMessage): LoopTurn {
  const isSuccess = message.subtype === 'success';
  return {
    promptUuids:
      message.user_message_uuids ?? (message.user_message_uuid ? [message.user_message_uuid] : null),
    result: isSuccess ? message.result : message.errors.join('; ') || message.subtype,
    sessionId: message.session_id,
    isError: message.is_error || !isSuccess,
  };
}
