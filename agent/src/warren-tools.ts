// Warren's own tools, served in-process to the SDK: each one is a request file the host answers.
import {
  createSdkMcpServer,
  type McpSdkServerConfigWithInstance,
  tool,
} from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import {
  CHAT_ADDRESS_PATTERN,
  CONTAINER_PATHS,
  MAX_GLOBAL_MEMORY_BYTES,
  MAX_MESSAGE_CHARS,
  updateGlobalMemoryArgsSchema,
} from '../../src/protocol/ipc.js';
import type { HostAnswer, HostRequests } from './host-requests.js';
import { createTaskTools } from './task-tools.js';

/** The MCP server name; the model sees the tools as mcp__warren__<name>. */
export const WARREN_SERVER_NAME = 'warren';

export function createWarrenTools(deps: {
  requests: HostRequests;
  chat: string;
  /** The admin group's tools may name other groups (the host checks again). */
  isAdmin?: boolean;
}): McpSdkServerConfigWithInstance {
  const chatArgument = z
    .string()
    .regex(CHAT_ADDRESS_PATTERN)
    .optional()
    .describe('Another chat as "channel:chatId". Omit for the current chat.');
  const sendMessage = tool(
    'send_message',
    `Send a message to a chat right away, before your turn ends. Without "chat" it goes to the current chat (${deps.chat}). The host may refuse chats this group is not allowed to reach; the answer says so.`,
    {
      text: z.string().min(1).max(MAX_MESSAGE_CHARS).describe('The message text.'),
      chat: chatArgument,
    },
    async (args) =>
      toToolResult(
        await deps.requests.send({
          tool: 'send_message',
          args: args.chat === undefined ? { text: args.text } : { text: args.text, chat: args.chat },
        }),
        'Message sent.',
      ),
    // Always in the tool list: the SDK otherwise defers MCP tools behind a ToolSearch round trip.
    { alwaysLoad: true },
  );
  const sendFile = tool(
    'send_file',
    `Send a file from this group's folder (the current directory, /workspace/group) to a chat, e.g. a report you wrote. Without "chat" it goes to the current chat.`,
    {
      path: z
        .string()
        .min(1)
        .max(1000)
        .describe('The file, relative to the group folder, e.g. "reports/q3.pdf".'),
      caption: z.string().max(1000).optional().describe('A short caption shown with the file.'),
      chat: chatArgument,
    },
    async (args) =>
      toToolResult(
        await deps.requests.send({
          tool: 'send_file',
          args: {
            path: args.path,
            ...(args.caption === undefined ? {} : { caption: args.caption }),
            ...(args.chat === undefined ? {} : { chat: args.chat }),
          },
        }),
        'File sent.',
      ),
    { alwaysLoad: true },
  );
  // Only the admin group gets it (the host refuses any other group anyway), and even then nothing is written
  // until the owner approves: every group's agent reads global memory.
  const updateGlobalMemory = tool(
    'update_global_memory',
    `Propose a new text for global memory (${CONTAINER_PATHS.global}/CLAUDE.md), which every group's agent reads. Pass the complete new file, not only the change, at most ${MAX_GLOBAL_MEMORY_BYTES / 1024} KiB. It does not take effect now: the owner sees the difference in the admin chat and must approve it there first; until then every group keeps the current text. The answer gives the proposal's number.`,
    updateGlobalMemoryArgsSchema.shape,
    async (args) =>
      toToolResult(
        await deps.requests.send({ tool: 'update_global_memory', args: { content: args.content } }),
        'Proposal sent to the owner.',
      ),
    { alwaysLoad: true },
  );
  const taskTools = createTaskTools({ requests: deps.requests, isAdmin: deps.isAdmin ?? false });
  return createSdkMcpServer({
    name: WARREN_SERVER_NAME,
    version: '1.0.0',
    tools: [sendMessage, sendFile, ...taskTools, ...(deps.isAdmin ? [updateGlobalMemory] : [])],
  });
}

function toToolResult(answer: HostAnswer, done: string) {
  if (answer.ok) return { content: [{ type: 'text' as const, text: answer.result ?? done }] };
  return { content: [{ type: 'text' as const, text: `Refused: ${answer.error}` }], isError: true };
}
