import { afterEach, describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner } from '../../test/fake-agent-runner.js';
import { startTestWarren, statusesOf, type TestWarren } from '../../test/harness.js';
import { databasePath } from '../app.js';
import { createCliOwnerOps } from '../cli/owner.js';
import { openStore } from '../store/store.js';
import { AgentStartError } from '../types.js';

let harness: TestWarren | null = null;
afterEach(async () => {
  await harness?.stop();
  harness = null;
});

describe('group queue', () => {
  it('runs one agent per group and answers in the chat', async () => {
    harness = await startTestWarren({ runner: new FakeAgentRunner({ autoReply: () => 'hello back' }) });
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'hi' });
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'reply');
    expect(harness.channel.textsTo('team')).toEqual(['hello back']);
    expect(harness.runner.sessions).toHaveLength(1);
    expect(statusesOf(harness, 'team')).toEqual(['done']);
  });

  it('sends follow-ups to the running agent instead of starting a second one', async () => {
    harness = await startTestWarren();
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'first' });
    await harness.runner.waitForSessions(1);
    harness.channel.receive({ chatId: 'team', text: 'second while busy' });
    const session = harness.runner.sessions[0];
    await eventually(() => session?.prompts.length === 2, 2000, 'follow-up');
    expect(session?.prompts[1]?.prompt).toContain('second while busy');
    session?.reply('both answered');
    await eventually(() => harness?.channel.textsTo('team').length === 1);
    // Now idle: a new message joins the same session again.
    harness.channel.receive({ chatId: 'team', text: 'third while idle' });
    await eventually(() => session?.prompts.length === 3, 2000, 'idle follow-up');
    expect(harness.runner.sessions).toHaveLength(1);
    expect(statusesOf(harness, 'team')).toEqual(['done', 'done', 'processing']);
  });

  it('never runs more agents than the global cap', async () => {
    harness = await startTestWarren({ env: { WARREN_MAX_AGENTS: '2' } });
    for (const folder of ['a', 'b', 'c']) harness.addGroup(folder);
    for (const folder of ['a', 'b', 'c']) harness.channel.receive({ chatId: folder, text: `hi ${folder}` });
    await harness.runner.waitForSessions(2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(harness.runner.live).toHaveLength(2);
    expect(harness.warren.queue.snapshot().waiting).toEqual([harness.warren.store.groups.byFolder('c')?.id]);
    // Both busy: nothing may be evicted. When one finishes and goes idle, it makes room for c.
    harness.runner.sessions[0]?.reply('done a');
    await harness.runner.waitForSessions(3);
    expect(harness.runner.sessions[0]?.stopReasons[0]).toMatch(/evicted/);
    expect(harness.runner.live).toHaveLength(2);
  });

  it('stops the least recently used idle agent when a waiting group needs the place', async () => {
    harness = await startTestWarren({ env: { WARREN_MAX_AGENTS: '2' } });
    for (const folder of ['a', 'b', 'c']) harness.addGroup(folder);
    harness.channel.receive({ chatId: 'a', text: 'hi a' });
    await harness.runner.waitForSessions(1);
    harness.runner.sessions[0]?.reply('a done');
    await new Promise((resolve) => setTimeout(resolve, 5));
    harness.channel.receive({ chatId: 'b', text: 'hi b' });
    await harness.runner.waitForSessions(2);
    harness.runner.sessions[1]?.reply('b done');
    // Both idle now; a is the least recently active.
    harness.channel.receive({ chatId: 'c', text: 'hi c' });
    await harness.runner.waitForSessions(3);
    expect(harness.runner.sessions[0]?.isClosed).toBe(true);
    expect(harness.runner.sessions[1]?.isClosed).toBe(false);
    expect(harness.runner.sessions[2]?.request.group.folder).toBe('c');
  });

  it('retries a crashed run with backoff, then gives up with a visible failure notice', async () => {
    harness = await startTestWarren({ env: { WARREN_MAX_ATTEMPTS: '2' } });
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'please' });
    await harness.runner.waitForSessions(1);
    harness.runner.sessions[0]?.crash('exit code 137');
    await harness.runner.waitForSessions(2);
    expect(harness.runner.sessions[1]?.prompts[0]?.prompt).toContain('please');
    harness.runner.sessions[1]?.crash('exit code 1');
    await eventually(() => harness?.channel.textsTo('team').length === 2, 2000, 'notices');
    const [retryNotice, failureNotice] = harness.channel.textsTo('team');
    expect(retryNotice).toMatch(/Trying again in \d+s \(attempt 2 of 2\)/);
    expect(failureNotice).toMatch(/could not answer after 2 attempts.*exit code 1/);
    expect(statusesOf(harness, 'team')).toEqual(['failed']);
    expect(harness.runner.sessions).toHaveLength(2);
  });

  it('does not run again what hit the run ceiling: the chat is told at once', async () => {
    harness = await startTestWarren({ env: { WARREN_MAX_ATTEMPTS: '3' } });
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'a question that hangs the agent' });
    await harness.runner.waitForSessions(1);
    harness.runner.sessions[0]?.crash('ran longer than the 30 min limit', { isRetryable: false });
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'the notice');
    expect(harness.channel.textsTo('team')[0]).toMatch(/^❌ .*ran longer than the 30 min limit/);
    expect(statusesOf(harness, 'team')).toEqual(['failed']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(harness.runner.sessions).toHaveLength(1);
  });

  it('fails at once, without retrying, when the agent says trying again cannot help', async () => {
    harness = await startTestWarren({ env: { WARREN_MAX_ATTEMPTS: '3' } });
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'expensive question' });
    await harness.runner.waitForSessions(1);
    harness.runner.sessions[0]?.fail('daily token budget used up', false);
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'failure notice');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(harness.channel.textsTo('team')).toEqual([
      '❌ Sorry, I could not answer (daily token budget used up).',
    ]);
    expect(statusesOf(harness, 'team')).toEqual(['failed']);
    expect(harness.runner.sessions[0]?.prompts).toHaveLength(1);
  });

  it('does not retry an agent that cannot start until the owner acts (no model credentials)', async () => {
    const runner = new FakeAgentRunner({
      startError: new AgentStartError('no ANTHROPIC_API_KEY is set', false),
    });
    harness = await startTestWarren({ runner, env: { WARREN_MAX_ATTEMPTS: '3' } });
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'hello?' });
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'failure notice');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(harness.channel.textsTo('team')).toEqual([
      '❌ Sorry, I could not answer (could not start the agent: no ANTHROPIC_API_KEY is set).',
    ]);
  });

  it('reports an agent that cannot start as a failure, not silence', async () => {
    const runner = new FakeAgentRunner({ startError: new Error('container engine not reachable') });
    harness = await startTestWarren({ runner, env: { WARREN_MAX_ATTEMPTS: '1' } });
    harness.addGroup('team');
    harness.channel.receive({ chatId: 'team', text: 'hello?' });
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'failure notice');
    expect(harness.channel.textsTo('team')[0]).toMatch(/container engine not reachable/);
  });

  it('picks up pending work after a restart of the host (same database)', async () => {
    const first = await startTestWarren();
    first.addGroup('team');
    first.channel.receive({ chatId: 'team', text: 'answer me after a crash' });
    await first.runner.waitForSessions(1);
    await first.stop(); // the agent never answered; the message is left in 'processing'
    harness = await startTestWarren({
      dataDir: first.dataDir,
      runner: new FakeAgentRunner({ autoReply: () => 'here I am' }),
    });
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'reply after restart');
    expect(harness.runner.sessions[0]?.prompts[0]?.prompt).toContain('answer me after a crash');
    expect(statusesOf(harness, 'team')).toEqual(['done']);
  });

  it('gives untriggered messages to the agent as context with the next trigger', async () => {
    harness = await startTestWarren();
    harness.addGroup('team', { trigger: 'mention' });
    harness.channel.receive({ chatId: 'team', text: 'the deploy is at 5', senderName: 'Bob' });
    harness.channel.receive({ chatId: 'team', text: 'ok' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(harness.runner.sessions).toHaveLength(0);
    harness.channel.receive({ chatId: 'team', text: '@Warren when is the deploy?' });
    await harness.runner.waitForSessions(1);
    const prompt = harness.runner.sessions[0]?.prompts[0]?.prompt ?? '';
    expect(prompt).toContain('sender="Bob"');
    expect(prompt.indexOf('the deploy is at 5')).toBeLessThan(prompt.indexOf('when is the deploy?'));
  });
});

