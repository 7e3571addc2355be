import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeChannelContract } from '../../test/channel-contract.js';
import { eventually, FakeAgentRunner } from '../../test/fake-agent-runner.js';
import { FAKE_BOT, type FakeTelegramApi, startFakeTelegramApi } from '../../test/fake-telegram-api.js';
import { startTestWarren, tempDir } from '../../test/harness.js';
import { loadConfig } from '../config.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import { openStore, type Store } from '../store/store.js';
import type { Channel, ChatEvent, InboundMessage } from '../types.js';
import { channelFactories } from './index.js';
import { createMediaSaver, type MediaSaver } from './media.js';
import { memoryLedger, type SentPartsLedger } from './outbound.js';
import { createTelegramChannel } from './telegram.js';

const GROUP = -100123;

function makeChannel(
  api: FakeTelegramApi,
  options: {
    offsets?: { load(): number | null; save(offset: number): void };
    media?: MediaSaver | null;
    ledger?: SentPartsLedger;
    token?: string;
  } = {},
): Channel {
  let offset: number | null = null;
  return createTelegramChannel({
    token: options.token ?? api.token,
    apiRoot: api.url,
    log: silentLogger(),
    media: options.media ?? null,
    maxMediaBytes: 1024 * 1024,
    offsets: options.offsets ?? {
      load: () => offset,
      save: (value) => {
        offset = value;
      },
    },
    sentParts: options.ledger ?? memoryLedger(),
    pollTimeoutSeconds: 1,
    retryBaseMs: 20,
    retryMaxMs: 200,
    typingIntervalMs: 50,
  });
}

describeChannelContract('telegram (fake Bot API)', async () => {
  const api = await startFakeTelegramApi();
  return {
    channel: makeChannel(api),
    chatId: String(GROUP),
    inject: (text) => void api.pushMessage({ chatId: GROUP, text }),
    sentTexts: () => api.textsTo(GROUP),
    typingCount: () => api.chatActions.filter((action) => action.chatId === String(GROUP)).length,
    failNextSend: (options = {}) =>
      api.failNext('sendMessage', { errorCode: 502, description: 'Bad Gateway', skip: options.skip }),
    dropConnection: () => api.dropPolls(),
    close: () => api.close(),
  };
});

