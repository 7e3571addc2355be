import { afterEach, describe, expect, it } from 'vitest';
import { startFakeDiscordApi } from '../../test/fake-discord-api.js';
import { checkDiscord } from './discord-check.js';

describe('warren doctor: Discord', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  const start = async (options: { allowMessageContent?: boolean } = {}) => {
    const api = await startFakeDiscordApi(options);
    closers.push(() => api.close());
    return api;
  };

  it('is silent when Discord is off, and passes with a token Discord accepts', async () => {
    const api = await start();
    expect(await checkDiscord({ discordBotToken: '', discordApiRoot: api.url })).toBeNull();
    expect(await checkDiscord({ discordBotToken: api.token, discordApiRoot: api.url })).toEqual({
      isOk: true,
      detail: 'token accepted (bot @warren)',
    });
  });

  it('names the token and the fix when Discord refuses it', async () => {
    const api = await start();
    const check = await checkDiscord({ discordBotToken: 'MTAw.GwRoNg.wrong', discordApiRoot: api.url });
    expect(check).toMatchObject({
      isOk: false,
      detail: 'Discord refused WARREN_DISCORD_BOT_TOKEN: HTTP 401',
    });
    expect(check?.fix).toContain('Bot');
  });

  it('says when the Message Content intent is off', async () => {
    const api = await start({ allowMessageContent: false });
    const check = await checkDiscord({ discordBotToken: api.token, discordApiRoot: api.url });
    expect(check).toMatchObject({ isOk: false });
    expect(check?.fix).toContain('Message Content Intent');
  });
});
