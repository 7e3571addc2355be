import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner } from '../../test/fake-agent-runner.js';
import { FAKE_SLACK_BOT, type FakeSlackApi, startFakeSlackApi } from '../../test/fake-slack-api.js';
import { startTestWarren, tempDir } from '../../test/harness.js';
import { loadConfig } from '../config.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import { openStore } from '../store/store.js';
import type { InboundMessage } from '../types.js';
import { channelFactories } from './index.js';
import { createMediaSaver, type MediaSaver } from './media.js';
import { memoryLedger, type SentPartsLedger } from './outbound.js';
import { createSlackChannel, SLACK_MAX_TEXT } from './slack.js';

const TEAM = 'C0TEAM';
const mention = `<@${FAKE_SLACK_BOT.userId}>`;

describe('slack channel', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function start(
    options: {
      media?: MediaSaver | null;
      ledger?: SentPartsLedger;
      botToken?: string;
      appToken?: string;
    } = {},
  ) {
    const api = await startFakeSlackApi();
    api.addChannel(TEAM, { name: 'team' });
    const channel = createSlackChannel({
      botToken: options.botToken ?? api.botToken,
      appToken: options.appToken ?? api.appToken,
      apiRoot: api.url,
      log: silentLogger(),
      media: options.media ?? null,
      maxMediaBytes: 1024 * 1024,
      sentParts: options.ledger ?? memoryLedger(),
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

  it('a mention of the app in a channel is a mention; a DM is direct; threads, names and other bots are read right', async () => {
    const { api, received, states } = await start();
    await eventually(() => states.at(-1)?.status === 'connected', 5000, 'connected');
    api.pushMessage({ channel: TEAM, text: `${mention} book a table &amp; a cab` });
    api.pushMessage({ channel: TEAM, text: 'lunch?', threadTs: '1700000000.000001' });
    api.pushMessage({ channel: 'D0ALICE', text: 'hi', channelType: 'im' });
    api.pushMessage({ channel: TEAM, text: 'from another bot', botId: 'B0OTHER' });
    api.pushMessage({ channel: TEAM, text: 'my own post', user: FAKE_SLACK_BOT.userId });
    api.pushMessage({ channel: TEAM, text: 'edited', subtype: 'message_changed' });
    api.pushMessage({ channel: TEAM, text: 'after' });
    await eventually(() => received.some((message) => message.text === 'after'), 5000, 'the messages');
    expect(received.map((message) => [message.text, message.isMention, message.isDirect])).toEqual([
      ['@warren book a table & a cab', true, false],
      ['lunch?', false, false],
      ['hi', false, true],
      ['after', false, false],
    ]);
    expect(received[0]).toMatchObject({
      chatId: TEAM,
      chatName: 'team',
      senderName: 'Alice Archer',
      senderId: 'U0ALICE',
    });
    expect(received[0]?.threadId).toBeUndefined();
    expect(received[1]?.threadId).toBe('1700000000.000001');
  });

  it('replies into the thread it is given, every part of a long one; a retry repeats no part that arrived', async () => {
    const { api, channel } = await start();
    const thread = '1700000000.000042';
    const text = Array.from({ length: 900 }, (_, index) => `word${index}`).join(' ');
    api.failNext('chat.postMessage', 'internal_error', { skip: 1 });
    const first = await channel.send({ chatId: TEAM, text, idempotencyKey: 'reply-1', threadId: thread });
    expect(first).toMatchObject({ status: 'failed', isRetryable: true });
    expect(
      await channel.send({ chatId: TEAM, text, idempotencyKey: 'reply-1', threadId: thread }),
    ).toMatchObject({
      status: 'sent',
    });
    expect(api.posts.length).toBeGreaterThanOrEqual(3);
    expect(api.posts.every((post) => post.threadTs === thread)).toBe(true);
    for (const post of api.posts) expect(post.visibleText.length).toBeLessThanOrEqual(SLACK_MAX_TEXT);
    expect(api.textsTo(TEAM).join(' ').split(/\s+/)).toEqual(text.split(' '));
  });

  it('sends Markdown as mrkdwn; when Slack refuses the blocks, the same part goes again as plain text', async () => {
    const { api, channel } = await start();
    await channel.send({ chatId: TEAM, text: '**Total:** 3 < 4', idempotencyKey: 'a' });
    expect(api.posts[0]).toMatchObject({ mrkdwn: '*Total:* 3 &lt; 4', text: 'Total: 3 < 4' });
    api.failNext('chat.postMessage', 'invalid_blocks');
    expect(await channel.send({ chatId: TEAM, text: 'a **bold** claim', idempotencyKey: 'b' })).toMatchObject(
      {
        status: 'sent',
      },
    );
    expect(api.posts[1]).toMatchObject({ text: 'a bold claim', mrkdwn: undefined, isMrkdwnOff: true });
    expect(api.posts).toHaveLength(2);
  });

  it('a channel the app is not in is a failure the outbox does not retry', async () => {
    const { channel } = await start();
    expect(await channel.send({ chatId: 'C0GONE', text: 'hi', idempotencyKey: 'x' })).toMatchObject({
      status: 'failed',
      isRetryable: false,
      reason: 'channel_not_found',
    });
  });

  it('an envelope whose ack was lost comes again after a drop, with the same id; nothing is lost', async () => {
    const { api, received } = await start();
    await eventually(() => api.connections === 1, 5000, 'a connection');
    api.loseAcks(true);
    api.pushMessage({ channel: TEAM, text: 'one' });
    await eventually(() => received.length === 1, 5000, 'the first delivery');
    api.loseAcks(false);
    api.dropConnection();
    api.pushMessage({ channel: TEAM, text: 'two' });
    await eventually(() => received.length === 3, 10_000, 'the redelivery and the next message');
    expect(received.map((message) => message.text)).toEqual(['one', 'one', 'two']);
    expect(received[1]?.externalId).toBe(received[0]?.externalId);
    await eventually(() => api.unacked === 0, 5000, 'every envelope acknowledged');
  });

  it('reconnects when Slack asks for a refresh, and reports the state', async () => {
    const { api, received, states } = await start();
    await eventually(() => states.at(-1)?.status === 'connected', 5000, 'connected');
    api.askToDisconnect('refresh_requested');
    await eventually(() => api.connections === 2, 5000, 'a second connection');
    api.pushMessage({ channel: TEAM, text: 'still here' });
    await eventually(() => received.length === 1, 5000, 'a message on the new connection');
    expect(states.map((state) => state.status)).toEqual(['connected', 'reconnecting', 'connected']);
  });

  it('a refused token is reported as logged out; a missing one is named', async () => {
    const refused = await start({ appToken: 'xapp-1-wrong-token-wrong' });
    await eventually(() => refused.states.at(-1)?.status === 'logged-out', 5000, 'logged out');
    expect(JSON.stringify(refused.states.at(-1))).toContain('invalid_auth');
    const missing = await start({ appToken: '' });
    expect(missing.states.at(-1)).toEqual({
      status: 'logged-out',
      reason: 'WARREN_SLACK_APP_TOKEN is not set (Slack needs both tokens)',
    });
  });

  it('marks the message being answered with a reaction while the agent works, and removes it after', async () => {
    const { api, channel, received } = await start();
    const ts = api.pushMessage({ channel: TEAM, text: `${mention} think` });
    await eventually(() => received.length === 1, 5000, 'the message');
    await channel.setTyping?.(TEAM, true);
    await channel.setTyping?.(TEAM, true);
    await channel.setTyping?.(TEAM, false);
    expect(api.reactions).toEqual([
      { action: 'add', channel: TEAM, timestamp: ts, name: 'eyes' },
      { action: 'remove', channel: TEAM, timestamp: ts, name: 'eyes' },
    ]);
  });

  it('uploads a file the agent sends, with its caption as mrkdwn', async () => {
    const { api, channel } = await start();
    const dir = tempDir();
    writeFileSync(join(dir, 'report.pdf'), '%PDF-1.4');
    expect(await channel.sendFile?.(TEAM, join(dir, 'report.pdf'), 'the **report**')).toMatchObject({
      status: 'sent',
    });
    expect(api.uploads).toHaveLength(1);
    expect(api.uploads[0]).toMatchObject({
      channel: TEAM,
      fileName: 'report.pdf',
      initialComment: 'the *report*',
    });
    expect(api.uploads[0]?.bytes.toString()).toBe('%PDF-1.4');
  });

  describe('files received', () => {
    const setupGroups = () => {
      const dataDir = tempDir();
      const store = openStore(':memory:');
      cleanups.push(async () => store.close());
      for (const [folder, chatId] of [
        ['sales', TEAM],
        ['other', 'C0OTHER'],
      ] as const) {
        registerGroup(
          store,
          dataDir,
          { folder, name: folder, chat: { channel: 'slack', chatId }, isDirect: false, trigger: 'always' },
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

    it('are saved into the folder of the group that owns the channel, and no other', async () => {
      const { dataDir, media } = setupGroups();
      const { api, received } = await start({ media });
      const chart = api.addFile(Buffer.from('PNGDATA'), { name: 'chart.png', mimetype: 'image/png' });
      const notes = api.addFile(Buffer.from('notes'), {
        name: '../../other/notes.txt',
        mimetype: 'text/plain',
      });
      api.pushMessage({ channel: TEAM, text: 'look', files: [chart, notes] });
      await eventually(() => received.length === 1, 5000, 'the message');
      const [first, second, text] = received[0]?.text.split('\n') ?? [];
      expect(first).toMatch(/^\[photo "chart\.png" saved: media\/2026-11-25-[0-9a-f]{12}\.png\]$/);
      expect(second).toMatch(
        /^\[document "\.\.\/\.\.\/other\/notes\.txt" saved: media\/2026-11-25-[0-9a-f]{12}\.txt\]$/,
      );
      expect(text).toBe('look');
      const saved = readdirSync(join(dataDir, 'groups', 'sales', 'media')).sort();
      expect(saved).toHaveLength(2);
      const bytes = saved.map((name) =>
        readFileSync(join(dataDir, 'groups', 'sales', 'media', name)).toString(),
      );
      expect(bytes.sort()).toEqual(['PNGDATA', 'notes']);
      expect(existsSync(join(dataDir, 'groups', 'other', 'media'))).toBe(false);
    });

    it('from an unregistered channel, or over the size cap, are never downloaded', async () => {
      const { media } = setupGroups();
      const { api, received } = await start({ media });
      const secret = api.addFile(Buffer.from('secret'), { name: 'x.pdf', mimetype: 'application/pdf' });
      api.pushMessage({ channel: 'C0STRANGE', text: '', files: [secret] });
      const big = api.addFile(Buffer.alloc(10), { name: 'big.zip', reportedSize: 5000 });
      api.pushMessage({ channel: TEAM, text: '', files: [big] });
      await eventually(() => received.length === 2, 5000, 'the messages');
      expect(received[0]?.text).toBe('[document "x.pdf" not saved: the chat is not registered]');
      expect(received[1]?.text).toBe('[document "big.zip" not saved: too large (5 KB; the limit is 1 KB)]');
      expect(api.calls).not.toContain('GET file');
    });
  });
});

describe('slack in a running host', () => {
  async function startHost(api: FakeSlackApi, runner: FakeAgentRunner) {
    const env = {
      WARREN_SLACK_BOT_TOKEN: api.botToken,
      WARREN_SLACK_APP_TOKEN: api.appToken,
      WARREN_SLACK_API_ROOT: api.url,
      WARREN_LOCAL_CHAT: 'false',
    };
    const dataDir = tempDir();
    return startTestWarren({
      runner,
      env,
      dataDir,
      channels: (context) => {
        const factory = channelFactories.find((entry) => entry.name === 'slack');
        const config = loadConfig({ env: { WARREN_DATA_DIR: dataDir, ...env }, cwd: dataDir });
        const channel = factory?.create({ ...context, config, log: silentLogger(), localToken: 'unused' });
        return channel ? [channel] : [];
      },
    });
  }

  it('a mention in a thread reaches the agent once and the reply goes into that thread; strangers are handled', async () => {
    const api = await startFakeSlackApi();
    const runner = new FakeAgentRunner({ autoReply: () => 'Sure, **done**.' });
    const h = await startHost(api, runner);
    try {
      registerGroup(
        h.warren.store,
        h.dataDir,
        {
          folder: 'sales',
          name: 'Sales',
          chat: { channel: 'slack', chatId: TEAM },
          isDirect: false,
          trigger: 'mention',
        },
        Date.now(),
      );
      api.addChannel(TEAM, { name: 'team' });
      const thread = api.pushMessage({ channel: TEAM, text: 'where shall we eat?' });
      api.loseAcks(true);
      api.pushMessage({ channel: TEAM, text: `${mention} book a table`, threadTs: thread });
      await eventually(() => api.textsTo(TEAM).length === 1, 5000, 'the reply at Slack');
      // The ack was lost: the envelope comes again on the next connection, and is not answered twice.
      api.loseAcks(false);
      api.dropConnection();
      await eventually(() => api.connections === 2 && api.unacked === 0, 5000, 'the redelivery acknowledged');
      expect(api.posts[0]).toMatchObject({ threadTs: thread, mrkdwn: 'Sure, *done*.' });
      expect(runner.sessions[0]?.prompts[0]?.prompt).toMatch(/where shall we eat\?[\s\S]*book a table/);
      const chat = h.warren.store.chats.get('slack', TEAM);
      expect(h.warren.store.messages.ofChat(chat?.id ?? -1)).toHaveLength(2);

      // An unknown channel: the owner is told (a notice queued for the admin chat); nothing of it is stored.
      api.pushMessage({ channel: 'C0NEW', text: `${mention} hello?` });
      const notices = () => h.warren.store.outbox.list({ limit: 50 }).map((item) => item.text);
      await eventually(() => notices().some((text) => text.includes('slack:C0NEW')), 5000, 'the notice');
      const unknown = h.warren.store.chats.get('slack', 'C0NEW');
      expect(h.warren.store.messages.ofChat(unknown?.id ?? -1)).toEqual([]);
      // A stranger's DM gets a pairing code.
      api.pushMessage({ channel: 'D0STRANGER', text: 'who are you?', channelType: 'im' });
      await eventually(() => /code: /.test(api.textsTo('D0STRANGER')[0] ?? ''), 5000, 'the pairing code');
      expect(runner.sessions).toHaveLength(1);
      const state = h.warren.store.channels.states().find((stored) => stored.channel === 'slack')?.state;
      expect(state).toEqual({ status: 'connected' });
      // The working reaction went on the message being answered.
      expect(api.reactions.some((reaction) => reaction.action === 'add')).toBe(true);
    } finally {
      await h.stop();
      await api.close();
    }
  });
});