describe('telegram channel', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(options: Parameters<typeof makeChannel>[1] = {}) {
    const api = await startFakeTelegramApi();
    const channel = makeChannel(api, options);
    const received: InboundMessage[] = [];
    const states: ChannelState[] = [];
    const events: ChatEvent[] = [];
    cleanups.push(() => api.close());
    cleanups.push(() => channel.disconnect());
    await channel.connect({
      onMessage: (message) => received.push(message),
      onStateChange: (state) => states.push(state),
      onChatEvent: (event) => events.push(event),
    });
    return { api, channel, received, states, events };
  }

  it('a restart resumes from the saved offset: no update is handled twice', async () => {
    const api = await startFakeTelegramApi();
    cleanups.push(() => api.close());
    let saved: number | null = null;
    const offsets = {
      load: () => saved,
      save: (value: number) => {
        saved = value;
      },
    };
    const received: InboundMessage[] = [];
    for (const text of ['one', 'two']) {
      const channel = makeChannel(api, { offsets });
      await channel.connect({ onMessage: (message) => received.push(message) });
      api.pushMessage({ chatId: GROUP, text });
      await eventually(() => received.some((message) => message.text === text), 5000, text);
      await channel.disconnect();
    }
    expect(received.map((message) => message.text)).toEqual(['one', 'two']);
    expect(saved).toBeGreaterThan(0);
  });

  it('marks @username, a text mention of the bot and a reply to the bot as mentions; other text not', async () => {
    const { api, received } = await start();
    api.pushMessage({
      chatId: GROUP,
      text: `hi @${FAKE_BOT.username} there`,
      entities: [{ type: 'mention', offset: 3, length: FAKE_BOT.username.length + 1 }],
    });
    api.pushMessage({ chatId: GROUP, text: 'answering you', replyToBot: true });
    api.pushMessage({
      chatId: GROUP,
      text: 'Warren bot',
      entities: [{ type: 'text_mention', offset: 0, length: 6, user: { ...FAKE_BOT } }],
    });
    api.pushMessage({
      chatId: GROUP,
      text: 'hi @somebody_else',
      entities: [{ type: 'mention', offset: 3, length: 14 }],
    });
    await eventually(() => received.length === 4, 5000, 'four messages');
    expect(received.map((message) => message.isMention)).toEqual([true, true, true, false]);
    expect(received[0]).toMatchObject({
      isDirect: false,
      chatName: 'Team',
      senderName: 'Alice',
      senderId: '42',
    });
  });

  it('a private chat is a direct chat', async () => {
    const { api, received } = await start();
    api.pushMessage({ chatId: 555, text: 'hello', from: { id: 555, first_name: 'Bob', last_name: 'Stone' } });
    await eventually(() => received.length === 1, 5000, 'the message');
    expect(received[0]).toMatchObject({ chatId: '555', isDirect: true, senderName: 'Bob Stone' });
  });

  it('sends Markdown as Telegram HTML', async () => {
    const { api, channel } = await start();
    await channel.send({ chatId: String(GROUP), text: '**Total:** 3 < 4 & `x<y`', idempotencyKey: 'k' });
    expect(api.sent[0]).toMatchObject({
      parseMode: 'HTML',
      text: '<b>Total:</b> 3 &lt; 4 &amp; <code>x&lt;y</code>',
      visibleText: 'Total: 3 < 4 & x<y',
    });
  });

  it('when Telegram refuses the formatting, sends the same part again as plain text', async () => {
    const { api, channel } = await start();
    api.failNext('sendMessage', {
      errorCode: 400,
      description: "Bad Request: can't parse entities: Can't find end tag corresponding to start tag b",
    });
    const result = await channel.send({
      chatId: String(GROUP),
      text: 'a **bold** claim',
      idempotencyKey: 'k',
    });
    expect(result.status).toBe('sent');
    expect(api.sent).toHaveLength(1);
    expect(api.sent[0]).toMatchObject({ text: 'a bold claim', parseMode: undefined });
  });

  it('a bot blocked by the user is a failure the outbox does not retry; a 5xx is retried', async () => {
    const { api, channel } = await start();
    api.failNext('sendMessage', { errorCode: 403, description: 'Forbidden: bot was blocked by the user' });
    expect(await channel.send({ chatId: '555', text: 'hi', idempotencyKey: 'a' })).toMatchObject({
      status: 'failed',
      isRetryable: false,
      reason: '403 Forbidden: bot was blocked by the user',
    });
    api.failNext('sendMessage', {
      errorCode: 429,
      description: 'Too Many Requests: retry after 3',
      retryAfter: 3,
    });
    expect(await channel.send({ chatId: '555', text: 'hi', idempotencyKey: 'b' })).toMatchObject({
      status: 'failed',
      isRetryable: true,
    });
  });

  it('reports a dropped poll as reconnecting, then connected again', async () => {
    const { api, states } = await start();
    await eventually(() => states.some((state) => state.status === 'connected'), 5000, 'connected');
    api.failNext('getUpdates', { errorCode: 502, description: 'Bad Gateway' });
    api.dropPolls();
    await eventually(() => states.some((state) => state.status === 'reconnecting'), 5000, 'reconnecting');
    await eventually(() => states.at(-1)?.status === 'connected', 5000, 'connected again');
  });

  it('a refused token is reported as logged out', async () => {
    const { states } = await start({ token: '999:wrong-token-wrong-token-wrong' });
    expect(states.at(-1)).toMatchObject({ status: 'logged-out' });
  });

  it('reports being added to a group as a chat-joined event', async () => {
    const { api, events } = await start();
    const member = (status: string) => ({ user: { ...FAKE_BOT }, status });
    api.pushUpdate({
      my_chat_member: {
        chat: { id: -100777, type: 'supergroup', title: 'Sales' },
        from: { id: 42, is_bot: false, first_name: 'Alice' },
        date: 0,
        old_chat_member: member('left'),
        new_chat_member: member('member'),
      },
    } as never);
    await eventually(() => events.length === 1, 5000, 'the event');
    expect(events[0]).toEqual({
      type: 'chat-joined',
      channel: 'telegram',
      chatId: '-100777',
      chatName: 'Sales',
      isDirect: false,
      byName: 'Alice',
    });
  });

  it('reports a group upgraded to a supergroup as a chat-moved event, from either service message', async () => {
    const { api, events, received } = await start();
    const service = (chat: { id: number; type: string }, extra: Record<string, number>) =>
      api.pushUpdate({
        message: { message_id: 7, date: 0, chat: { ...chat, title: 'Sales' }, ...extra },
      } as never);
    service({ id: -4001, type: 'group' }, { migrate_to_chat_id: -1004001 });
    service({ id: -1004001, type: 'supergroup' }, { migrate_from_chat_id: -4001 });
    await eventually(() => events.length === 2, 5000, 'the events');
    const moved = { type: 'chat-moved', channel: 'telegram', fromChatId: '-4001', toChatId: '-1004001' };
    expect(events).toEqual([moved, moved]);
    // Service messages are not chat messages.
    expect(received).toEqual([]);
  });

  it('a reply refused because the group became a supergroup reports the move and is worth retrying', async () => {
    const { api, channel, events } = await start();
    api.failNext('sendMessage', {
      errorCode: 400,
      description: 'Bad Request: group chat was upgraded to a supergroup chat',
      migrateToChatId: -1004001,
    });
    const result = await channel.send({ chatId: '-4001', text: 'the weekly numbers', idempotencyKey: 'k1' });
    expect(result).toMatchObject({ status: 'failed', isRetryable: true });
    expect(events).toEqual([
      { type: 'chat-moved', channel: 'telegram', fromChatId: '-4001', toChatId: '-1004001' },
    ]);
    // Any other 400 stays final and moves nothing.
    api.failNext('sendMessage', { errorCode: 400, description: 'Bad Request: chat not found' });
    expect(await channel.send({ chatId: '-4001', text: 'x', idempotencyKey: 'k2' })).toMatchObject({
      status: 'failed',
      isRetryable: false,
    });
    expect(events).toHaveLength(1);
  });

  describe('media', () => {
    let store: Store;
    let dataDir: string;
    const setupGroups = () => {
      dataDir = tempDir();
      store = openStore(':memory:');
      cleanups.push(async () => store.close());
      for (const [folder, chatId] of [
        ['sales', String(GROUP)],
        ['other', '-100999'],
      ] as const) {
        registerGroup(
          store,
          dataDir,
          { folder, name: folder, chat: { channel: 'telegram', chatId }, isDirect: false, trigger: 'always' },
          0,
        );
      }
      return createMediaSaver({
        dataDir,
        store,
        maxBytes: 1024,
        now: () => Date.UTC(2026, 10, 25),
        log: silentLogger(),
      });
    };

    it('a photo in a registered group is saved into that group folder (only) and named in the text', async () => {
      const media = setupGroups();
      const { api, received } = await start({ media });
      const small = api.addFile(Buffer.from('tiny'), { path: 'photos/a.jpg' });
      const big = api.addFile(Buffer.alloc(900, 1), { path: 'photos/b.jpg' });
      api.pushMessage({
        chatId: GROUP,
        caption: 'look',
        photo: [
          { file_id: small, file_unique_id: 's', width: 90, height: 90, file_size: 4 },
          { file_id: big, file_unique_id: 'b', width: 800, height: 800, file_size: 900 },
        ],
      });
      await eventually(() => received.length === 1, 5000, 'the photo message');
      const [line, caption] = received[0]?.text.split('\n') ?? [];
      expect(line).toMatch(/^\[photo saved: media\/2026-11-25-[0-9a-f]{12}\.jpg\]$/);
      expect(caption).toBe('look');
      const saved = readdirSync(join(dataDir, 'groups', 'sales', 'media'));
      expect(saved).toHaveLength(1);
      expect(readFileSync(join(dataDir, 'groups', 'sales', 'media', saved[0] as string)).length).toBe(900);
      expect(existsSync(join(dataDir, 'groups', 'other', 'media'))).toBe(false);
    });

    it('media from an unregistered chat is never downloaded', async () => {
      const media = setupGroups();
      const { api, received } = await start({ media });
      const fileId = api.addFile(Buffer.from('secret'));
      api.pushMessage({
        chatId: -100555,
        document: { file_id: fileId, file_unique_id: 'u', file_name: 'x.pdf' },
      });
      await eventually(() => received.length === 1, 5000, 'the message');
      expect(api.calls).not.toContain('getFile');
    });

    it('a document over the size cap is not downloaded and the agent is told why', async () => {
      const media = setupGroups();
      const { api, received } = await start({ media });
      const fileId = api.addFile(Buffer.alloc(10), { reportedSize: 5000 });
      api.pushMessage({
        chatId: GROUP,
        document: { file_id: fileId, file_unique_id: 'u', file_name: '../../other/evil.sh', file_size: 5000 },
      });
      await eventually(() => received.length === 1, 5000, 'the message');
      expect(received[0]?.text).toBe(
        '[document "../../other/evil.sh" not saved: too large (5 KB; the limit is 1 KB)]',
      );
      expect(api.calls).not.toContain('getFile');
    });

    it('a voice note is saved with a generated name, never the sender-chosen one', async () => {
      const media = setupGroups();
      const { api, received } = await start({ media });
      const fileId = api.addFile(Buffer.from('OggS'), { path: 'voice/file_1.oga' });
      api.pushMessage({
        chatId: GROUP,
        voice: { file_id: fileId, file_unique_id: 'v', duration: 2, mime_type: 'audio/ogg', file_size: 4 },
      });
      await eventually(() => received.length === 1, 5000, 'the message');
      expect(received[0]?.text).toMatch(/^\[voice saved: media\/2026-11-25-[0-9a-f]{12}\.ogg\]$/);
    });
  });

  it('sends a file as a photo or a document, with a formatted caption', async () => {
    const { api, channel } = await start();
    const dir = tempDir();
    writeFileSync(join(dir, 'chart.png'), Buffer.from('PNGDATA'));
    writeFileSync(join(dir, 'report.pdf'), Buffer.from('%PDF-1.4'));
    expect(await channel.sendFile?.(String(GROUP), join(dir, 'chart.png'), 'the **chart**')).toMatchObject({
      status: 'sent',
    });
    expect(await channel.sendFile?.(String(GROUP), join(dir, 'report.pdf'))).toMatchObject({
      status: 'sent',
    });
    expect(api.sent.map((record) => [record.method, record.fileName, record.caption])).toEqual([
      ['sendPhoto', 'chart.png', 'the <b>chart</b>'],
      ['sendDocument', 'report.pdf', undefined],
    ]);
    expect(api.sent[1]?.fileBytes?.toString()).toBe('%PDF-1.4');
  });

  it('refuses to send a file through a symlink', async () => {
    const { api, channel } = await start();
    const dir = tempDir();
    writeFileSync(join(dir, 'secret.txt'), 'token');
    symlinkSync(join(dir, 'secret.txt'), join(dir, 'link.txt'));
    expect(await channel.sendFile?.(String(GROUP), join(dir, 'link.txt'))).toMatchObject({
      status: 'failed',
      isRetryable: false,
    });
    expect(api.sent).toHaveLength(0);
  });
});

