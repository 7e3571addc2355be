// The agent's task tools: schedule, list, update, pause, resume and cancel, each a request the host decides on.
import { tool } from '@anthropic-ai/claude-agent-sdk';
import {
  listTasksArgsSchema,
  scheduleTaskArgsSchema,
  taskIdArgsSchema,
  updateTaskArgsSchema,
} from '../../src/protocol/ipc.js';
import type { HostAnswer, HostRequests, ToolRequest } from './host-requests.js';

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

export function createTaskTools(deps: { requests: HostRequests; isAdmin: boolean }) {
  const ask = async (request: ToolRequest) => toToolResult(await deps.requests.send(request));
  // Only the admin group may name another group; the host checks either way.
  const { group: _adminOnly, ...ownScheduleShape } = scheduleTaskArgsSchema.shape;
  const scheduleShape = deps.isAdmin ? scheduleTaskArgsSchema.shape : ownScheduleShape;
  const listShape = deps.isAdmin ? listTasksArgsSchema.shape : {};
  const options = { alwaysLoad: true };

  return [
    tool(
      'schedule_task',
      `Schedule a task: a prompt the host runs for this chat later, once or repeatedly; each run's final reply is posted to this chat. Write the prompt so it makes sense on its own. ${SCHEDULE_HELP} contextMode 'group' (default) runs in this chat's conversation; 'isolated' runs in a fresh session without the chat history (better for self-contained reports). ${PRE_CHECK_HELP}${deps.isAdmin ? " As the admin group you may pass `group` (a group folder) to schedule for another group's chat." : ''} The answer gives the task id and next run, or says what to fix.`,
      scheduleShape,
      async (args) => ask({ tool: 'schedule_task', args }),
      options,
    ),
    tool(
      'list_tasks',
      `List scheduled tasks: id, name, schedule, status, next run and last run.${deps.isAdmin ? ' As the admin group you see every group; pass `group` to see one.' : ''}`,
      listShape,
      async (args) => ask({ tool: 'list_tasks', args }),
      options,
    ),
    tool(
      'update_task',
      `Change a scheduled task; only the fields you pass change. A new schedule, kind or timezone starts over from now. ${SCHEDULE_HELP} An empty preCheck removes the pre-check.`,
      updateTaskArgsSchema.shape,
      async (args) => ask({ tool: 'update_task', args }),
      options,
    ),
    tool(
      'pause_task',
      'Pause a scheduled task: no runs until it is resumed.',
      taskIdArgsSchema.shape,
      async (args) => ask({ tool: 'pause_task', args }),
      options,
    ),
    tool(
      'resume_task',
      'Resume a paused task. It continues from now; runs missed while paused are not made up.',
      taskIdArgsSchema.shape,
      async (args) => ask({ tool: 'resume_task', args }),
      options,
    ),
    tool(
      'cancel_task',
      'Cancel a scheduled task for good.',
      taskIdArgsSchema.shape,
      async (args) => ask({ tool: 'cancel_task', args }),
      options,
    ),
  ];
}

function toToolResult(answer: HostAnswer) {
  if (answer.ok) return { content: [{ type: 'text' as const, text: answer.result ?? 'Done.' }] };
  return { content: [{ type: 'text' as const, text: `Refused: ${answer.error}` }], isError: true };
}
