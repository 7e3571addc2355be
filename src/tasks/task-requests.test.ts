import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/fake-agent-runner.js';
import { registerTestGroup } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import { ipcFileName, parseIpcFile, type TaskToolRequest } from '../protocol/ipc.js';
import { createRunIpc } from '../sandbox/ipc.js';
import { prepareRunDirs } from '../sandbox/ipc-folder.js';
import type { Group } from '../store/records.js';
import { type AuditEntry, openStore, type Store, type Task } from '../store/store.js';
import type { AgentEvent, TaskTools, ToolAnswer } from '../types.js';
import { createTaskTools } from './task-requests.js';

const NOW = Date.parse('2025-06-02T08:00:00Z');
let root: string;
let store: Store;
let tools: TaskTools;
let audits: AuditEntry[];
let changes: number;
let admin: Group;
let family: Group;
let work: Group;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'warren-task-tools-'));
  store = openStore(':memory:');
  const register = (folder: string, isAdmin = false) =>
    registerTestGroup(store, root, folder, { isAdmin, now: NOW });
  admin = register('main', true);
  family = register('family');
  work = register('work');
  audits = [];
  changes = 0;
  tools = createTaskTools({
    store,
    audit: (entry) => audits.push(entry),
    now: () => NOW,
    timezone: 'Europe/Berlin',
    onChange: () => changes++,
    log: silentLogger(),
  });
});

afterEach(() => {
  store.close();
  rmSync(root, { recursive: true, force: true });
});

let requestCount = 0;
/** A request as it arrives through the IPC folder of `from`. */
function call(from: Group, request: Omit<TaskToolRequest, 'type' | 'id'>): ToolAnswer {
  return tools.handle({ type: 'request', id: `r${++requestCount}`, ...request } as TaskToolRequest, {
    group: from,
    chat: { channel: 'fake', chatId: from.folder },
  });
}

function schedule(from: Group, args: Record<string, unknown> = {}): Task {
  const answer = call(from, {
    tool: 'schedule_task',
    args: { prompt: 'weekday briefing', scheduleKind: 'cron', schedule: '0 9 * * 1-5', ...args },
  } as Omit<TaskToolRequest, 'type' | 'id'>);
  if (!answer.ok) throw new Error(answer.error);
  const id = /^Scheduled: (\w+)/.exec(answer.result)?.[1] as string;
  return store.tasks.byId(id) as Task;
}

const denials = () => audits.filter((entry) => entry.decision === 'deny');

