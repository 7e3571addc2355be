// End to end through Discord: a mention in a thread of a registered channel, dispatched over a loopback Gateway
// WebSocket, reaches an agent container (real Docker, real agent image, fake model API) and the reply arrives at
// the fake REST API in that thread (its own channel id).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerGroup } from '../../src/intake/registration.js';
import { type FakeDiscordApi, startFakeDiscordApi } from '../fake-discord-api.js';
import { type E2eWarren, startE2eWarren, userTexts, waitFor } from './e2e-harness.js';

const CHANNEL = '110000000000000001';
const THREAD = '110000000000000002';
let api: FakeDiscordApi;
let host: E2eWarren;

beforeAll(async () => {
  api = await startFakeDiscordApi();
  api.addChannel(CHANNEL, 'team');
  api.addThread(THREAD, CHANNEL, 'a question');
  // The real channel table builds the Discord adapter from these settings, as `warren start` would.
  host = await startE2eWarren({
    env: { WARREN_DISCORD_BOT_TOKEN: api.token, WARREN_DISCORD_API_ROOT: api.url },
  });
});

afterAll(async () => {
  await host?.stop();
  await api?.close();
});

describe('chat through Discord and an agent container', () => {
  it('a mention in a thread reaches the agent and the reply arrives in that thread', async () => {
    registerGroup(
      host.warren.store,
      host.dataDir,
      {
        folder: 'discord-team',
        name: 'Team on Discord',
        chat: { channel: 'discord', chatId: CHANNEL },
        isDirect: false,
        trigger: 'mention',
      },
      Date.now(),
    );
    host.fake.script({ text: 'Hello from the **burrow**, Discord!' });
    await waitFor(() => api.isConnected || undefined, 'the Gateway session', 30_000);
    api.pushMessage({ channelId: THREAD, content: 'hi from discord', mentionsBot: true });
    const request = await host.fake.waitForRequest(1, 90_000);
    expect(userTexts(request).join('\n')).toContain('@warren hi from discord');
    const reply = await waitFor(
      () => api.posts.find((post) => post.channelId === THREAD),
      'the reply at the fake Discord',
      90_000,
    );
    expect(reply.content).toBe('Hello from the **burrow**, Discord!');
    expect(api.textsTo(CHANNEL)).toEqual([]);
    expect(host.starts.map((spec) => spec.groupFolder)).toEqual(['discord-team']);
    // The token went nowhere near the container.
    expect(JSON.stringify(host.starts)).not.toContain(api.token);
  }, 120_000);
});
