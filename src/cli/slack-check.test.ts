import { afterEach, describe, expect, it } from 'vitest';
import { type FakeSlackApi, startFakeSlackApi } from '../../test/fake-slack-api.js';
import { checkSlack } from './slack-check.js';

describe('the Slack doctor check', () => {
  let api: FakeSlackApi;
  afterEach(() => api?.close());

  it('is silent when Slack is off, names a missing token, and says which token Slack refused', async () => {
    api = await startFakeSlackApi();
    const config = { slackBotToken: api.botToken, slackAppToken: api.appToken, slackApiRoot: api.url };
    expect(await checkSlack({ ...config, slackBotToken: '', slackAppToken: '' })).toBeNull();
    expect(await checkSlack({ ...config, slackAppToken: '' })).toMatchObject({
      isOk: false,
      detail: 'WARREN_SLACK_APP_TOKEN is not set; Slack needs both tokens',
    });
    expect(await checkSlack(config)).toEqual({
      isOk: true,
      detail: 'both tokens accepted (bot user @warren)',
    });
    const wrongBot = await checkSlack({ ...config, slackBotToken: 'xoxb-1-wrong-wrong-wrong' });
    expect(wrongBot).toMatchObject({
      isOk: false,
      detail: 'Slack refused WARREN_SLACK_BOT_TOKEN: invalid_auth',
    });
    expect(wrongBot?.fix).toContain('OAuth & Permissions');
    // The two tokens swapped: the app token cannot open a socket with a bot token.
    expect(await checkSlack({ ...config, slackAppToken: api.botToken })).toMatchObject({
      isOk: false,
      detail: 'Slack refused WARREN_SLACK_APP_TOKEN: not_allowed_token_type',
    });
  });
});