describe('telegram in a running host', () => {
  it('a mention in a registered group reaches the agent, its Markdown reply arrives as HTML; strangers get a code', async () => {
    const api = await startFakeTelegramApi();
    const env = {
      WARREN_TELEGRAM_BOT_TOKEN: api.token,
      WARREN_TELEGRAM_API_ROOT: api.url,
      WARREN_LOCAL_CHAT: 'false',
    };
    const runner = new FakeAgentRunner({ autoReply: () => 'Sure, **done**.' });
    const dataDir = tempDir();
    const h = await startTestWarren({
      runner,
      env,
      dataDir,
      channels: (context) => {
        const factory = channelFactories.find((entry) => entry.name === 'telegram');
        const config = loadConfig({ env: { WARREN_DATA_DIR: dataDir, ...env }, cwd: dataDir });
        const channel = factory?.create({
          ...context,
          config,
          log: silentLogger(),
          localToken: 'unused-local-token',
        });
        return channel ? [channel] : [];
      },
    });
    try {
      registerGroup(
        h.warren.store,
        h.dataDir,
        {
          folder: 'sales',
          name: 'Sales',
          chat: { channel: 'telegram', chatId: String(GROUP) },
          isDirect: false,
          trigger: 'mention',
        },
        Date.now(),
      );
      api.pushMessage({ chatId: GROUP, text: 'lunch?' });
      api.pushMessage({
        chatId: GROUP,
        text: `@${FAKE_BOT.username} book a table`,
        entities: [{ type: 'mention', offset: 0, length: FAKE_BOT.username.length + 1 }],
      });
      await eventually(() => api.textsTo(GROUP).length === 1, 5000, 'the reply at the Bot API');
      expect(api.sent[0]).toMatchObject({ text: 'Sure, <b>done</b>.', parseMode: 'HTML' });
      expect(runner.sessions[0]?.prompts[0]?.prompt).toMatch(/lunch\?[\s\S]*book a table/);
      expect(api.chatActions).toContainEqual({ chatId: String(GROUP), action: 'typing' });
      api.pushMessage({ chatId: 999, text: 'who are you?', from: { id: 999, first_name: 'Stranger' } });
      await eventually(() => /code: /.test(api.textsTo(999)[0] ?? ''), 5000, 'the pairing code');
      expect(runner.sessions).toHaveLength(1);
      expect(h.warren.store.channels.getCursor('telegram', 'update-offset')).not.toBeNull();
      const state = h.warren.store.channels.states().find((stored) => stored.channel === 'telegram')?.state;
      expect(state).toEqual({ status: 'connected' });
    } finally {
      await h.stop();
      await api.close();
    }
  });
});
