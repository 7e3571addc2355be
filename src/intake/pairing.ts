// Letting new chats in: an unknown chat is told to the owner (nothing of it stored); an unknown person writing
// directly gets a one-time pairing code, and nothing they send reaches an agent until the owner approves it.
import { randomInt } from 'node:crypto';
import type { Logger } from '../log.js';
import type { ChatAddress, Group } from '../store/records.js';
import { type AuditEntry, type PairingRequest, type Store, StoreError } from '../store/store.js';
import type { ChatJoinedEvent, ChatMovedEvent, InboundMessage } from '../types.js';
import type { AdminNotifier } from './admin-notices.js';
import { registerGroup, shareGroup } from './registration.js';

export const PAIRING_TTL_MS = 60 * 60_000;
export const MAX_PENDING_PAIRINGS = 3;
/** No 0/O, 1/I/L: a code read out over the phone survives. 32^8 codes. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 8;

export function newPairingCode(): string {
  let code = '';
  for (let index = 0; index < CODE_LENGTH; index++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** "abcd-efgh", "ABCD EFGH" → "ABCDEFGH". */
export const normalizeCode = (input: string) => input.replace(/[\s-]/g, '').toUpperCase();
export const formatCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

const chatLabel = (chat: ChatAddress & { name?: string | null }) =>
  `${chat.channel}:${chat.chatId}${chat.name ? ` (${chat.name})` : ''}`;

/** A folder name for a person's direct chat: channel and id, made a valid folder ("telegram-5551234"). */
export function defaultFolderFor(store: Store, request: Pick<PairingRequest, 'channel' | 'chatId'>): string {
  const base = `${request.channel}-${request.chatId.split('@')[0]}`
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .slice(0, 56);
  let folder = base || 'direct';
  for (let suffix = 2; store.groups.byFolder(folder); suffix++) folder = `${base}-${suffix}`;
  return folder;
}

export type PairingOutcome =
  | { status: 'approved'; group: Group; request: PairingRequest }
  | { status: 'denied'; request: PairingRequest }
  | { status: 'failed'; reason: string };

export interface PairingDeps {
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
}

