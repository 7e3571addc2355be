// Letting new chats in: an unknown chat is told to the owner (nothing of it stored); an unknown person writing
// directly gets a one-time pairing code, and nothing they send reaches an agent until the owner approves it.
import { randomInt } from 'node:crypto';
import type { Logger } from '../log.js';
import { type ChatAddress, formatChatAddress } from '../store/records.js';
import { type AuditEntry, type PairingRequest, type Store, StoreError } from '../store/store.js';
import type { ChatJoinedEvent, ChatMovedEvent, InboundMessage } from '../types.js';
import type { AdminNotifier } from './admin-notices.js';
import { registerGroup, shareGroup } from './registration.js';

/** No 0/O, 1/I/L: a code read out over the phone survives. 32^8 codes. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const newPairingCode = () =>
  Array.from({ length: 8 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');

/** "abcd-efgh", "ABCD EFGH" → "ABCDEFGH". */
export const normalizeCode = (input: string) => input.replace(/[\s-]/g, '').toUpperCase();
export const formatCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

/** A folder name for a person's direct chat: channel and id, made a valid folder ("telegram-5551234"). */
function defaultFolderFor(store: Store, request: PairingRequest): string {
  const base = `${request.channel}-${request.chatId.split('@')[0]}`
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .slice(0, 56);
  let folder = base || 'direct';
  for (let suffix = 2; store.groups.byFolder(folder); suffix++) folder = `${base}-${suffix}`;
  return folder;
}

