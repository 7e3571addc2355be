import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeChannelContract } from '../../test/channel-contract.js';
import { eventually } from '../../test/fake-agent-runner.js';
import { FakeWhatsApp, incomingMessage } from '../../test/fake-baileys-socket.js';
import { tempDir } from '../../test/harness.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import { openStore } from '../store/store.js';
import type { Channel, ChatEvent, InboundMessage } from '../types.js';
import { createMediaSaver, type MediaSaver } from './media.js';
import { memoryLedger } from './outbound.js';
import { createWhatsAppChannel, messageIdFor } from './whatsapp.js';

const GROUP = '120363012345678901@g.us';
const PERSON = '4915112345678@s.whatsapp.net';

function makeChannel(
  fake: FakeWhatsApp,
  options: { media?: MediaSaver | null; phoneNumber?: string; onQr?: (qr: string) => void } = {},
): Channel {
  return createWhatsAppChannel({
    connector: fake,
    log: silentLogger(),
    media: options.media ?? null,
    sentParts: memoryLedger(),
    phoneNumber: options.phoneNumber,
    onQr: options.onQr,
    retryBaseMs: 10,
    retryMaxMs: 100,
    connectTimeoutMs: 2000,
    typingIntervalMs: 50,
  });
}

describeChannelContract('whatsapp (fake Baileys socket)', async () => {
  const fake = new FakeWhatsApp();
  return {
    channel: makeChannel(fake),
    chatId: GROUP,
    inject: (text) => void fake.deliver(incomingMessage({ jid: GROUP, text, participant: PERSON })),
    sentTexts: () => fake.textsTo(GROUP),
    typingCount: () =>
      fake.presence.filter((entry) => entry.jid === GROUP && entry.presence === 'composing').length,
    failNextSend: (options = {}) => fake.failNextSend(options),
    dropConnection: () => fake.drop(),
    close: async () => {},
  };
});

