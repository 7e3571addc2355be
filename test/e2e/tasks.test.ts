// End to end: scheduled tasks. An agent schedules a task through its tool, the task runs on time in the group's
// container and its result reaches the chat; a pre-check runs in the container and can spare the model call.
// Real Docker, real agent image (real Claude Agent SDK), credential proxy, fake model API.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Task, TaskRun } from '../../src/store/store.js';
import { createTaskOps } from '../../src/tasks/tasks.js';
import type { FakeRequest } from '../fake-model-api.js';
import { type E2eWarren, startE2eWarren, toolResults, userTexts, waitFor } from './e2e-harness.js';

let host: E2eWarren;

beforeAll(async () => {
  host = await startE2eWarren();
}, 120_000);

afterAll(async () => {
  await host?.stop();
});

const lastUserText = (request: FakeRequest) => userTexts(request).at(-1) ?? '';
const runsOf = (task: Task): TaskRun[] => host.warren.store.tasks.runsOf(task.id, 10).reverse();

/** A task created the way `warren tasks` or the tool would, due in a moment. */
function createTask(folder: string, options: { preCheck: string; dueInMs: number }): Task {
  const group = host.warren.store.groups.byFolder(folder) ?? host.addGroup(folder);
  const ops = createTaskOps({ store: host.warren.store, now: Date.now, defaultTimezone: 'UTC' });
  const created = ops.create({
    group,
    chat: { channel: 'fake', chatId: folder },
    prompt: 'Tell me about new deals.',
    scheduleKind: 'once',
    schedule: new Date(Date.now() + options.dueInMs).toISOString(),
    contextMode: 'isolated',
    preCheck: options.preCheck,
    createdBy: 'test',
  });
  if (!created.ok) throw new Error(created.error);
  host.warren.scheduler.kick();
  return created.value;
}

describe('scheduled tasks', () => {
  it("a chat message asks for a task due in a few seconds; it runs in the group's container and its result arrives in the chat", async () => {
    host.addGroup('sales');
    const before = host.fake.requests.length;
    let scheduledAt = 0;
    host.fake.script(
      () => {
        scheduledAt = Date.now();
        return {
          toolUse: {
            name: 'mcp__warren__schedule_task',
            input: {
              prompt: 'Send the pipeline briefing.',
              scheduleKind: 'once',
              schedule: new Date(scheduledAt + 4_000).toISOString(),
              name: 'pipeline briefing',
            },
          },
        };
      },
      { text: 'Done: the briefing comes in a few seconds.' },
      (request) => ({
        text: lastUserText(request).includes('<scheduled_task')
          ? 'Pipeline briefing: 3 deals closing this week.'
          : 'unexpected prompt',
      }),
    );
    host.channel.receive({ chatId: 'sales', text: 'In a few seconds, send me the pipeline briefing.' });
    await waitFor(
      () => host.channel.textsTo('sales').includes('Done: the briefing comes in a few seconds.'),
      'ack',
      90_000,
    );
    const toolAnswer = toolResults(host.fake.requests[before + 1] as FakeRequest).join('\n');
    expect(toolAnswer).toMatch(/^Scheduled: \w+ “pipeline briefing” \[group sales\] active: once at /);
    const [task] = host.warren.store.tasks.list({ isFinishedIncluded: true });
    expect(task).toMatchObject({
      groupFolder: 'sales',
      chat: { channel: 'fake', chatId: 'sales' },
      createdBy: 'agent:sales',
    });

    await waitFor(
      () => host.channel.textsTo('sales').includes('Pipeline briefing: 3 deals closing this week.'),
      'the task result in the chat',
      60_000,
    );
    const due = Number(task?.schedule.value);
    console.log(`[e2e timing] task due → result in chat ${Date.now() - due} ms`);
    const taskRequest = host.fake.requests[before + 2] as FakeRequest;
    expect(lastUserText(taskRequest)).toContain('Send the pipeline briefing.');
    // 'group' context: it joined the group's running agent, in the same container and conversation.
    expect(userTexts(taskRequest).join('\n')).toContain('In a few seconds, send me the pipeline briefing.');
    expect(host.starts.filter((spec) => spec.groupFolder === 'sales')).toHaveLength(1);
    const runs = runsOf(task as Task);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      status: 'succeeded',
      result: 'Pipeline briefing: 3 deals closing this week.',
    });
    expect(runs[0]?.startedAt).toBeGreaterThanOrEqual(due);
    expect((runs[0]?.inputTokens ?? 0) + (runs[0]?.outputTokens ?? 0)).toBeGreaterThan(0);
    expect(host.warren.store.tasks.byId(task?.id as string)?.status).toBe('done');
  }, 150_000);

  it('a task whose pre-check says "nothing to do" makes no model request', async () => {
    const before = host.fake.requests.length;
    const task = createTask('ops', {
      dueInMs: 1_500,
      // Runs in the container: the marker lands in the group's folder (there is no /workspace on the host).
      preCheck: 'echo "checked by $(id -u)" > /workspace/group/pre-check-ran; echo \'{"run": false}\'',
    });
    await waitFor(() => runsOf(task)[0]?.status === 'skipped', 'a skipped run', 90_000);
    const [run] = runsOf(task);
    console.log(
      `[e2e timing] pre-check skip: run took ${(run?.endedAt ?? 0) - (run?.startedAt ?? 0)} ms (container start included)`,
    );
    expect(readFileSync(path.join(host.dataDir, 'groups', 'ops', 'pre-check-ran'), 'utf8')).toBe(
      'checked by 1000\n',
    );
    expect(existsSync('/workspace/group/pre-check-ran')).toBe(false);
    expect(run).toMatchObject({
      inputTokens: 0,
      outputTokens: 0,
      result: 'the pre-check found nothing to do',
    });
    // The agent started for the check stops by itself; nothing reached the model or the chat.
    const deadline = Date.now() + 30_000;
    while (
      (await host.runtime.listOwned(host.installId)).some((c) => c.groupFolder === 'ops' && c.isRunning)
    ) {
      if (Date.now() > deadline) throw new Error('the pre-check container did not stop');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(host.fake.requests.length).toBe(before);
    expect(host.channel.textsTo('ops')).toEqual([]);
  }, 120_000);

  it('a pre-check that says run hands its data to the model, whose answer reaches the chat', async () => {
    const before = host.fake.requests.length;
    host.fake.script((request) => ({
      text: lastUserText(request).includes('"newDeals":2')
        ? 'Two new deals: Acme and Globex.'
        : 'no data seen',
    }));
    const task = createTask('deals', {
      dueInMs: 1_000,
      preCheck: 'echo \'{"run": true, "data": {"newDeals": 2, "names": ["Acme", "Globex"]}}\'',
    });
    await waitFor(() => host.channel.textsTo('deals').length > 0, 'the task result', 90_000);
    expect(host.channel.textsTo('deals')).toEqual(['Two new deals: Acme and Globex.']);
    expect(host.fake.requests.length).toBe(before + 1);
    const prompt = lastUserText(host.fake.requests[before] as FakeRequest);
    expect(prompt).toContain('<pre_check_data>');
    expect(prompt).toContain('fresh session');
    await waitFor(() => runsOf(task)[0]?.status === 'succeeded', 'a succeeded run', 30_000);
  }, 120_000);
});
