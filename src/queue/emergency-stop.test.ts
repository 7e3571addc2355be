// The owner's emergency stop (issue 16): every agent stops at once, nothing starts while it holds, new messages and
// scheduled runs are kept, and lifting it lets the held work go on, nothing lost. Real host and store, fake agents.
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner } from '../../test/fake-agent-runner.js';
import { startTestWarren, statusesOf, type TestWarren, tempDir } from '../../test/harness.js';
import { databasePath } from '../app.js';
import { createCliOwnerOps } from '../cli/owner.js';
import { openStore } from '../store/store.js';
import { createTaskOps } from '../tasks/tasks.js';

let harness: TestWarren | null = null;
afterEach(async () => {
  await harness?.stop();
  harness = null;
});

const cli = { kind: 'cli' } as const;
const settle = () => new Promise((resolve) => setTimeout(resolve, 60));

describe('the emergency stop', () => {
  it('stops every running agent, holds new messages and task runs, and /resume lets them all go on', async () => {
    harness = await startTestWarren();
    const h = harness;
    for (const folder of ['sales', 'family']) {
      h.addGroup(folder);
      h.channel.receive({ chatId: folder, text: `a long question for ${folder}` });
    }
    await h.runner.waitForSessions(2);
    const stop = await h.warren.ownerOps.perform({ op: 'emergency-stop' }, cli);
    expect(stop.ok).toBe(true);
    expect(stop.text).toMatch(
      /^🛑 Emergency stop: stopped the agents of (sales, family|family, sales)\. Nothing starts/,
    );
    await eventually(
      () => h.runner.sessions.every((session) => session.isClosed),
      2000,
      'every agent stopped',
    );
    for (const session of h.runner.sessions)
      expect(session.stopReasons).toEqual(['the owner pulled the emergency stop']);

    // Held: a new message is stored and starts nothing; a task run comes due and waits; the cut-short
    // questions are back to pending, with no attempt spent and no notice.
    h.channel.receive({ chatId: 'sales', text: 'are you there?' });
    const tasks = createTaskOps({ store: h.warren.store, now: Date.now, defaultTimezone: 'UTC' });
    const group = h.warren.store.groups.byFolder('family');
    if (!group) throw new Error('no group');
    const created = tasks.create({
      group,
      chat: { channel: 'fake', chatId: 'family' },
      prompt: 'the briefing',
      scheduleKind: 'interval',
      schedule: '1h',
      createdBy: 'test',
    });
    if (!created.ok) throw new Error(created.error);
    expect(tasks.runNow(created.value).ok).toBe(true);
    h.warren.scheduler.kick();
    await settle();
    expect(h.runner.sessions).toHaveLength(2);
    expect(statusesOf(h, 'sales')).toEqual(['pending', 'pending']);
    expect(statusesOf(h, 'family')).toEqual(['pending']);
    expect(h.warren.store.tasks.runsOf(created.value.id, 5).map((run) => run.status)).toEqual(['queued']);
    expect(h.channel.textsTo('sales')).toEqual([]);
    expect((await h.warren.ownerOps.perform({ op: 'emergency-stop' }, cli)).text).toMatch(/already on/);

    const resume = await h.warren.ownerOps.perform({ op: 'resume-all' }, cli);
    expect(resume.text).toMatch(/^▶️ Resumed/);
    await h.runner.waitForSessions(4);
    const started = h.runner.sessions.slice(2);
    expect(started.map((session) => session.request.group.folder).sort()).toEqual(['family', 'sales']);
    const sales = started.find((session) => session.request.group.folder === 'sales');
    expect(sales?.prompts.map((prompt) => prompt.prompt).join('\n')).toMatch(
      /a long question[\s\S]*are you there/,
    );
    const audit = h.warren.store.audit.recent(10).map((entry) => [entry.action, entry.decision]);
    expect(audit).toEqual(
      expect.arrayContaining([
        ['emergency-stop', 'allow'],
        ['resume-all', 'allow'],
      ]),
    );
  });

  it('holds across a restart, and is pulled from the CLI as from the admin chat', async () => {
    const dataDir = tempDir();
    harness = await startTestWarren({ dataDir });
    let h = harness;
    h.addGroup('team');
    h.channel.receive({ chatId: 'team', text: 'hi' });
    await h.runner.waitForSessions(1);
    // The CLI pulls it in another process: the database, then a signal to the host.
    const cliStore = openStore(databasePath(dataDir));
    const ops = createCliOwnerOps({
      store: cliStore,
      config: {
        dataDir,
        assistantName: 'Warren',
        timezone: 'UTC',
        diskQuotaMb: 0,
        mountAllowlistPath: '/nonexistent',
        groupDailyBudget: 5,
        groupMonthlyBudget: 50,
        currency: 'USD',
      },
      protectedPaths: [],
      now: Date.now,
    });
    expect((await ops.perform({ op: 'emergency-stop' }, cli)).text).toMatch(/stopped the agents of team/);
    await eventually(() => h.runner.sessions[0]?.isClosed === true, 2000, 'the agent stopped');
    await h.stop();

    harness = await startTestWarren({ dataDir, runner: new FakeAgentRunner({ autoReply: () => 'hello' }) });
    h = harness;
    await settle();
    expect(h.runner.sessions).toHaveLength(0);
    expect(statusesOf(h, 'team')).toEqual(['pending']);
    expect((await ops.perform({ op: 'resume-all' }, cli)).ok).toBe(true);
    cliStore.close();
    await eventually(() => h.channel.textsTo('team').includes('hello'), 2000, 'the held answer');
    expect(statusesOf(h, 'team')).toEqual(['done']);
  });
});