describe('whatsapp channel', () => {
  const channels: Channel[] = [];
  afterEach(async () => {
    for (const channel of channels.splice(0)) await channel.disconnect();
  });

  async function start(fake = new FakeWhatsApp(), options: Parameters<typeof makeChannel>[1] = {}) {
    const channel = makeChannel(fake, options);
    channels.push(channel);
    const received: InboundMessage[] = [];
    const states: ChannelState[] = [];
    const events: ChatEvent[] = [];
    await channel.connect({
      onMessage: (message) => received.push(message),
      onStateChange: (state) => states.push(state),
      onChatEvent: (event) => events.push(event),
    });
    return { fake, channel, received, states, events };
  }

  it('tells group chats from direct chats, and names the sender and the group', async () => {
    const fake = new FakeWhatsApp();
    fake.groupSubjects.set(GROUP, 'Bakery team');
    const { received } = await start(fake);
    fake.deliver(
      incomingMessage({
        jid: GROUP,
        text: 'in the group',
        participant: '4917700000000:2@s.whatsapp.net',
        pushName: 'Ana',
      }),
    );
    fake.deliver(incomingMessage({ jid: PERSON, text: 'just us', pushName: 'Bo' }));
    await eventually(() => received.length === 2, 2000, 'two messages');
    expect(received[0]).toMatchObject({
      chatId: GROUP,
      isDirect: false,
      chatName: 'Bakery team',
      senderId: '4917700000000@s.whatsapp.net',
      senderName: 'Ana',
    });
    expect(received[1]).toMatchObject({ chatId: PERSON, isDirect: true, senderId: PERSON, senderName: 'Bo' });
  });

  it('a mention of the bot (by number or LID) or a reply to it is a mention', async () => {
    const { fake, received } = await start();
    fake.deliver(
      incomingMessage({
        jid: GROUP,
        text: '@4915100000000 hi',
        mentionedJid: ['4915100000000@s.whatsapp.net'],
      }),
    );
    fake.deliver(incomingMessage({ jid: GROUP, text: '@99887766 hi', mentionedJid: ['99887766@lid'] }));
    fake.deliver(
      incomingMessage({ jid: GROUP, text: '@someone', mentionedJid: ['4917711111111@s.whatsapp.net'] }),
    );
    await eventually(() => received.length === 3, 2000, 'three messages');
    expect(received.map((message) => message.isMention)).toEqual([true, true, false]);
  });

  it('ignores our own messages, status updates and reactions', async () => {
    const { fake, received } = await start();
    const own = incomingMessage({ jid: GROUP, text: 'from me' });
    own.key.fromMe = true;
    fake.deliver(own);
    fake.deliver(incomingMessage({ jid: 'status@broadcast', text: 'my story' }));
    const reaction = incomingMessage({ jid: GROUP });
    reaction.message = { reactionMessage: { text: '👍' } };
    fake.deliver(reaction);
    fake.deliver(incomingMessage({ jid: GROUP, text: 'real' }));
    await eventually(() => received.length === 1, 2000, 'the real message');
    expect(received[0]?.text).toBe('real');
  });

  it('formats Markdown as WhatsApp marks and sends with an id derived from the idempotency key', async () => {
    const { fake, channel } = await start();
    await channel.send({
      chatId: GROUP,
      text: '**Done**, see _notes_ and [site](https://x.test)',
      idempotencyKey: 'r1',
    });
    expect(fake.sent[0]).toMatchObject({
      text: '*Done*, see _notes_ and site (https://x.test)',
      messageId: messageIdFor('r1#1'),
    });
  });

  it('a send repeated after a crash between WhatsApp taking a part and its record carries the same message id', async () => {
    const fake = new FakeWhatsApp();
    const reply = { chatId: GROUP, text: 'the answer', idempotencyKey: 'r9' };
    const before = await start(fake);
    expect(await before.channel.send(reply)).toMatchObject({ status: 'sent' });
    await before.channel.disconnect();
    // The host died before it recorded the send (a fresh ledger: nothing recorded); after the restart the outbox
    // sends the same reply again.
    const after = await start(fake);
    expect(await after.channel.send(reply)).toMatchObject({ status: 'sent' });
    const ids = fake.sent.filter((sent) => sent.jid === GROUP).map((sent) => sent.messageId);
    expect(ids).toHaveLength(2);
    expect(new Set(ids)).toEqual(new Set([messageIdFor('r9#1')]));
  });

  it('refuses to send to something that is not a WhatsApp chat id, for good', async () => {
    const { channel } = await start();
    expect(await channel.send({ chatId: 'telegram-chat', text: 'x', idempotencyKey: 'k' })).toMatchObject({
      status: 'failed',
      isRetryable: false,
    });
  });

  it('logged out by the phone: clears the stored keys, stops reconnecting, says pairing is needed', async () => {
    const { fake, states } = await start();
    await eventually(() => states.at(-1)?.status === 'connected', 2000, 'connected');
    const socketsBefore = fake.sockets.length;
    fake.drop(401);
    await eventually(() => states.at(-1)?.status === 'logged-out', 2000, 'logged out');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.sockets.length).toBe(socketsBefore);
    expect(fake.authClears).toBe(1);
    expect(states.at(-1)).toMatchObject({ reason: expect.stringMatching(/pair again/) });
  });

  it('reconnects with backoff and says so while reconnecting', async () => {
    const { fake, states } = await start();
    fake.drop(428);
    await eventually(() => states.some((state) => state.status === 'reconnecting'), 2000, 'reconnecting');
    await eventually(() => states.at(-1)?.status === 'connected', 2000, 'connected again');
    expect(fake.sockets.length).toBe(2);
  });

  it('unpaired: shows a QR code, then connects once the phone links the device', async () => {
    const fake = new FakeWhatsApp();
    fake.isLinked = false;
    const qrs: string[] = [];
    const { states } = await start(fake, { onQr: (qr) => qrs.push(qr) });
    expect(qrs).toEqual(['fake-qr-1']);
    expect(states.at(-1)).toMatchObject({ status: 'logged-out', reason: expect.stringMatching(/QR code/) });
    fake.completePairing();
    await eventually(() => states.at(-1)?.status === 'connected', 2000, 'connected after pairing');
  });

  it('unpaired with a phone number: asks for a pairing code and shows it in the state', async () => {
    const fake = new FakeWhatsApp();
    fake.isLinked = false;
    const { states } = await start(fake, { phoneNumber: '4915112345678' });
    await eventually(() => states.at(-1)?.status === 'logged-out', 2000, 'pairing state');
    expect(fake.pairingRequests).toEqual(['4915112345678']);
    expect(states.at(-1)).toMatchObject({ reason: expect.stringContaining('ABCD-1234') });
  });

  it('pairing that times out gives up until the next start', async () => {
    const fake = new FakeWhatsApp();
    fake.isLinked = false;
    const { states } = await start(fake, { onQr: () => {} });
    fake.sockets.at(-1)?.close(408);
    await eventually(() => JSON.stringify(states.at(-1)).includes('timed out'), 2000, 'timed out');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fake.sockets.length).toBe(1);
  });

  it('a connection lost to a timeout (408) once paired is retried, not taken for a pairing timeout', async () => {
    const fake = new FakeWhatsApp();
    const { states } = await start(fake);
    fake.drop(408);
    await eventually(
      () => states.at(-1)?.status === 'connected' && fake.sockets.length === 2,
      2000,
      'reconnected',
    );
  });

  it('reports being added to a group', async () => {
    const { fake, events } = await start();
    fake.current?.emit('groups.upsert', [{ id: GROUP, subject: 'Bakery team', participants: [] }]);
    expect(events).toEqual([
      { type: 'chat-joined', channel: 'whatsapp', chatId: GROUP, chatName: 'Bakery team', isDirect: false },
    ]);
  });

  it('saves an image into the folder of the group that owns the chat, and names it in the text', async () => {
    const dataDir = tempDir();
    const store = openStore(':memory:');
    for (const [folder, chatId] of [
      ['bakery', GROUP],
      ['family', '120363099999999999@g.us'],
    ] as const) {
      registerGroup(
        store,
        dataDir,
        { folder, name: folder, chat: { channel: 'whatsapp', chatId }, isDirect: false, trigger: 'always' },
        0,
      );
    }
    const media = createMediaSaver({
      dataDir,
      store,
      maxBytes: 1000,
      now: () => Date.UTC(2026, 10, 25),
      log: silentLogger(),
    });
    const { fake, received } = await start(new FakeWhatsApp(), { media });
    const photo = incomingMessage({
      jid: GROUP,
      text: 'our cake',
      image: { mimetype: 'image/jpeg', fileLength: 5 },
    });
    fake.media.set(photo.key.id as string, Buffer.from('JPEG!'));
    fake.deliver(photo);
    const voice = incomingMessage({ jid: GROUP, voice: { fileLength: 5000 } });
    fake.deliver(voice);
    await eventually(() => received.length === 2, 2000, 'two messages');
    expect(received[0]?.text).toMatch(/^\[photo saved: media\/2026-11-25-[0-9a-f]{12}\.jpg\]\nour cake$/);
    expect(received[1]?.text).toBe('[voice not saved: too large (5 KB; the limit is 1 KB)]');
    expect(readdirSync(join(dataDir, 'groups', 'bakery', 'media'))).toHaveLength(1);
    expect(readdirSync(join(dataDir, 'groups', 'family'))).not.toContain('media');
    store.close();
  });

  it('sends an image file as an image and anything else as a document', async () => {
    const { fake, channel } = await start();
    const dir = tempDir();
    writeFileSync(join(dir, 'photo.jpg'), 'JPEG');
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    expect(await channel.sendFile?.(GROUP, join(dir, 'photo.jpg'), '**new** menu')).toMatchObject({
      status: 'sent',
    });
    expect(await channel.sendFile?.(PERSON, join(dir, 'notes.txt'))).toMatchObject({ status: 'sent' });
    expect(fake.sent[0]?.content).toMatchObject({ image: Buffer.from('JPEG'), caption: '*new* menu' });
    expect(fake.sent[1]?.content).toMatchObject({
      document: Buffer.from('hello'),
      fileName: 'notes.txt',
      mimetype: 'text/plain',
    });
  });
});
