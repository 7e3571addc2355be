// The dashboard's tasks page: each scheduled task, its last runs, and pause, resume, run now and cancel.
import type { Api } from '../api.js';
import { type Child, formatTime, h } from '../dom.js';
import { type Act, actionButton, type Row, table } from './parts.js';

export async function tasks(api: Api, act: Act): Promise<Child[]> {
  const tasks =
    await api.get<
      Array<{
        id: string;
        name: string;
        groupFolder: string;
        status: string;
        schedule: { kind: string; value: string; timezone: string };
        nextRunAt: number | null;
        runs: Array<{
          status: string;
          startedAt: number | null;
          endedAt: number | null;
          inputTokens: number;
          outputTokens: number;
        }>;
      }>
    >('/api/dashboard/tasks');
  const button = (label: string, request: Row) => actionButton(act, label, request);
  return [
    table(
      'Tasks',
      ['Task', 'Group', 'Schedule', 'Next run', 'Status', 'Last runs', 'Actions'],
      tasks.map((task) => [
        `${task.name} (${task.id})`,
        task.groupFolder,
        `${task.schedule.kind} ${task.schedule.value} (${task.schedule.timezone})`,
        task.nextRunAt ? formatTime(task.nextRunAt, task.schedule.timezone) : '—',
        task.status,
        h(
          'ul',
          { class: 'runs' },
          task.runs.map((run) =>
            h(
              'li',
              {},
              `${run.status}${run.startedAt && run.endedAt ? `, ${((run.endedAt - run.startedAt) / 1000).toFixed(1)} s` : ''}, ${run.inputTokens + run.outputTokens} tokens`,
            ),
          ),
        ),
        h(
          'div',
          { class: 'row-actions' },
          task.status === 'active' ? button('Pause', { op: 'task-pause', id: task.id }) : null,
          task.status === 'paused' ? button('Resume', { op: 'task-resume', id: task.id }) : null,
          task.status === 'active' || task.status === 'paused'
            ? button('Run now', { op: 'task-run-now', id: task.id })
            : null,
          task.status === 'active' || task.status === 'paused'
            ? button('Cancel', { op: 'task-cancel', id: task.id })
            : null,
        ),
      ]),
    ),
  ];
}
