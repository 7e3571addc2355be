// `warren tasks`: what will run when and what ran, and pause / resume / cancel / run-now from the terminal.
import type { Command } from 'commander';
import { formatInstant } from '../queue/prompt.js';
import type { Store, Task, TaskRun } from '../store/store.js';
import { describeSchedule } from '../tasks/schedule.js';
import { describeNextRun, relative } from '../tasks/tasks.js';
import { performFromCli } from './owner.js';
import { type Cli, type CliHost, type CliOutcome, type OwnerContext, runToOutcome } from './program.js';

// CliOutcome lives in program.ts now; re-exported for the modules that import it from here.
export type { CliOutcome } from './program.js';

/** Pause, resume, cancel and run-now go through the owner's operations (authorized and audited there). */
export type TasksCliContext = OwnerContext;

function duration(run: TaskRun): string {
  if (run.startedAt === null || run.endedAt === null) return '-';
  const ms = run.endedAt - run.startedAt;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

const oneLine = (text: string | null, max: number) => {
  const line = (text ?? '').replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

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
      describeNextRun(task, store, now),
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
    `  next run   ${describeNextRun(task, store, now)}`,
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

/** Runs `warren tasks ARGS` over a given store and returns what it would print, with its exit code. */
export function runTasksCommand(args: string[], context: TasksCliContext): Promise<CliOutcome> {
  return runToOutcome(
    (program, cli) => registerTasks(program, cli, { withOwnerOps: async (fn) => fn(context) }),
    ['tasks', ...args],
  );
}

export function registerTasks(program: Command, cli: Cli, host: Pick<CliHost, 'withOwnerOps'>): void {
  const tasks = program
    .command('tasks')
    .description('scheduled tasks: what runs when, and how the last run went');
  tasks
    .command('list', { isDefault: true })
    .description('the tasks, with their next and last run')
    .option('--group <folder>', "only this group's tasks")
    .option('--all', 'also the finished and cancelled ones')
    .action(
      cli.action((options: { group?: string; all?: boolean }) =>
        host.withOwnerOps(({ store, now }): CliOutcome => {
          let groupId: number | undefined;
          if (options.group !== undefined) {
            const group = store.groups.byFolder(options.group);
            if (!group) return { code: 1, text: `no group '${options.group}' (see \`warren groups list\`)` };
            groupId = group.id;
          }
          const filter = {
            ...(groupId === undefined ? {} : { groupId }),
            isFinishedIncluded: options.all ?? false,
          };
          return { code: 0, text: formatTaskList(store, now, filter) };
        }),
      ),
    );
  const changes = {
    show: 'one task with its recent runs (duration, status, tokens, result)',
    pause: 'pause a task (a running Warren picks it up at once)',
    resume: 'resume a paused task',
    cancel: 'cancel a task for good',
    'run-now': 'run a task now, outside its schedule',
  };
  for (const [action, description] of Object.entries(changes) as [keyof typeof changes, string][]) {
    tasks
      .command(action)
      .description(description)
      .argument('<id>', 'the task id (see `warren tasks list --all`)')
      .action(
        cli.action((id: string) =>
          host.withOwnerOps(({ store, ops, now }) => {
            const task = store.tasks.byId(id);
            if (!task) return { code: 1, text: `no task '${id}' (see \`warren tasks list --all\`)` };
            if (action === 'show') return { code: 0, text: formatTaskDetails(store, task, now) };
            // A running host re-arms its scheduler at once (owner-ops signals it); one that is not running finds
            // the change when it starts.
            return performFromCli(ops, { op: `task-${action}`, id });
          }),
        ),
      );
  }
}
