// End to end through Telegram: a message in a registered group, long-polled from a loopback fake Bot API, reaches
// an agent container (real Docker, real agent image, fake model API) and the reply arrives at the fake Bot API.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerGroup } from '../../src/intake/registration.js';
import { type FakeTelegramApi, startFakeTelegramApi } from '../fake-telegram-api.js';
import { type E2eWarren, startE2eWarren, userTexts, waitFor } from './e2e-harness.js';

const GROUP = -100_424_242;
let api: FakeTelegramApi;
let host: E2eWarren;

beforeAll(async () => {
  api = await startFakeTelegramApi();
  // The real channel table builds the Telegram adapter from these settings, as `warren start` would.
  host = await startE2eWarren({
    env: { WARREN_TELEGRAM_BOT_TOKEN: api.token, WARREN_TELEGRAM_API_ROOT: api.url },
  });
});

afterAll(async () => {
  await host?.stop();
  await api?.close();
});

describe('chat through Telegram and an agent container', () => {
  it('a Telegram message in a registered group reaches the agent and the reply arrives at the Bot API', async () => {
    registerGroup(
      host.warren.store,
      host.dataDir,
      {
        folder: 'tg-team',
        name: 'Team on Telegram',
        chat: { channel: 'telegram', chatId: String(GROUP) },
        isDirect: false,
        trigger: 'always',
      },
      Date.now(),
    );
    host.fake.script({ text: 'Hello from the **burrow**, Telegram!' });
    api.pushMessage({ chatId: GROUP, chatTitle: 'Team', text: 'hi from telegram' });
    const request = await host.fake.waitForRequest(1, 90_000);
    expect(userTexts(request).join('\n')).toContain('hi from telegram');
    const reply = await waitFor(
      () => api.sent.find((record) => record.chatId === String(GROUP) && record.method === 'sendMessage'),
      'the reply at the fake Bot API',
      90_000,
    );
    expect(reply).toMatchObject({ parseMode: 'HTML', text: 'Hello from the <b>burrow</b>, Telegram!' });
    expect(host.starts.map((spec) => spec.groupFolder)).toEqual(['tg-team']);
    // The bot token never went near the container.
    expect(JSON.stringify(host.starts)).not.toContain(api.token);
  }, 120_000);

  it('a file the agent asks to send (send_file) arrives at the Bot API as a document', async () => {
    writeFileSync(path.join(host.dataDir, 'groups', 'tg-team', 'report.txt'), 'Q3 pipeline: 12 deals');
    host.fake.script(
      {
        toolUse: { name: 'mcp__warren__send_file', input: { path: 'report.txt', caption: 'The Q3 report' } },
      },
      { text: 'Sent you the report.' },
    );
    api.pushMessage({ chatId: GROUP, chatTitle: 'Team', text: 'send me the report' });
    const document = await waitFor(
      () => api.sent.find((record) => record.chatId === String(GROUP) && record.method === 'sendDocument'),
      'the document at the fake Bot API',
      90_000,
    );
    expect(document.caption).toBe('The Q3 report');
    expect(document.fileBytes?.toString()).toBe('Q3 pipeline: 12 deals');
  }, 120_000);
});