describe('task tools', () => {
  it("schedule a task in the group's own chat, in the owner's timezone by default", () => {
    const answer = call(family, {
      tool: 'schedule_task',
      args: {
        prompt: 'send me the pipeline briefing',
        scheduleKind: 'cron',
        schedule: '0 9 * * 1-5',
        name: 'briefing',
      },
    });
    expect(answer).toMatchObject({ ok: true });
    expect(answer.ok && answer.result).toMatch(
      /^Scheduled: \w+ “briefing” \[group family\] active: cron '0 9 \* \* 1-5' \(Europe\/Berlin\), group context; next run Tue 2025-06-03 09:00 \(Europe\/Berlin\)/,
    );
    const [task] = store.tasks.list({ groupId: family.id });
    expect(task).toMatchObject({
      groupFolder: 'family',
      chat: { channel: 'fake', chatId: 'family' },
      contextMode: 'group',
      nextRunAt: Date.parse('2025-06-03T07:00:00Z'), // it is 10:00 in Berlin now
      createdBy: 'agent:family',
    });
    expect(changes).toBe(1);
    expect(audits.at(-1)).toMatchObject({
      action: 'task-schedule',
      decision: 'allow',
      groupFolder: 'family',
    });
  });

  it('answer a bad cron expression, timezone or past time with a clear error and store nothing', () => {
    const attempts = [
      { scheduleKind: 'cron', schedule: '0 25 * * *' },
      { scheduleKind: 'cron', schedule: '0 9 * * *', timezone: 'Europe/Atlantis' },
      { scheduleKind: 'once', schedule: '2025-06-01T09:00' },
      { scheduleKind: 'interval', schedule: 'fortnightly' },
    ];
    const errors = attempts.map((args) => {
      const answer = call(family, { tool: 'schedule_task', args: { prompt: 'x', ...args } } as Omit<
        TaskToolRequest,
        'type' | 'id'
      >);
      return answer.ok ? 'accepted' : answer.error;
    });
    expect(errors[0]).toMatch(/invalid cron expression '0 25 \* \* \*'.*hour/);
    expect(errors[1]).toMatch(/unknown timezone 'Europe\/Atlantis'/);
    expect(errors[2]).toMatch(/already passed: it is now Mon 2025-06-02 10:00 in Europe\/Berlin/);
    expect(errors[3]).toMatch(/invalid interval 'fortnightly'/);
    expect(store.tasks.list({ isFinishedIncluded: true })).toEqual([]);
    expect(changes).toBe(0);
  });

  it('a group cannot schedule for another group', () => {
    const answer = call(family, {
      tool: 'schedule_task',
      args: { prompt: 'x', scheduleKind: 'interval', schedule: '1h', group: 'work' },
    });
    expect(answer).toEqual({ ok: false, error: 'a group may only schedule tasks for itself' });
    expect(store.tasks.list({ isFinishedIncluded: true })).toEqual([]);
    expect(denials()).toEqual([
      expect.objectContaining({ groupFolder: 'family', actor: 'agent:family', action: 'task-schedule' }),
    ]);
  });

  it("a group can neither see nor change another group's task, and every attempt is audited", () => {
    const workTask = schedule(work);
    expect(call(family, { tool: 'list_tasks', args: {} })).toEqual({
      ok: true,
      result: 'No active or paused tasks.',
    });
    expect(call(family, { tool: 'list_tasks', args: { group: 'work' } })).toMatchObject({ ok: false });
    for (const tool of ['pause_task', 'resume_task', 'cancel_task'] as const) {
      expect(call(family, { tool, args: { taskId: workTask.id } })).toEqual({
        ok: false,
        error: `no task ${workTask.id} in this group (list_tasks shows them)`,
      });
    }
    expect(
      call(family, { tool: 'update_task', args: { taskId: workTask.id, prompt: 'leak the secrets' } }),
    ).toMatchObject({ ok: false });
    // Same answer as for a task that does not exist: the other group's task is not even confirmed.
    expect(call(family, { tool: 'pause_task', args: { taskId: 'nosuchtask' } })).toEqual({
      ok: false,
      error: 'no task nosuchtask in this group (list_tasks shows them)',
    });
    expect(store.tasks.byId(workTask.id)).toEqual(workTask);
    expect(denials().map((entry) => entry.action)).toEqual([
      'task-list',
      'task-pause',
      'task-resume',
      'task-cancel',
      'task-update',
    ]);
    expect(
      denials().every((entry) => entry.groupFolder === 'family' && entry.detail.targetGroup === 'work'),
    ).toBe(true);
  });

  it("the admin group may list and change any group's tasks, audited as cross-group", () => {
    const workTask = schedule(work);
    schedule(family);
    const list = call(admin, { tool: 'list_tasks', args: {} });
    expect(list.ok && list.result.split('\n')).toHaveLength(2);
    expect(call(admin, { tool: 'pause_task', args: { taskId: workTask.id } })).toMatchObject({ ok: true });
    expect(store.tasks.byId(workTask.id)?.status).toBe('paused');
    expect(audits).toContainEqual(
      expect.objectContaining({
        groupFolder: 'main',
        action: 'task-pause',
        decision: 'allow',
        detail: { taskId: workTask.id, targetGroup: 'work', crossGroup: true },
      }),
    );
    const forWork = call(admin, {
      tool: 'schedule_task',
      args: { prompt: 'weekly review', scheduleKind: 'cron', schedule: '0 17 * * 5', group: 'work' },
    });
    expect(forWork.ok && forWork.result).toMatch(/\[group work\]/);
    const created = store.tasks.list({ groupId: work.id }).find((task) => task.prompt === 'weekly review');
    expect(created?.chat).toEqual({ channel: 'fake', chatId: 'work' });
  });

  it('a group removed while its agent runs can no longer touch any task', () => {
    const workTask = schedule(work);
    store.groups.remove('main');
    expect(call(admin, { tool: 'pause_task', args: { taskId: workTask.id } })).toEqual({
      ok: false,
      error: 'this group is no longer registered',
    });
    expect(store.tasks.byId(workTask.id)?.status).toBe('active');
  });

  it('update changes only what is given; a new schedule starts from now', () => {
    const task = schedule(family);
    const answer = call(family, {
      tool: 'update_task',
      args: { taskId: task.id, scheduleKind: 'interval', schedule: '2h', preCheck: 'exit 0' },
    });
    expect(answer).toMatchObject({ ok: true });
    expect(store.tasks.byId(task.id)).toMatchObject({
      prompt: 'weekday briefing',
      schedule: { kind: 'interval', value: String(7_200_000) },
      preCheck: { script: 'exit 0', timeoutMs: 60_000 },
      nextRunAt: NOW + 7_200_000,
    });
    call(family, { tool: 'update_task', args: { taskId: task.id, preCheck: '' } });
    expect(store.tasks.byId(task.id)?.preCheck).toBeNull();
    expect(
      call(family, { tool: 'update_task', args: { taskId: task.id, scheduleKind: 'once' } }),
    ).toMatchObject({
      ok: false,
    });
  });

  it('pause, resume and cancel follow the task state', () => {
    const task = schedule(family);
    expect(call(family, { tool: 'resume_task', args: { taskId: task.id } })).toMatchObject({ ok: false });
    expect(call(family, { tool: 'pause_task', args: { taskId: task.id } })).toMatchObject({ ok: true });
    expect(call(family, { tool: 'resume_task', args: { taskId: task.id } })).toMatchObject({ ok: true });
    expect(call(family, { tool: 'cancel_task', args: { taskId: task.id } })).toMatchObject({ ok: true });
    expect(call(family, { tool: 'pause_task', args: { taskId: task.id } })).toMatchObject({ ok: false });
    expect(store.tasks.byId(task.id)?.status).toBe('cancelled');
  });

  it('a group holds at most 50 live tasks', () => {
    for (let index = 0; index < 50; index++) schedule(family);
    expect(() => schedule(family)).toThrow(/already has 50 tasks/);
  });
});

