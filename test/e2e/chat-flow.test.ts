// End to end through the local web chat: a message reaches an agent container, the reply comes back, follow-ups
// join the same container, a killed container is survived. On every runtime (describeOnRuntimes), real agent image,
// fake model API.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_NAME_SUFFIX } from '../../src/sandbox/folder-jobs.js';
import {
  describeOnRuntimes,
  type E2eWarren,
  killContainer,
  startE2eWarren,
  userTexts,
} from './e2e-harness.js';

let host: E2eWarren;

async function post(chatId: string, text: string): Promise<void> {
  const local = host.local;
  if (!local) throw new Error('local chat is not enabled');
  const response = await fetch(`${local.url}/api/chats/${chatId}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${host.localToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  expect(response.status).toBe(202);
}

async function assistantTexts(chatId: string): Promise<string[]> {
  const local = host.local;
  if (!local) throw new Error('local chat is not enabled');
  const response = await fetch(`${local.url}/api/chats/${chatId}/messages?after=0`, {
    headers: { authorization: `Bearer ${host.localToken}` },
  });
  const body = (await response.json()) as { events: Array<{ role: string; text: string }> };
  return body.events.filter((event) => event.role === 'assistant').map((event) => event.text);
}

async function waitForReply(chatId: string, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const texts = await assistantTexts(chatId);
    if (texts.some((reply) => reply.includes(text))) return;
    if (Date.now() > deadline) {
      throw new Error(
        `no reply containing "${text}" in local:${chatId} within ${timeoutMs} ms; got ${JSON.stringify(texts)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

await describeOnRuntimes('chat', (kind) => {
  beforeAll(async () => {
    host = await startE2eWarren({ runtime: kind, isLocalChatEnabled: true });
  });

  afterAll(async () => {
    await host?.stop();
  });

  describe('chat through an agent container', () => {
    it('a message in the local chat reaches an agent container and the reply comes back', async () => {
      host.fake.script({ text: 'Hello from the burrow!' });
      const sentAt = Date.now();
      await post('main', 'hi there, agent');
      const request = await host.fake.waitForRequest(1, 60_000);
      const coldMs = Date.now() - sentAt;
      console.log(`[e2e timing] cold: message → first model request ${coldMs} ms`);
      expect(userTexts(request).join('\n')).toContain('hi there, agent');
      // The proxy put the host's key on the call (the fake refuses any other): the container never had it.
      expect(request.headers['x-api-key']).toBe(host.apiKey);
      await waitForReply('main', 'Hello from the burrow!');
      expect(host.starts).toHaveLength(1);
      expect(host.starts[0]?.groupFolder).toBe('main');
      // Claude Code was started by the runner's first step, and the SDK took that very process over
      // (agent/src/claude-launch.ts): in the real image, with the real SDK, the two spawn requests matched.
      expect(host.runnerLines.some((line) => line.includes('"msg":"claude code started early"'))).toBe(true);
      expect(host.runnerLines.filter((line) => line.includes('early claude start not used'))).toEqual([]);
      // The call was metered against the group.
      const [metered] = host.warren.store.usage.byDay('2000-01-01', 'main');
      expect(metered?.outputTokens).toBeGreaterThan(0);
      expect(metered?.cost).toBeGreaterThan(0);
    }, 90_000);

    it('a follow-up sent while the agent is working, or idle, joins the same container', async () => {
      const before = host.fake.requests.length;
      // The first answer takes a while: the follow-up arrives while the agent is working on it.
      host.fake.script(
        { text: 'first answer', delayMs: 1500 },
        { text: 'second answer' },
        { text: 'third answer' },
      );
      await post('main', 'question one');
      await host.fake.waitForRequest(before + 1, 30_000);
      await post('main', 'question two (while working)');
      await waitForReply('main', 'first answer');
      await waitForReply('main', 'second answer');
      const seen = host.fake.requests.slice(before).flatMap(userTexts).join('\n');
      expect(seen).toContain('question two (while working)');

      // Now the agent is idle: the next message still goes to the same container.
      const count = host.fake.requests.length;
      const sentAt = Date.now();
      await post('main', 'question three (while idle)');
      const warm = await host.fake.waitForRequest(count + 1, 30_000);
      console.log(`[e2e timing] warm: message → first model request ${Date.now() - sentAt} ms`);
      await waitForReply('main', 'third answer');
      // Same session: the model sees the earlier conversation.
      expect(userTexts(warm).join('\n')).toContain('hi there, agent');
      expect(host.starts).toHaveLength(1);
      const owned = await host.runtime.listOwned(host.installId);
      // Agent containers: a disk measurement (a folder job) may be running beside it.
      expect(
        owned.filter((container) => container.isRunning && !container.name.endsWith(JOB_NAME_SUFFIX)),
      ).toHaveLength(1);
    }, 90_000);

    it('a container killed mid-run: the user gets a notice, and the next message works', async () => {
      const name = await host.containerOf('main');
      const before = host.fake.requests.length;
      // The model "thinks" for a long time; the container is killed meanwhile. The retry gets a quick answer.
      host.fake.script({ text: 'never delivered', delayMs: 20_000 }, { text: 'answer after the crash' });
      await post('main', 'a long question');
      await host.fake.waitForRequest(before + 1, 30_000);
      expect(await killContainer(name, host.kind)).toBe(0);
      await waitForReply('main', 'stopped unexpectedly');
      const notices = await assistantTexts('main');
      expect(notices.find((text) => text.includes('stopped unexpectedly'))).toMatch(/killed \(exit 137\)/);
      // The retry runs in a new container and answers the question.
      await waitForReply('main', 'answer after the crash');
      expect(host.starts.length).toBe(2);

      host.fake.script({ text: 'business as usual' });
      await post('main', 'are you back?');
      await waitForReply('main', 'business as usual');
      expect((await assistantTexts('main')).join('\n')).not.toContain('never delivered');
    }, 120_000);
  });

  describe('a group whose stored session cannot be resumed', () => {
    it('answers from a fresh session: the early-started Claude Code is tried, then a new one', async () => {
      const group = host.addGroup('lost');
      // A session id the container has no transcript for (a wiped state folder, a corrupt file).
      const unusable = randomUUID();
      host.warren.store.groups.setSession(group.id, unusable, Date.now());
      const linesBefore = host.runnerLines.length;
      host.fake.script({ text: 'fresh start, same answer' });
      host.channel.receive({ chatId: 'lost', text: 'are you there?' });
      const deadline = Date.now() + 60_000;
      while (!host.channel.textsTo('lost').some((text) => text.includes('fresh start, same answer'))) {
        if (Date.now() > deadline)
          throw new Error(`no reply; got ${JSON.stringify(host.channel.textsTo('lost'))}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const lines = host.runnerLines.slice(linesBefore);
      expect(lines.some((line) => line.includes('"msg":"claude code started early"'))).toBe(true);
      expect(lines.some((line) => line.includes('cannot resume session, starting a fresh one'))).toBe(true);
      // The new session replaced the unusable one.
      const stored = host.warren.store.groups.session(group.id);
      expect(stored).toMatch(/^[0-9a-f-]{36}$/);
      expect(stored).not.toBe(unusable);
    }, 90_000);
  });
});