export function createPairing(deps: {
  store: Store;
  dataDir: string;
  assistantName: string;
  log: Logger;
  now(): number;
  audit(entry: AuditEntry): void;
  /** Queues a message to a chat (idempotent by key). */
  enqueue(chat: ChatAddress, key: string, text: string): void;
  notifier: AdminNotifier;
  /** Channels whose unknown direct senders get no code (a personal WhatsApp number: friends must not get one). */
  silentChannels?: readonly string[];
  ttlMs?: number;
  maxPending?: number;
  newCode?: () => string;
}) {
  const { store, notifier, assistantName } = deps;
  const log = deps.log.child({ module: 'pairing' });
  const ttlMs = deps.ttlMs ?? 60 * 60_000;
  const maxPending = deps.maxPending ?? 3;
  const minutes = Math.round(ttlMs / 60_000);
  /** Audits the refusal of what came from a chat no group owns. */
  const refuse = (actor: string, action: string, chat: ChatAddress, reason: string, extra = {}) => {
    const detail = { reason, chat: formatChatAddress(chat), ...extra };
    deps.audit({ groupFolder: null, actor, action, decision: 'deny', detail });
  };
  const denied = (message: InboundMessage, reason: string, extra = {}) =>
    refuse(`${message.channel}:${message.senderId}`, 'inbound-message', message, reason, extra);
  /** Tells the owner, once, how to let in a chat no group owns. */
  function tellUnknownChat(chat: ChatAddress & { name?: string | null }, what: string) {
    const address = formatChatAddress(chat);
    notifier.notify(
      `unknown-chat:${address}`,
      `${what} ${address}${chat.name ? ` (${chat.name})` : ''}, a chat that is not registered. Nothing was ` +
        `stored and no agent ran. To let it in: /register ${address} FOLDER [--trigger mention|always] — or ` +
        `share an existing group: /register ${address} --share FOLDER`,
    );
  }
  /** Chat events must not throw: a failure is logged. */
  const safely = (what: string, channel: string, handle: () => void) => {
    try {
      handle();
    } catch (error) {
      log.error({ err: error, channel }, `${what} not handled`);
    }
  };

  function onUnknownSender(message: InboundMessage): void {
    const now = deps.now();
    if (store.pairing.latestFor(message.channel, message.chatId)?.status === 'denied') {
      denied(message, 'sender was denied pairing');
      return;
    }
    let created: ReturnType<Store['pairing']['create']>;
    try {
      const { channel, chatId, senderId } = message;
      const senderName = message.senderName.slice(0, 100) || 'unknown';
      const code = (deps.newCode ?? newPairingCode)();
      created = store.pairing.create(
        { code, channel, chatId, senderId, senderName },
        { now, ttlMs, maxPending },
      );
    } catch (error) {
      // A code that happens to be taken: the next message from this person tries again.
      log.warn({ err: error }, 'pairing request not created');
      denied(message, 'unknown sender; pairing request failed');
      return;
    }
    if (created.status === 'created') {
      const { code } = created.request;
      denied(message, 'unknown sender; pairing code issued', { code });
      deps.enqueue(
        message,
        `pairing:${code}:code`,
        `Hi! I'm ${assistantName}, and I don't know you yet. To talk with me, ask my owner to approve ` +
          `this code: ${formatCode(code)} (valid for ${minutes} minutes).`,
      );
      notifier.notify(
        `pairing:${code}:admin`,
        `🔑 ${message.senderName} (${formatChatAddress(message)}) wants to talk to ${assistantName}. ` +
          `Nothing they sent was kept. If they tell you the code ${formatCode(code)}, let them in with ` +
          `/approve ${code} (or /approve ${code} FOLDER), or /deny ${code}. The code expires in ${minutes} minutes.`,
      );
    } else if (created.status === 'exists') {
      denied(message, 'unknown sender waiting for pairing approval');
    } else {
      denied(message, 'unknown sender; too many pairing requests pending');
      notifier.notify(
        `pairing-full:${Math.floor(now / ttlMs)}`,
        `⚠️ More people are writing to ${assistantName} directly, but ${maxPending} pairing requests are ` +
          'already waiting, so they got no code. See them with /pending; approve or deny to make room.',
      );
    }
  }

  return {
    /** A message came from a chat no group owns; nothing of it was stored. Must not throw. */
    onUnknownMessage(message: InboundMessage): void {
      safely('unknown chat', message.channel, () => {
        if (!message.isDirect) {
          denied(message, 'chat is not registered');
          const name = store.chats.get(message.channel, message.chatId)?.name;
          tellUnknownChat({ ...message, name }, `📥 ${message.senderName} wrote in`);
        } else if (deps.silentChannels?.includes(message.channel)) {
          denied(message, 'unknown sender ignored (pairing is off for this channel)');
        } else onUnknownSender(message);
      });
    },

    /** The bot was added to a chat. Must not throw. */
    onChatJoined(event: ChatJoinedEvent): void {
      safely('chat-joined', event.channel, () => {
        const chat = store.chats.upsert({ ...event, name: event.chatName, now: deps.now() });
        if (chat.groupId !== null) return;
        const by = event.byName;
        refuse(`${event.channel}:${by ?? 'unknown'}`, 'chat-joined', chat, 'chat is not registered');
        tellUnknownChat(chat, `➕ ${by ?? 'Someone'} added ${assistantName} to`);
      });
    },

    // A chat got a new id (a Telegram group became a supergroup): its registration, replies and tasks follow.
    // Audited either way; a clash with another registered chat is left to a person. Must not throw.
    onChatMoved({ channel, fromChatId, toChatId }: ChatMovedEvent): void {
      safely('chat-moved', channel, () => {
        const outcome = store.channels.moveChat(channel, fromChatId, toChatId, deps.now());
        if (outcome === 'unknown') return;
        const isMoved = outcome === 'moved';
        const [from, to] = [`${channel}:${fromChatId}`, `${channel}:${toChatId}`];
        const groupId = store.chats.get(channel, isMoved ? toChatId : fromChatId)?.groupId;
        const groupFolder = groupId == null ? null : (store.groups.byId(groupId)?.folder ?? null);
        deps.audit({
          groupFolder,
          actor: `${channel}:service`,
          action: 'chat-moved',
          decision: isMoved ? 'allow' : 'deny',
          detail: isMoved ? { from, to } : { from, to, reason: 'the new id is registered to another group' },
        });
        if (isMoved) {
          log.info({ from, to, group: groupFolder }, 'chat moved to a new id');
          return;
        }
        log.warn({ from, to }, 'chat moved to an id that is registered elsewhere; nothing moved');
        notifier.notify(
          `chat-moved:${from}`,
          `⚠️ ${from} now has the id ${to}, which is registered to another group, so its registration did not ` +
            'follow. Remove one of the two with `warren groups remove`, then register the chat again.',
        );
      });
    },

    // Lets the person with this code in: their chat becomes a group (new, or shared). Throws StoreError, with
    // words for the owner, when the code is not waiting or the chat cannot be bound.
    approve(input: { code: string; folder?: string; shareFolder?: string; actor: string }) {
      const now = deps.now();
      const code = normalizeCode(input.code);
      store.pairing.expire(now);
      const request = store.pairing.byCode(code);
      if (request?.status !== 'pending') {
        const why = request?.status === 'expired' ? 'has expired' : 'is not waiting for approval';
        throw new StoreError(`code ${formatCode(code)} ${why} (see /pending or \`warren pairing list\`)`);
      }
      const chat = { channel: request.channel, chatId: request.chatId };
      // One transaction: the request is approved exactly when the chat is bound to a group.
      const group = store.transaction(() => {
        if (!store.pairing.decide(code, 'approved', input.actor, now)) {
          throw new StoreError(`code ${formatCode(code)} expired just now`);
        }
        const { shareFolder } = input;
        if (shareFolder) return shareGroup(store, { chat, folder: shareFolder, isDirect: true }, now);
        const folder = input.folder ?? defaultFolderFor(store, request);
        const direct = { folder, name: request.senderName, chat, isDirect: true, trigger: 'always' as const };
        return registerGroup(store, deps.dataDir, direct, now);
      });
      deps.enqueue(
        chat,
        `pairing:${code}:approved`,
        `✅ You're in! ${assistantName} can talk with you now — please send your message again.`,
      );
      return { group, request: { ...request, status: 'approved' as const } };
    },

    /** Turns the person with this code away; they stay ignored (the owner can still register the chat). */
    deny(input: { code: string; actor: string }): PairingRequest {
      const code = normalizeCode(input.code);
      const request = store.pairing.byCode(code);
      if (!request || !store.pairing.decide(code, 'denied', input.actor, deps.now())) {
        throw new StoreError(`code ${formatCode(code)} is not waiting for approval`);
      }
      return { ...request, status: 'denied' };
    },

    listPending: (): PairingRequest[] => store.pairing.listPending(deps.now()),
  };
}

export type Pairing = ReturnType<typeof createPairing>;