describe('task tools through the IPC folder', () => {
  it('are authorized by the folder the request came from; a field naming another group changes nothing', async () => {
    const workTask = schedule(work);
    const runDir = path.join(root, 'ipc', 'family');
    const { inputDir, outputDir } = prepareRunDirs(runDir, { uid: 1000, gid: 1000 });
    const ipc = createRunIpc({
      runDir,
      group: family,
      chat: { channel: 'fake', chatId: 'family' },
      store,
      audit: (entry) => audits.push(entry),
      log: silentLogger(),
      now: () => NOW,
      onEvent: () => {},
      taskTools: tools,
      fallbackScanMs: 60_000,
    });
    const requests = [
      { type: 'request', id: 'q1', tool: 'cancel_task', args: { taskId: workTask.id, group: 'work' } },
      { type: 'request', id: 'q2', tool: 'delete_all_tasks', args: {} },
      { type: 'request', id: 'q3', tool: 'list_tasks', args: {} },
    ];
    requests.forEach((request, index) => {
      writeFileSync(path.join(outputDir, ipcFileName(index + 1, 'x')), JSON.stringify(request));
    });
    await ipc.scan();
    ipc.close();
    await eventually(() => readdirSync(inputDir).length === 3);
    const answers = readdirSync(inputDir)
      .sort()
      .map((name) => parseIpcFile('input', readFileSync(path.join(inputDir, name), 'utf8')))
      .map((parsed) => (parsed.ok ? parsed.value : null));
    expect(answers).toEqual([
      {
        type: 'response',
        id: 'q1',
        ok: false,
        error: `no task ${workTask.id} in this group (list_tasks shows them)`,
      },
      expect.objectContaining({
        type: 'response',
        id: 'q2',
        ok: false,
        error: expect.stringMatching(/^invalid request/),
      }),
      { type: 'response', id: 'q3', ok: true, result: 'No active or paused tasks.' },
    ]);
    expect(store.tasks.byId(workTask.id)?.status).toBe('active');
  });

  it('hand a task prompt with its pre-check to the runner, and pass on check results only for prompts it was given', async () => {
    const runDir = path.join(root, 'ipc', 'family');
    const { inputDir, outputDir } = prepareRunDirs(runDir, { uid: 1000, gid: 1000 });
    const events: AgentEvent[] = [];
    const ipc = createRunIpc({
      runDir,
      group: family,
      chat: { channel: 'fake', chatId: 'family' },
      store,
      audit: (entry) => audits.push(entry),
      log: silentLogger(),
      now: () => NOW,
      onEvent: (event) => events.push(event),
      fallbackScanMs: 60_000,
    });
    expect(ipc.writeTask('t1', 'the task', { script: 'echo \'{"run": false}\'', timeoutMs: 5_000 })).toBe(
      true,
    );
    const [written] = readdirSync(inputDir);
    expect(parseIpcFile('input', readFileSync(path.join(inputDir, written as string), 'utf8'))).toEqual({
      ok: true,
      value: {
        type: 'task',
        batchId: 't1',
        text: 'the task',
        preCheck: { script: 'echo \'{"run": false}\'', timeoutMs: 5_000 },
      },
    });
    const checks = [
      { type: 'pre-check', batchId: 'forged', outcome: 'skip' },
      { type: 'pre-check', batchId: 't1', outcome: 'skip', detail: 'nothing new' },
    ];
    checks.forEach((file, index) => {
      writeFileSync(path.join(outputDir, ipcFileName(index + 1, 'x')), JSON.stringify(file));
    });
    await ipc.scan();
    ipc.close();
    expect(events).toEqual([
      { type: 'pre-check', id: 'pre-check:t1', batchId: 't1', outcome: 'skip', detail: 'nothing new' },
    ]);
    expect(denials()).toEqual([expect.objectContaining({ action: 'ipc-pre-check', groupFolder: 'family' })]);
  });
});
