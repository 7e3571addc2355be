// The agent's task tools on the host: authorized by the IPC folder a request came from, validated, audited.

import type { Logger } from '../log.js';
import type { TaskToolRequest } from '../protocol/ipc.js';
import { formatInstant } from '../queue/prompt.js';
import type { ChatAddress, Group } from '../store/records.js';
import type { AuditEntry, Store, Task } from '../store/store.js';
import type { TaskTools, ToolAnswer } from '../types.js';
import { describeSchedule } from './schedule.js';
import { createTaskOps, type TaskResult } from './tasks.js';

export interface TaskToolsDeps {
  store: Store;
  audit(entry: AuditEntry): void;
  now(): number;
  /** The owner's timezone, the default for new tasks. */
  timezone: string;
  /** A task was created or changed: the scheduler re-arms. Must not throw. */
  onChange(): void;
  log: Logger;
}

/** A task for the model: one line with what it needs to refer to it again. */
export function describeTask(task: Task, store: Store): string {
  const zone = task.schedule.timezone;
  const next = task.nextRunAt === null ? 'none' : `${formatInstant(task.nextRunAt, zone)} (${zone})`;
  const last = store.tasks.lastFinished(task.id);
  const lastText = last
    ? `; last run ${last.status}${last.endedAt ? ` at ${formatInstant(last.endedAt, zone)}` : ''}`
    : '';
  return (
    `${task.id} “${task.name}” [group ${task.groupFolder}] ${task.status}${task.statusReason ? ` (${task.statusReason})` : ''}: ` +
    `${describeSchedule(task.schedule)}, ${task.contextMode} context${task.preCheck ? ', with a pre-check' : ''}; ` +
    `next run ${next}${lastText}`
  );
}

type Detail = Record<string, unknown>;
type ScheduleRequest = Extract<TaskToolRequest, { tool: 'schedule_task' }>;

export function createTaskTools(deps: TaskToolsDeps): TaskTools {
  const { store } = deps;
  const log = deps.log.child({ module: 'task-tools' });
  const ops = createTaskOps({ store, now: deps.now, defaultTimezone: deps.timezone });

  function audit(group: Group, action: string, decision: 'allow' | 'deny', detail: Detail): void {
    deps.audit({ groupFolder: group.folder, actor: `agent:${group.folder}`, action, decision, detail });
  }

  function deny(group: Group, action: string, error: string, detail: Detail): ToolAnswer {
    log.warn({ group: group.folder, action, ...detail, reason: error }, 'task tool denied');
    audit(group, action, 'deny', { ...detail, reason: error });
    return { ok: false, error };
  }

  /** A task this group may touch: its own, or any for the admin group (audited as cross-group). */
  function ownTask(group: Group, action: string, taskId: string): { task: Task } | { answer: ToolAnswer } {
    const task = store.tasks.byId(taskId);
    if (task && task.groupId === group.id) return { task };
    if (task && group.isAdmin) {
      audit(group, action, 'allow', { taskId, targetGroup: task.groupFolder, crossGroup: true });
      return { task };
    }
    // The same answer whether the task is missing or another group's: its existence is not this group's business.
    const error = `no task ${taskId} in this group (list_tasks shows them)`;
    if (!task) return { answer: { ok: false, error } };
    return { answer: deny(group, action, error, { taskId, targetGroup: task.groupFolder }) };
  }

  /** verb: what was done, for the model ("Paused: <the task>."). */
  function changed(group: Group, action: string, result: TaskResult<Task>, verb: string): ToolAnswer {
    if (!result.ok) return result;
    audit(group, action, 'allow', { taskId: result.value.id, targetGroup: result.value.groupFolder });
    deps.onChange();
    return { ok: true, result: `${verb}: ${describeTask(result.value, store)}.` };
  }

  function schedule(group: Group, door: ChatAddress, { args }: ScheduleRequest): ToolAnswer {
    let target = group;
    let chat = door;
    if (args.group !== undefined && args.group !== group.folder) {
      if (!group.isAdmin) {
        const reason = 'a group may only schedule tasks for itself';
        return deny(group, 'task-schedule', reason, { targetGroup: args.group });
      }
      const other = store.groups.byFolder(args.group);
      const otherChat = other ? store.chats.ofGroup(other.id)[0] : undefined;
      if (!other || !otherChat)
        return { ok: false, error: `no registered group '${args.group}' with a chat` };
      target = other;
      chat = { channel: otherChat.channel, chatId: otherChat.chatId };
    }
    const created = ops.create({ ...args, group: target, chat, createdBy: `agent:${group.folder}` });
    if (created.ok && target.id !== group.id) {
      const detail = { taskId: created.value.id, targetGroup: target.folder, crossGroup: true };
      audit(group, 'task-schedule', 'allow', detail);
    }
    return changed(group, 'task-schedule', created, 'Scheduled');
  }

  function list(group: Group, requested: string | undefined): ToolAnswer {
    let groupId: number | undefined = group.id;
    if (requested !== undefined && requested !== group.folder) {
      if (!group.isAdmin) {
        return deny(group, 'task-list', 'a group may only list its own tasks', { targetGroup: requested });
      }
      const other = store.groups.byFolder(requested);
      if (!other) return { ok: false, error: `no group '${requested}'` };
      audit(group, 'task-list', 'allow', { targetGroup: requested, crossGroup: true });
      groupId = other.id;
    } else if (requested === undefined && group.isAdmin) {
      groupId = undefined; // the admin group sees every group's tasks
    }
    const tasks = store.tasks.list({ groupId });
    if (tasks.length === 0) return { ok: true, result: 'No active or paused tasks.' };
    return { ok: true, result: tasks.map((task) => `- ${describeTask(task, store)}`).join('\n') };
  }

  function dispatch(group: Group, door: { chat: ChatAddress }, request: TaskToolRequest): ToolAnswer {
    if (request.tool === 'schedule_task') return schedule(group, door.chat, request);
    if (request.tool === 'list_tasks') return list(group, request.args.group);
    const action = `task-${request.tool.replace('_task', '')}`;
    const found = ownTask(group, action, request.args.taskId);
    if ('answer' in found) return found.answer;
    switch (request.tool) {
      case 'pause_task':
        return changed(group, action, ops.pause(found.task), 'Paused');
      case 'resume_task':
        return changed(group, action, ops.resume(found.task), 'Resumed');
      case 'cancel_task':
        return changed(group, action, ops.cancel(found.task), 'Cancelled');
      case 'update_task': {
        const { taskId: _taskId, ...changes } = request.args;
        return changed(group, action, ops.update(found.task, changes), 'Updated');
      }
    }
  }

  return {
    handle(request, door) {
      try {
        // Read fresh: a group demoted or removed while its agent runs loses its privileges at once.
        const group = store.groups.byFolder(door.group.folder);
        if (!group) return { ok: false, error: 'this group is no longer registered' };
        return dispatch(group, door, request);
      } catch (error) {
        log.error({ err: error, group: door.group.folder, tool: request.tool }, 'task tool failed');
        return { ok: false, error: 'the host could not handle the request' };
      }
    },
  };
}
