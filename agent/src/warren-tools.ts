// Warren's own tools, served in-process to the SDK: each one is a request file the host answers and decides on.
import {
  createSdkMcpServer,
  type McpSdkServerConfigWithInstance,
  tool,
} from '@anthropic-ai/claude-agent-sdk';
import type { ZodRawShape } from 'zod';
import {
  CONTAINER_PATHS,
  listTasksArgsSchema,
  MAX_GLOBAL_MEMORY_BYTES,
  scheduleTaskArgsSchema,
  sendFileRequestSchema,
  sendMessageRequestSchema,
  taskIdArgsSchema,
  updateGlobalMemoryArgsSchema,
  updateTaskArgsSchema,
} from '../../src/protocol/ipc.js';
import type { HostRequests, ToolRequest } from './host-requests.js';

const SCHEDULE_HELP = [
  "scheduleKind 'cron': a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. '0 9 * * 1-5'",
  "for 09:00 on weekdays; 'interval': a duration like '30m', '2h', '1d' (at least 1m); 'once': a local time like",
  "'2025-06-02T09:00' (or an ISO time with an offset). Times are in `timezone` (an IANA name such as",
  "'Europe/Berlin'; default: the owner's timezone, the one the times in your prompts are in).",
].join(' ');

const PRE_CHECK_HELP = [
  'preCheck: an optional bash script that runs first, in this container, and decides whether you are needed at all',
  '(a run it skips costs no model call). Its last line of output must be JSON: {"run": false} for nothing to do,',
  'or {"run": true, "data": …} to run with that data added to the prompt. A non-zero exit or other output is a',
  'failure, reported in the chat. Keep it short and quick (default time limit 60 s; the container has no network).',
].join(' ');

export function createWarrenTools(deps: {
  requests: HostRequests;
  chat: string;
  /** The admin group's tools may name other groups (the host checks again). */
  isAdmin?: boolean;
}): McpSdkServerConfigWithInstance {
  const { requests, isAdmin = false } = deps;
  /**
   * A tool that is one request to the host, its arguments checked by the protocol's own schema (the host checks
   * them again). Always in the tool list: the SDK otherwise defers MCP tools behind a ToolSearch round trip.
   */
  const hostTool = (name: ToolRequest['tool'], description: string, shape: ZodRawShape, done = 'Done.') =>
    tool(
      name,
      description,
      shape,
      async (args) => {
        const answer = await requests.send({ tool: name, args } as ToolRequest);
        if (answer.ok) return { content: [{ type: 'text', text: answer.result ?? done }] };
        return { content: [{ type: 'text', text: `Refused: ${answer.error}` }], isError: true };
      },
      { alwaysLoad: true },
    );
  const chat = sendMessageRequestSchema.shape.args.shape.chat.describe(
    'Another chat as "channel:chatId". Omit for the current chat.',
  );
  const fileArgs = sendFileRequestSchema.shape.args.shape;
  const taskId = taskIdArgsSchema.shape;

  return createSdkMcpServer({
    // The model sees the tools as mcp__warren__<name>.
    name: 'warren',
    version: '1.0.0',
    tools: [
      hostTool(
        'send_message',
        `Send a message to a chat right away, before your turn ends. Without "chat" it goes to the current chat (${deps.chat}). The host may refuse chats this group is not allowed to reach; the answer says so.`,
        { text: sendMessageRequestSchema.shape.args.shape.text.describe('The message text.'), chat },
        'Message sent.',
      ),
      hostTool(
        'send_file',
        `Send a file from this group's folder (the current directory, /workspace/group) to a chat, e.g. a report you wrote. Without "chat" it goes to the current chat.`,
        {
          path: fileArgs.path.describe('The file, relative to the group folder, e.g. "reports/q3.pdf".'),
          caption: fileArgs.caption.describe('A short caption shown with the file.'),
          chat,
        },
        'File sent.',
      ),
      hostTool(
        'schedule_task',
        `Schedule a task: a prompt the host runs for this chat later, once or repeatedly; each run's final reply is posted to this chat. Write the prompt so it makes sense on its own. ${SCHEDULE_HELP} contextMode 'group' (default) runs in this chat's conversation; 'isolated' runs in a fresh session without the chat history (better for self-contained reports). ${PRE_CHECK_HELP}${isAdmin ? " As the admin group you may pass `group` (a group folder) to schedule for another group's chat." : ''} The answer gives the task id and next run, or says what to fix.`,
        // Only the admin group may name another group; the host checks either way.
        isAdmin ? scheduleTaskArgsSchema.shape : scheduleTaskArgsSchema.omit({ group: true }).shape,
      ),
      hostTool(
        'list_tasks',
        `List scheduled tasks: id, name, schedule, status, next run and last run.${isAdmin ? ' As the admin group you see every group; pass `group` to see one.' : ''}`,
        isAdmin ? listTasksArgsSchema.shape : {},
      ),
      hostTool(
        'update_task',
        `Change a scheduled task; only the fields you pass change. A new schedule, kind or timezone starts over from now. ${SCHEDULE_HELP} An empty preCheck removes the pre-check.`,
        updateTaskArgsSchema.shape,
      ),
      hostTool('pause_task', 'Pause a scheduled task: no runs until it is resumed.', taskId),
      hostTool(
        'resume_task',
        'Resume a paused task. It continues from now; runs missed while paused are not made up.',
        taskId,
      ),
      hostTool('cancel_task', 'Cancel a scheduled task for good.', taskId),
      // Only the admin group gets it (the host refuses any other group anyway), and even then nothing is written
      // until the owner approves: every group's agent reads global memory.
      ...(isAdmin
        ? [
            hostTool(
              'update_global_memory',
              `Propose a new text for global memory (${CONTAINER_PATHS.global}/CLAUDE.md), which every group's agent reads. Pass the complete new file, not only the change, at most ${MAX_GLOBAL_MEMORY_BYTES / 1024} KiB. It does not take effect now: the owner sees the difference in the admin chat and must approve it there first; until then every group keeps the current text. The answer gives the proposal's number.`,
              updateGlobalMemoryArgsSchema.shape,
              'Proposal sent to the owner.',
            ),
          ]
        : []),
    ],
  });
}