describe('a group removed while its agent runs', () => {
  it('has its agent stopped at once, removed in the admin chat or from the CLI; other groups run on', async () => {
    harness = await startTestWarren();
    const h = harness;
    for (const folder of ['team', 'crew', 'keep']) {
      h.addGroup(folder);
      h.channel.receive({ chatId: folder, text: `hi ${folder}` });
    }
    await h.runner.waitForSessions(3);
    const sessionOf = (folder: string) => h.runner.sessions.find((s) => s.request.group.folder === folder);
    // The admin chat's operations are the host's own.
    await h.warren.ownerOps.perform({ op: 'remove-group', folder: 'team' }, { kind: 'cli' });
    await eventually(() => sessionOf('team')?.isClosed === true, 2000, "team's agent stopped");
    expect(sessionOf('team')?.stopReasons).toEqual(['the group was removed']);
    // The CLI changes the database from another process and signals the host.
    const cliStore = openStore(databasePath(h.dataDir));
    const config = { dataDir: h.dataDir, assistantName: 'Warren', timezone: 'UTC', diskQuotaMb: 0 };
    const cliOps = createCliOwnerOps({
      store: cliStore,
      config: {
        ...config,
        mountAllowlistPath: '/nonexistent',
        groupDailyBudget: 5,
        groupMonthlyBudget: 50,
        currency: 'USD',
      },
      protectedPaths: [],
      now: Date.now,
    });
    expect(await cliOps.perform({ op: 'remove-group', folder: 'crew' }, { kind: 'cli' })).toMatchObject({
      ok: true,
    });
    cliStore.close();
    await eventually(() => sessionOf('crew')?.isClosed === true, 2000, "crew's agent stopped");
    expect(sessionOf('keep')?.isClosed).toBe(false);
    // Its chat is a stranger now: nothing starts for it.
    h.channel.receive({ chatId: 'team', text: 'anyone there?' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.runner.sessions).toHaveLength(3);
  });

  it('never starts when it was waiting for a place', async () => {
    harness = await startTestWarren({ env: { WARREN_MAX_AGENTS: '1' } });
    const h = harness;
    for (const folder of ['a', 'b']) h.addGroup(folder);
    h.channel.receive({ chatId: 'a', text: 'hi a' });
    await h.runner.waitForSessions(1);
    h.channel.receive({ chatId: 'b', text: 'hi b' });
    await eventually(() => h.warren.queue.snapshot().waiting.length === 1, 2000, 'b waiting');
    await h.warren.ownerOps.perform({ op: 'remove-group', folder: 'b' }, { kind: 'cli' });
    h.runner.sessions[0]?.reply('done a'); // a place is free now
    await eventually(() => h.channel.textsTo('a').length === 1, 2000, "a's reply");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.runner.sessions.map((s) => s.request.group.folder)).toEqual(['a']);
  });
});
