// End to end through Slack: a mention in a thread of a registered channel, delivered over a loopback Socket Mode
// WebSocket, reaches an agent container (real Docker, real agent image, fake model API) and the reply arrives at
// the fake Web API in that thread.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerGroup } from '../../src/intake/registration.js';
import { FAKE_SLACK_BOT, type FakeSlackApi, startFakeSlackApi } from '../fake-slack-api.js';
import { type E2eWarren, startE2eWarren, userTexts, waitFor } from './e2e-harness.js';

const CHANNEL = 'C0E2ETEAM';
let api: FakeSlackApi;
let host: E2eWarren;

beforeAll(async () => {
  api = await startFakeSlackApi();
  api.addChannel(CHANNEL, { name: 'team' });
  // The real channel table builds the Slack adapter from these settings, as `warren start` would.
  host = await startE2eWarren({
    env: {
      WARREN_SLACK_BOT_TOKEN: api.botToken,
      WARREN_SLACK_APP_TOKEN: api.appToken,
      WARREN_SLACK_API_ROOT: api.url,
    },
  });
});

afterAll(async () => {
  await host?.stop();
  await api?.close();
});

describe('chat through Slack and an agent container', () => {
  it('a mention in a thread reaches the agent and the reply arrives in that thread', async () => {
    registerGroup(
      host.warren.store,
      host.dataDir,
      {
        folder: 'slack-team',
        name: 'Team on Slack',
        chat: { channel: 'slack', chatId: CHANNEL },
        isDirect: false,
        trigger: 'mention',
      },
      Date.now(),
    );
    host.fake.script({ text: 'Hello from the **burrow**, Slack!' });
    const thread = api.pushMessage({ channel: CHANNEL, text: 'a question for the team' });
    api.pushMessage({
      channel: CHANNEL,
      text: `<@${FAKE_SLACK_BOT.userId}> hi from slack`,
      threadTs: thread,
    });
    const request = await host.fake.waitForRequest(1, 90_000);
    expect(userTexts(request).join('\n')).toContain('@warren hi from slack');
    const reply = await waitFor(
      () => api.posts.find((post) => post.channel === CHANNEL),
      'the reply at the fake Slack',
      90_000,
    );
    expect(reply).toMatchObject({ threadTs: thread, mrkdwn: 'Hello from the *burrow*, Slack!' });
    expect(host.starts.map((spec) => spec.groupFolder)).toEqual(['slack-team']);
    // Neither token went near the container.
    expect(JSON.stringify(host.starts)).not.toContain(api.botToken);
    expect(JSON.stringify(host.starts)).not.toContain(api.appToken);
  }, 120_000);
});
