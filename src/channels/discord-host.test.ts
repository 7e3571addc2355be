// Discord through a real host (fake agent runner): registration, pairing and thread replies as for every channel.
import { describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner } from '../../test/fake-agent-runner.js';
import { type FakeDiscordApi, startFakeDiscordApi } from '../../test/fake-discord-api.js';
import { startTestWarren, tempDir } from '../../test/harness.js';
import { loadConfig } from '../config.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import { channelFactories } from './index.js';

const TEAM = '100000000000000001';
const OTHER = '100000000000000002';
const THREAD = '100000000000000011';
const DM = '100000000000000021';

describe('discord in a running host', () => {
  async function startHost(api: FakeDiscordApi, runner: FakeAgentRunner) {
    const env = {
      WARREN_DISCORD_BOT_TOKEN: api.token,
      WARREN_DISCORD_API_ROOT: api.url,
      WARREN_LOCAL_CHAT: 'false',
    };
    const dataDir = tempDir();
    return startTestWarren({
      runner,
      env,
      dataDir,
      channels: (context) => {
        const factory = channelFactories.find((entry) => entry.name === 'discord');
        const config = loadConfig({ env: { WARREN_DATA_DIR: dataDir, ...env }, cwd: dataDir });
        const channel = factory?.create({ ...context, config, log: silentLogger(), localToken: 'unused' });
        return channel ? [channel] : [];
      },
    });
  }

  it('a mention in a thread reaches the agent once and the reply goes into the thread; strangers are handled', async () => {
    const api = await startFakeDiscordApi();
    api.addChannel(TEAM, 'team');
    api.addChannel(OTHER, 'new');
    api.addThread(THREAD, TEAM, 'dinner');
    api.addDm(DM);
    const runner = new FakeAgentRunner({ autoReply: () => 'Sure, **done**.' });
    const h = await startHost(api, runner);
    try {
      registerGroup(
        h.warren.store,
        h.dataDir,
        {
          folder: 'sales',
          name: 'Sales',
          chat: { channel: 'discord', chatId: TEAM },
          isDirect: false,
          trigger: 'mention',
        },
        Date.now(),
      );
      await eventually(() => api.isConnected, 5000, 'the Gateway session');
      api.pushMessage({ channelId: THREAD, content: 'where shall we eat?' });
      api.pushMessage({ channelId: THREAD, content: 'book a table', mentionsBot: true });
      await eventually(() => api.textsTo(THREAD).length === 1, 5000, 'the reply at Discord');
      expect(api.textsTo(THREAD)).toEqual(['Sure, **done**.']);
      expect(runner.sessions[0]?.prompts[0]?.prompt).toMatch(/where shall we eat\?[\s\S]*book a table/);
      const chat = h.warren.store.chats.get('discord', TEAM);
      expect(h.warren.store.messages.ofChat(chat?.id ?? -1)).toHaveLength(2);

      // An unknown channel: the owner is told (a notice queued for the admin chat); nothing of it is stored.
      api.pushMessage({ channelId: OTHER, content: 'hello?', mentionsBot: true });
      const notices = () => h.warren.store.outbox.list({ limit: 50 }).map((item) => item.text);
      await eventually(() => notices().some((text) => text.includes(`discord:${OTHER}`)), 5000, 'the notice');
      const unknown = h.warren.store.chats.get('discord', OTHER);
      expect(h.warren.store.messages.ofChat(unknown?.id ?? -1)).toEqual([]);
      // A stranger's DM gets a pairing code.
      api.pushMessage({ channelId: DM, content: 'who are you?' });
      await eventually(() => /code: /.test(api.textsTo(DM)[0] ?? ''), 5000, 'the pairing code');
      expect(runner.sessions).toHaveLength(1);
      const state = h.warren.store.channels.states().find((stored) => stored.channel === 'discord')?.state;
      expect(state).toEqual({ status: 'connected' });
      expect(api.typing).toContain(THREAD);
    } finally {
      await h.stop();
      await api.close();
    }
  });
});
