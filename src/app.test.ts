import { afterEach, describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner } from '../test/fake-agent-runner.js';
import { startTestWarren, type TestWarren } from '../test/harness.js';
import { databasePath } from './app.js';
import { createLocalChannel, type LocalChannel } from './channels/local.js';
import { signalHost } from './cli/host-signal.js';
import { silentLogger } from './log.js';
import { openStore } from './store/store.js';

let harness: TestWarren | null = null;
afterEach(async () => {
  await harness?.stop();
  harness = null;
});

const TOKEN = 'test-token-0123456789';

async function startWithLocalChat(runner: FakeAgentRunner): Promise<{ h: TestWarren; local: LocalChannel }> {
  let local: LocalChannel | null = null;
  const h = await startTestWarren({
    runner,
    channels: (context) => {
      local = createLocalChannel({
        port: 0,
        token: TOKEN,
        assistantName: 'Warren',
        log: silentLogger(),
        onDenied: (denial) =>
          context.audit({
            groupFolder: null,
            actor: 'local',
            action: 'local-chat-request',
            decision: 'deny',
            detail: { ...denial },
          }),
      });
      return [local];
    },
  });
  if (!local) throw new Error('local channel was not created');
  return { h, local };
}

describe('warren host', () => {
  it('answers a message typed into the local web chat, over HTTP, from message to reply', async () => {
    const runner = new FakeAgentRunner({
      autoReply: (prompt) => `You said: ${/>([^<]*)<\/message>/.exec(prompt)?.[1]}`,
    });
    const { h, local } = await startWithLocalChat(runner);
    harness = h;
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const posted = await fetch(`${local.url}/api/chats/main/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ text: 'hello Warren' }),
    });
    expect(posted.status).toBe(202);
    let events: Array<{ role: string; text: string }> = [];
    const deadline = Date.now() + 3000;
    while (!events.some((event) => event.role === 'assistant') && Date.now() < deadline) {
      const response = await fetch(`${local.url}/api/chats/main/messages`, { headers });
      events = ((await response.json()) as { events: typeof events }).events;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(events.map((event) => [event.role, event.text])).toEqual([
      ['user', 'hello Warren'],
      ['assistant', 'You said: hello Warren'],
    ]);
    expect(runner.sessions[0]?.request.group.isAdmin).toBe(true);
  });

  it('delivers a message another process queued (the CLI) as soon as that process signals the host', async () => {
    harness = await startTestWarren();
    harness.addGroup('team');
    await harness.warren.delivery.idle(); // the pass the channel's connection started is over
    const cli = openStore(databasePath(harness.dataDir));
    cli.outbox.enqueue(
      { idempotencyKey: 'cli-1', channel: 'fake', chatId: 'team', text: 'welcome', kind: 'notice' },
      Date.now(),
    );
    cli.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(harness.channel.textsTo('team')).toEqual([]); // no polling: nothing happens without the signal
    signalHost(harness.dataDir, Date.now());
    await eventually(() => harness?.channel.textsTo('team').length === 1, 2000, 'signalled delivery');
  });

  it('a chat that gets a new id (a Telegram supergroup) keeps its group: the reply waiting and the next turn go there', async () => {
    harness = await startTestWarren({
      runner: new FakeAgentRunner({
        autoReply: (prompt) => `re: ${prompt.includes('second') ? 'second' : 'first'}`,
      }),
    });
    const h = harness;
    h.addGroup('team');
    // The reply to the first message is refused: the service has moved the chat (as Telegram says in its error).
    h.channel.nextResults.push({ status: 'failed', reason: 'group chat was upgraded', isRetryable: true });
    h.channel.receive({ chatId: 'team', text: 'first question' });
    await eventually(() => h.channel.attempts.length === 1, 2000, 'the refused send');
    h.channel.emitChatEvent({ type: 'chat-moved', channel: 'fake', fromChatId: 'team', toChatId: 'team-2' });
    await eventually(() => h.channel.textsTo('team-2').length === 1, 2000, 'the reply at the new id');
    expect(h.channel.textsTo('team-2')).toEqual(['re: first']);
    // Messages from the new id belong to the same group.
    h.channel.receive({ chatId: 'team-2', text: 'second question' });
    await eventually(() => h.channel.textsTo('team-2').length === 2, 2000, 'the next reply');
    expect(h.channel.textsTo('team-2')[1]).toBe('re: second');
    expect(h.channel.textsTo('team')).toEqual([]);
    expect(h.warren.store.audit.recent(10).find((entry) => entry.action === 'chat-moved')).toMatchObject({
      groupFolder: 'team',
      decision: 'allow',
    });
  });

  it('refuses and audits a local chat request without the token', async () => {
    const { h, local } = await startWithLocalChat(new FakeAgentRunner());
    harness = h;
    const response = await fetch(`${local.url}/api/chats/main/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'let me in' }),
    });
    expect(response.status).toBe(401);
    expect(h.runner.sessions).toHaveLength(0);
    await eventually(() => (h.warren.store.audit.recent(5).length ?? 0) > 0);
    expect(h.warren.store.audit.recent(5)[0]).toMatchObject({
      action: 'local-chat-request',
      decision: 'deny',
    });
  });
});