export function createPairing(deps: PairingDeps) {
  const log = deps.log.child({ module: 'pairing' });
  const ttlMs = deps.ttlMs ?? PAIRING_TTL_MS;
  const maxPending = deps.maxPending ?? MAX_PENDING_PAIRINGS;
  const minutes = Math.round(ttlMs / 60_000);
  const denied = (message: InboundMessage, reason: string, detail: Record<string, unknown> = {}) =>
    deps.audit({
      groupFolder: null,
      actor: `${message.channel}:${message.senderId}`,
      action: 'inbound-message',
      decision: 'deny',
      detail: { reason, chat: `${message.channel}:${message.chatId}`, ...detail },
    });

  function onUnknownSender(message: InboundMessage): void {
    const now = deps.now();
    const latest = deps.store.pairing.latestFor(message.channel, message.chatId);
    if (latest?.status === 'denied') {
      denied(message, 'sender was denied pairing');
      return;
    }
    let created: ReturnType<Store['pairing']['create']>;
    try {
      created = deps.store.pairing.create(
        {
          code: (deps.newCode ?? newPairingCode)(),
          channel: message.channel,
          chatId: message.chatId,
          senderId: message.senderId,
          senderName: message.senderName.slice(0, 100) || 'unknown',
        },
        { now, ttlMs, maxPending },
      );
    } catch (error) {
      // A code that happens to be taken: the next message from this person tries again.
      log.warn({ err: error }, 'pairing request not created');
      denied(message, 'unknown sender; pairing request failed');
      return;
    }
    if (created.status !== 'created') {
      if (created.status === 'exists') {
        denied(message, 'unknown sender waiting for pairing approval');
        return;
      }
      denied(message, 'unknown sender; too many pairing requests pending');
      deps.notifier.notify(
        `pairing-full:${Math.floor(now / ttlMs)}`,
        `⚠️ More people are writing to ${deps.assistantName} directly, but ${maxPending} pairing requests are ` +
          'already waiting, so they got no code. See them with /pending; approve or deny to make room.',
      );
      return;
    }
    const { code } = created.request;
    denied(message, 'unknown sender; pairing code issued', { code });
    deps.enqueue(
      message,
      `pairing:${code}:code`,
      `Hi! I'm ${deps.assistantName}, and I don't know you yet. To talk with me, ask my owner to approve ` +
        `this code: ${formatCode(code)} (valid for ${minutes} minutes).`,
    );
    deps.notifier.notify(
      `pairing:${code}:admin`,
      `🔑 ${message.senderName} (${message.channel}:${message.chatId}) wants to talk to ${deps.assistantName}. ` +
        `Nothing they sent was kept. If they tell you the code ${formatCode(code)}, let them in with ` +
        `/approve ${code} (or /approve ${code} FOLDER), or /deny ${code}. The code expires in ${minutes} minutes.`,
    );
  }

  function registrationHint(chat: ChatAddress): string {
    const address = `${chat.channel}:${chat.chatId}`;
    return (
      `Nothing was stored and no agent ran. To let it in: /register ${address} FOLDER [--trigger mention|always]` +
      ` — or share an existing group: /register ${address} --share FOLDER`
    );
  }

  return {
    /** A message came from a chat no group owns; nothing of it was stored. Must not throw. */
    onUnknownMessage(message: InboundMessage): void {
      try {
        if (message.isDirect && deps.silentChannels?.includes(message.channel)) {
          denied(message, 'unknown sender ignored (pairing is off for this channel)');
          return;
        }
        if (message.isDirect) {
          onUnknownSender(message);
          return;
        }
        denied(message, 'chat is not registered');
        const name = deps.store.chats.get(message.channel, message.chatId)?.name;
        deps.notifier.notify(
          `unknown-chat:${message.channel}:${message.chatId}`,
          `📥 ${message.senderName} wrote in ${chatLabel({ ...message, name })}, a chat that is not registered. ` +
            registrationHint(message),
        );
      } catch (error) {
        log.error({ err: error, channel: message.channel }, 'unknown chat not handled');
      }
    },

    /** The bot was added to a chat. Must not throw. */
    onChatJoined(event: ChatJoinedEvent): void {
      try {
        const chat = deps.store.chats.upsert({
          channel: event.channel,
          chatId: event.chatId,
          name: event.chatName,
          isDirect: event.isDirect,
          now: deps.now(),
        });
        if (chat.groupId !== null) return;
        deps.audit({
          groupFolder: null,
          actor: `${event.channel}:${event.byName ?? 'unknown'}`,
          action: 'chat-joined',
          decision: 'deny',
          detail: { reason: 'chat is not registered', chat: `${event.channel}:${event.chatId}` },
        });
        deps.notifier.notify(
          `unknown-chat:${event.channel}:${event.chatId}`,
          `➕ ${event.byName ?? 'Someone'} added ${deps.assistantName} to ${chatLabel({ ...event, name: event.chatName })}. ` +
            registrationHint(event),
        );
      } catch (error) {
        log.error({ err: error, channel: event.channel }, 'chat-joined not handled');
      }
    },

    /**
     * The service gave a chat a new id (a Telegram group became a supergroup): its registration, replies and tasks
     * follow it. Audited either way; a clash with another registered chat is left to a person. Must not throw.
     */
    onChatMoved(event: ChatMovedEvent): void {
      try {
        const outcome = deps.store.channels.moveChat(
          event.channel,
          event.fromChatId,
          event.toChatId,
          deps.now(),
        );
        if (outcome === 'unknown') return;
        const from = `${event.channel}:${event.fromChatId}`;
        const to = `${event.channel}:${event.toChatId}`;
        const chat = deps.store.chats.get(
          event.channel,
          outcome === 'moved' ? event.toChatId : event.fromChatId,
        );
        const groupFolder =
          chat?.groupId == null ? null : (deps.store.groups.byId(chat.groupId)?.folder ?? null);
        deps.audit({
          groupFolder,
          actor: `${event.channel}:service`,
          action: 'chat-moved',
          decision: outcome === 'moved' ? 'allow' : 'deny',
          detail:
            outcome === 'moved'
              ? { from, to }
              : { from, to, reason: 'the new id is registered to another group' },
        });
        if (outcome === 'moved') {
          log.info({ from, to, group: groupFolder }, 'chat moved to a new id');
          return;
        }
        log.warn({ from, to }, 'chat moved to an id that is registered elsewhere; nothing moved');
        deps.notifier.notify(
          `chat-moved:${from}`,
          `⚠️ ${from} now has the id ${to}, which is registered to another group, so its registration did not ` +
            'follow. Remove one of the two with `warren groups remove`, then register the chat again.',
        );
      } catch (error) {
        log.error({ err: error, channel: event.channel }, 'chat-moved not handled');
      }
    },

    /** Lets the person with this code in: their chat becomes a group (new, or shared with an existing one). */
    approve(input: { code: string; folder?: string; shareFolder?: string; actor: string }): PairingOutcome {
      const now = deps.now();
      const code = normalizeCode(input.code);
      deps.store.pairing.expire(now);
      const request = deps.store.pairing.byCode(code);
      if (request?.status !== 'pending') {
        const why = request?.status === 'expired' ? 'has expired' : 'is not waiting for approval';
        return {
          status: 'failed',
          reason: `code ${formatCode(code)} ${why} (see /pending or \`warren pairing list\`)`,
        };
      }
      const chat = { channel: request.channel, chatId: request.chatId };
      let group: Group;
      try {
        // One transaction: the request is approved exactly when the chat is bound to a group.
        group = deps.store.transaction(() => {
          if (!deps.store.pairing.decide(code, 'approved', input.actor, now)) {
            throw new StoreError(`code ${formatCode(code)} expired just now`);
          }
          return input.shareFolder
            ? shareGroup(deps.store, { chat, folder: input.shareFolder, isDirect: true }, now)
            : registerGroup(
                deps.store,
                deps.dataDir,
                {
                  folder: input.folder ?? defaultFolderFor(deps.store, request),
                  name: request.senderName,
                  chat,
                  isDirect: true,
                  trigger: 'always',
                },
                now,
              );
        });
      } catch (error) {
        if (error instanceof StoreError) return { status: 'failed', reason: error.message };
        throw error;
      }
      deps.audit({
        groupFolder: group.folder,
        actor: input.actor,
        action: 'pairing-approve',
        decision: 'allow',
        detail: { code, chat: `${chat.channel}:${chat.chatId}`, sender: request.senderId },
      });
      deps.enqueue(
        chat,
        `pairing:${code}:approved`,
        `✅ You're in! ${deps.assistantName} can talk with you now — please send your message again.`,
      );
      return { status: 'approved', group, request: { ...request, status: 'approved' } };
    },

    /** Turns the person with this code away; they stay ignored (the owner can still register the chat). */
    deny(input: { code: string; actor: string }): PairingOutcome {
      const now = deps.now();
      const code = normalizeCode(input.code);
      const request = deps.store.pairing.byCode(code);
      if (!request || !deps.store.pairing.decide(code, 'denied', input.actor, now)) {
        return { status: 'failed', reason: `code ${formatCode(code)} is not waiting for approval` };
      }
      deps.audit({
        groupFolder: null,
        actor: input.actor,
        action: 'pairing-deny',
        decision: 'allow',
        detail: { code, chat: `${request.channel}:${request.chatId}`, sender: request.senderId },
      });
      return { status: 'denied', request: { ...request, status: 'denied' } };
    },

    listPending(): PairingRequest[] {
      return deps.store.pairing.listPending(deps.now());
    },
  };
}

export type Pairing = ReturnType<typeof createPairing>;

/** One line per pending request, for /pending and `warren pairing list`. */
export function formatPending(requests: PairingRequest[], now: number): string[] {
  return requests.map(
    (request) =>
      `${formatCode(request.code)}  ${request.senderName} (${request.channel}:${request.chatId}), ` +
      `expires in ${Math.max(1, Math.round((request.expiresAt - now) / 60_000))} min`,
  );
}
