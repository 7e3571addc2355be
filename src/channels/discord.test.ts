import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/fake-agent-runner.js';
import { startFakeDiscordApi } from '../../test/fake-discord-api.js';
import { tempDir } from '../../test/harness.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import { openStore } from '../store/store.js';
import type { InboundMessage } from '../types.js';
import { createDiscordChannel, DISCORD_MAX_TEXT } from './discord.js';
import { createMediaSaver, type MediaSaver } from './media.js';
import { memoryLedger } from './outbound.js';

const TEAM = '100000000000000001';
const OTHER = '100000000000000002';
const THREAD = '100000000000000011';
const DM = '100000000000000021';

describe('discord channel', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(
    options: { media?: MediaSaver | null; token?: string; allowMessageContent?: boolean } = {},
  ) {
    const api = await startFakeDiscordApi({ allowMessageContent: options.allowMessageContent });
    api.addChannel(TEAM, 'team');
    api.addChannel(OTHER, 'other');
    api.addThread(THREAD, TEAM, 'lunch plans');
    api.addDm(DM);
    const channel = createDiscordChannel({
      token: options.token ?? api.token,
      apiRoot: api.url,
      log: silentLogger(),
      media: options.media ?? null,
      maxMediaBytes: 1024 * 1024,
      sentParts: memoryLedger(),
      cursors: { load: () => null, save: () => {} },
      retryBaseMs: 20,
      retryMaxMs: 200,
    });
    const received: InboundMessage[] = [];
    const states: ChannelState[] = [];
    cleanups.push(() => api.close());
    cleanups.push(() => channel.disconnect());
    await channel.connect({
      onMessage: (message) => received.push(message),
      onStateChange: (state) => states.push(state),
    });
    return { api, channel, received, states };
  }

  it('reads mentions, DMs and threads (addressed to the parent channel); bots and its own posts are left out', async () => {
    const { api, channel, received } = await start();
    api.pushMessage({ channelId: TEAM, content: 'book a table', mentionsBot: true });
    api.pushMessage({ channelId: THREAD, content: 'sushi?' });
    api.pushMessage({ channelId: DM, content: 'hi' });
    const otherBot = { id: '700000000000000009', username: 'helper' };
    api.pushMessage({ channelId: TEAM, content: 'from a bot', author: otherBot, isBot: true });
    await channel.send({ chatId: TEAM, text: 'my own post', idempotencyKey: 'own' });
    api.pushMessage({ channelId: TEAM, content: 'after' });
    await eventually(() => received.some((message) => message.text === 'after'), 5000, 'the messages');
    expect(received.map((message) => [message.text, message.isMention, message.isDirect])).toEqual([
      ['@warren book a table', true, false],
      ['sushi?', false, false],
      ['hi', false, true],
      ['after', false, false],
    ]);
    expect(received[0]).toMatchObject({ chatId: TEAM, chatName: 'team', senderName: 'Ada' });
    expect(received[0]?.threadId).toBeUndefined();
    expect(received[1]).toMatchObject({ chatId: TEAM, threadId: THREAD, chatName: 'team' });
    expect(received[2]).toMatchObject({ chatId: DM, isDirect: true });
  });

  it('replies into the thread (its own channel id), a long reply in parts of 2,000 with keys a retry honours', async () => {
    const { api, channel } = await start();
    const text = Array.from({ length: 900 }, (_, index) => `word${index}`).join(' ');
    api.failNext('POST /channels/:id/messages', { skip: 1 });
    const first = await channel.send({ chatId: TEAM, text, idempotencyKey: 'reply-1', threadId: THREAD });
    expect(first).toMatchObject({ status: 'failed', isRetryable: true });
    const second = await channel.send({ chatId: TEAM, text, idempotencyKey: 'reply-1', threadId: THREAD });
    expect(second.status).toBe('sent');
    expect(api.posts.length).toBeGreaterThanOrEqual(3);
    expect(api.posts.every((post) => post.channelId === THREAD)).toBe(true);
    for (const post of api.posts) expect(post.content.length).toBeLessThanOrEqual(DISCORD_MAX_TEXT);
    expect(api.textsTo(THREAD).join(' ').split(/\s+/)).toEqual(text.split(' '));
    expect(api.textsTo(TEAM)).toEqual([]);
  });

  it('sends Discord Markdown that pings nobody; a part Discord refuses goes again as plain text', async () => {
    const { api, channel } = await start();
    await channel.send({
      chatId: TEAM,
      text: '## Plan\n| a | b |\n|---|---|\n| 1 | 2 |\n**go** @everyone',
      idempotencyKey: 'a',
    });
    expect(api.posts[0]?.content).toBe(
      '**Plan**\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n```\n**go** @everyone',
    );
    expect(api.posts[0]?.allowedMentions).toEqual({ parse: [] });
    api.failNext('POST /channels/:id/messages', { status: 400, code: 50035, message: 'Invalid Form Body' });
    expect(await channel.send({ chatId: TEAM, text: 'a **bold** claim', idempotencyKey: 'b' })).toMatchObject(
      {
        status: 'sent',
      },
    );
    expect(api.posts[1]?.content).toBe('a bold claim');
    expect(api.posts).toHaveLength(2);
    expect(
      await channel.send({ chatId: '100000000000000099', text: 'hi', idempotencyKey: 'c' }),
    ).toMatchObject({
      status: 'failed',
      isRetryable: false,
    });
  });

  it('a dropped connection is resumed: what came meanwhile is replayed once; a dead session identifies and catches up', async () => {
    const { api, received, states } = await start();
    api.pushMessage({ channelId: TEAM, content: 'one' });
    await eventually(() => received.length === 1, 5000, 'the first message');
    api.dropConnection();
    api.pushMessage({ channelId: TEAM, content: 'two' });
    await eventually(() => received.length === 2 && api.resumes === 1, 10_000, 'the replay on resume');
    expect(api.identifies).toBe(1);
    // Discord forgot the session: the Resume is refused (op 9), the bot identifies again and fetches what it missed.
    api.invalidateSession();
    api.pushMessage({ channelId: THREAD, content: 'three' });
    api.dropConnection();
    await eventually(() => received.length === 3, 10_000, 'the message caught up after identifying again');
    api.pushMessage({ channelId: TEAM, content: 'four' });
    await eventually(() => received.length === 4, 5000, 'a live message on the new session');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received.map((message) => message.text)).toEqual(['one', 'two', 'three', 'four']);
    expect(new Set(received.map((message) => message.externalId)).size).toBe(4);
    expect(received[2]).toMatchObject({ chatId: TEAM, threadId: THREAD });
    expect(api.identifies).toBe(2);
    expect(states.map((state) => state.status)).toContain('reconnecting');
    expect(states.at(-1)).toEqual({ status: 'connected' });
  });

  it('a refused token or a refused Message Content intent is logged out with the fix; a missing token is named', async () => {
    const refused = await start({ token: 'MTAwMDAwMDAwMDAwMDAwMDAx.GwRoNg.wrong-token-wrong-token-00' });
    expect(refused.states.at(-1)).toMatchObject({ status: 'logged-out' });
    expect(JSON.stringify(refused.states.at(-1))).toContain('WARREN_DISCORD_BOT_TOKEN');
    const intents = await start({ allowMessageContent: false });
    await eventually(() => intents.states.at(-1)?.status === 'logged-out', 5000, 'logged out');
    expect(JSON.stringify(intents.states.at(-1))).toContain('Message Content intent');
    const missing = await start({ token: '' });
    expect(missing.states.at(-1)).toEqual({
      status: 'logged-out',
      reason: 'WARREN_DISCORD_BOT_TOKEN is not set',
    });
  });

  it('types in the thread being answered, and uploads a file with its caption', async () => {
    const { api, channel, received } = await start();
    api.pushMessage({ channelId: THREAD, content: 'think' });
    await eventually(() => received.length === 1, 5000, 'the message');
    await channel.setTyping?.(TEAM, true);
    await channel.setTyping?.(TEAM, false);
    expect(api.typing).toEqual([THREAD]);
    const dir = tempDir();
    writeFileSync(join(dir, 'report.pdf'), '%PDF-1.4');
    expect(await channel.sendFile?.(TEAM, join(dir, 'report.pdf'), 'the **report**')).toMatchObject({
      status: 'sent',
    });
    expect(api.posts.at(-1)).toMatchObject({ channelId: TEAM, content: 'the **report**' });
    expect(api.posts.at(-1)?.files.map((file) => [file.name, file.bytes.toString()])).toEqual([
      ['report.pdf', '%PDF-1.4'],
    ]);
  });

  describe('files received', () => {
    const setupGroups = () => {
      const dataDir = tempDir();
      const store = openStore(':memory:');
      cleanups.push(async () => store.close());
      for (const [folder, chatId] of [
        ['sales', TEAM],
        ['other', OTHER],
      ] as const) {
        registerGroup(
          store,
          dataDir,
          { folder, name: folder, chat: { channel: 'discord', chatId }, isDirect: false, trigger: 'always' },
          0,
        );
      }
      const media = createMediaSaver({
        dataDir,
        store,
        maxBytes: 1024,
        now: () => Date.UTC(2026, 10, 25),
        log: silentLogger(),
      });
      return { dataDir, media };
    };

    it("are saved into the folder of the group that owns the channel (a thread's parent), and no other", async () => {
      const { dataDir, media } = setupGroups();
      const { api, received } = await start({ media });
      const chart = api.addAttachment(Buffer.from('PNGDATA'), {
        filename: 'chart.png',
        contentType: 'image/png',
      });
      const notes = api.addAttachment(Buffer.from('notes'), {
        filename: 'notes.txt',
        contentType: 'text/plain',
      });
      api.pushMessage({ channelId: THREAD, content: 'look', attachments: [chart, notes] });
      await eventually(() => received.length === 1, 5000, 'the message');
      const [first, second, text] = received[0]?.text.split('\n') ?? [];
      expect(first).toMatch(/^\[photo "chart\.png" saved: media\/2026-11-25-[0-9a-f]{12}\.png\]$/);
      expect(second).toMatch(/^\[document "notes\.txt" saved: media\/2026-11-25-[0-9a-f]{12}\.txt\]$/);
      expect(text).toBe('look');
      const saved = readdirSync(join(dataDir, 'groups', 'sales', 'media'));
      const bytes = saved.map((name) =>
        readFileSync(join(dataDir, 'groups', 'sales', 'media', name)).toString(),
      );
      expect(bytes.sort()).toEqual(['PNGDATA', 'notes']);
      expect(existsSync(join(dataDir, 'groups', 'other', 'media'))).toBe(false);
    });

    it('from an unregistered channel, over the size cap, or off Discord are never downloaded', async () => {
      const { media } = setupGroups();
      const { api, received } = await start({ media });
      api.addChannel('100000000000000031', 'strange');
      const secret = api.addAttachment(Buffer.from('secret'), {
        filename: 'x.pdf',
        contentType: 'application/pdf',
      });
      api.pushMessage({ channelId: '100000000000000031', attachments: [secret] });
      const big = api.addAttachment(Buffer.alloc(10), { filename: 'big.zip', reportedSize: 5000 });
      api.pushMessage({ channelId: TEAM, attachments: [big] });
      const elsewhere = {
        ...api.addAttachment(Buffer.from('x'), { filename: 'y.txt' }),
        url: 'http://192.0.2.1/y.txt',
      };
      api.pushMessage({ channelId: TEAM, attachments: [elsewhere] });
      await eventually(() => received.length === 3, 5000, 'the messages');
      expect(received[0]?.text).toBe('[document "x.pdf" not saved: the chat is not registered]');
      expect(received[1]?.text).toBe('[document "big.zip" not saved: too large (5 KB; the limit is 1 KB)]');
      expect(received[2]?.text).toBe('[document "y.txt" not saved: the download failed]');
      expect(api.calls).not.toContain('GET attachment');
    });
  });
});
