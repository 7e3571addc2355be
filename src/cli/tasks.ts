// `warren tasks`: what will run when and what ran, and pause / resume / cancel / run-now from the terminal.
import { parseArgs } from 'node:util';
import { formatInstant } from '../queue/prompt.js';
import type { AuditEntry, Store, Task, TaskRun } from '../store/store.js';
import { describeSchedule } from '../tasks/schedule.js';
import { createTaskOps } from '../tasks/tasks.js';
import { signalHost } from './host-signal.js';

export interface TasksCliContext {
  store: Store;
  dataDir: string;
  now: number;
  /** The owner's timezone (times of runs are shown in their task's own timezone). */
  timezone: string;
  audit(entry: AuditEntry): void;
}

/** code: 0 done, 1 refused (e.g. the task is not paused), 2 usage error. */
export interface CliOutcome {
  code: number;
  text: string;
}

export const TASKS_USAGE = `usage: warren tasks [list [--group FOLDER] [--all]]
       warren tasks show ID
       warren tasks pause|resume|cancel|run-now ID`;

/** "in 2h", "3m ago". */
function relative(at: number, now: number): string {
  const seconds = Math.round((at - now) / 1000);
  const size = Math.abs(seconds);
  const text =
    size < 90
      ? `${size}s`
      : size < 5400
        ? `${Math.round(size / 60)}m`
        : size < 172_800
          ? `${Math.round(size / 3600)}h`
          : `${Math.round(size / 86_400)}d`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

function duration(run: TaskRun): string {
  if (run.startedAt === null || run.endedAt === null) return '-';
  const ms = run.endedAt - run.startedAt;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

const oneLine = (text: string | null, max: number) => {
  const line = (text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

function nextRunText(task: Task, store: Store, now: number): string {
  const open = store.tasks
    .runsOf(task.id, 1)
    .find((run) => run.status === 'queued' || run.status === 'running');
  if (open) return open.status === 'running' ? 'running now' : 'queued now';
  if (task.nextRunAt === null || task.status !== 'active') return '-';
  return `${formatInstant(task.nextRunAt, task.schedule.timezone)} (${relative(task.nextRunAt, now)})`;
}

export function formatTaskList(
  store: Store,
  now: number,
  filter: { groupId?: number; isFinishedIncluded?: boolean },
) {
  const tasks = store.tasks.list(filter);
  if (tasks.length === 0)
    return 'No tasks. Agents create them when you ask in chat ("every weekday at 9, …").';
  const rows = tasks.map((task) => {
    const last = store.tasks.lastFinished(task.id);
    const lastText = last ? `${last.status} ${relative(last.endedAt ?? last.createdAt, now)}` : '-';
    return [
      task.id,
      task.groupFolder,
      task.status,
      describeSchedule(task.schedule),
      nextRunText(task, store, now),
      lastText,
    ];
  });
  const header = ['ID', 'GROUP', 'STATUS', 'SCHEDULE', 'NEXT RUN', 'LAST RUN'];
  const widths = header.map((title, index) =>
    Math.max(title.length, ...rows.map((row) => (row[index] as string).length)),
  );
  const line = (cells: string[]) =>
    `  ${cells.map((cell, index) => cell.padEnd(widths[index] as number)).join('  ')}`.trimEnd();
  return [`Tasks (${tasks.length}):`, line(header), ...rows.map(line)].join('\n');
}

export function formatTaskDetails(store: Store, task: Task, now: number): string {
  const zone = task.schedule.timezone;
  const runs = store.tasks.runsOf(task.id, 10);
  const lines = [
    `Task ${task.id} “${task.name}”`,
    `  group      ${task.groupFolder} (results to ${task.chat.channel}:${task.chat.chatId})`,
    `  status     ${task.status}${task.statusReason ? ` (${task.statusReason})` : ''}`,
    `  schedule   ${describeSchedule(task.schedule)}`,
    `  context    ${task.contextMode === 'isolated' ? 'isolated (a fresh session each run)' : "the group's conversation"}`,
    `  pre-check  ${task.preCheck ? `${Math.round(task.preCheck.timeoutMs / 1000)} s limit: ${oneLine(task.preCheck.script, 80)}` : 'none'}`,
    `  next run   ${nextRunText(task, store, now)}`,
    `  created    ${formatInstant(task.createdAt, zone)} by ${task.createdBy || 'unknown'}`,
    `  prompt     ${oneLine(task.prompt, 200)}`,
    '',
    runs.length === 0 ? 'No runs yet.' : `Recent runs (newest first, times in ${zone}):`,
  ];
  for (const run of runs) {
    const tokens =
      run.inputTokens + run.outputTokens > 0 ? `${run.inputTokens}/${run.outputTokens} tokens` : '';
    const outcome = oneLine(run.error ?? run.result, 80);
    lines.push(
      `  ${formatInstant(run.scheduledFor, zone)}  ${run.trigger}${run.attempt > 1 ? ` #${run.attempt}` : ''}  ` +
        `${run.status.padEnd(11)} ${duration(run).padStart(6)}  ${tokens}${tokens && outcome ? '  ' : ''}${outcome}`,
    );
  }
  return lines.join('\n');
}

export function runTasksCommand(args: string[], context: TasksCliContext): CliOutcome {
  const { store, now } = context;
  const [action = 'list', ...rest] = args;
  if (action === 'list') {
    const { values } = parseArgs({
      args: rest,
      options: { group: { type: 'string' }, all: { type: 'boolean', default: false } },
    });
    let groupId: number | undefined;
    if (values.group !== undefined) {
      const group = store.groups.byFolder(values.group);
      if (!group) return { code: 2, text: `no group '${values.group}' (see \`warren groups list\`)` };
      groupId = group.id;
    }
    return {
      code: 0,
      text: formatTaskList(store, now, {
        ...(groupId === undefined ? {} : { groupId }),
        isFinishedIncluded: values.all ?? false,
      }),
    };
  }
  const id = rest[0];
  if (!['show', 'pause', 'resume', 'cancel', 'run-now'].includes(action) || !id || rest.length > 1) {
    return { code: 2, text: TASKS_USAGE };
  }
  const task = store.tasks.byId(id);
  if (!task) return { code: 1, text: `no task '${id}' (see \`warren tasks list --all\`)` };
  if (action === 'show') return { code: 0, text: formatTaskDetails(store, task, now) };

  const ops = createTaskOps({ store, now: () => now, defaultTimezone: context.timezone });
  const result =
    action === 'pause'
      ? ops.pause(task, 'paused from the command line')
      : action === 'resume'
        ? ops.resume(task)
        : action === 'cancel'
          ? ops.cancel(task)
          : ops.runNow(task);
  context.audit({
    groupFolder: task.groupFolder,
    actor: 'cli',
    action: `task-${action}`,
    decision: result.ok ? 'allow' : 'deny',
    detail: { taskId: task.id, ...(result.ok ? {} : { reason: result.error }) },
  });
  if (!result.ok) return { code: 1, text: result.error };
  // A running host re-arms its scheduler now; one that is not running finds the change when it starts.
  signalHost(context.dataDir, now);
  const after = store.tasks.byId(task.id) as Task;
  const done = {
    pause: `Paused task ${task.id}.`,
    resume: `Resumed task ${task.id}; next run ${nextRunText(after, store, now)}.`,
    cancel: `Cancelled task ${task.id}.`,
    'run-now': `Queued a run of task ${task.id} now; \`warren tasks show ${task.id}\` shows how it went.`,
  }[action as 'pause' | 'resume' | 'cancel' | 'run-now'];
  return { code: 0, text: done };
}
