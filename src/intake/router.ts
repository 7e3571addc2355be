// Inbound messages: store them (registered chats only), decide whether they trigger the agent, wake the queue.
import type { Logger } from '../log.js';
import type { Group } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { InboundMessage } from '../types.js';

/** Longer messages are cut (with a visible note to the agent) so one message cannot exhaust memory or budget. */
export const MAX_MESSAGE_CHARS = 100_000;

/** True when text names the assistant as a word (optionally with @), in any case: "hey @Warren," but not "Warrenty". */
export function mentionsName(text: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^\\p{L}\\p{N}_])@?${escaped}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
}

/** The trigger rule: admin chat and direct chats always; groups when set to always or when the assistant is named. */
export function isTriggered(group: Group, message: InboundMessage, assistantName: string): boolean {
  if (group.isAdmin || message.isDirect || group.trigger === 'always' || message.isMention) return true;
  return mentionsName(message.text, group.triggerWord ?? assistantName);
}

export function createRouter(deps: {
  store: Store;
  assistantName: string;
  log: Logger;
  now(): number;
  /** A group has a new triggered message. Must not throw. */
  onTrigger(groupId: number): void;
  /** A message came from a chat no group owns; nothing of it was stored. Must not throw. */
  onUnregistered?(message: InboundMessage): void;
  /** Offered every message of a registered chat first; true: it was an owner command, and is done. Must not throw. */
  onCommand?(message: InboundMessage, group: Group): boolean;
}) {
  const log = deps.log.child({ module: 'router' });
  return {
    /**
     * Stores and routes one message ('command': an owner command from the admin chat, handled before any agent).
     * Never throws for bad input; store failures (disk full) do throw.
     */
    handleInbound(
      message: InboundMessage,
    ): 'triggered' | 'context' | 'duplicate' | 'unregistered' | 'command' {
      const { channel, chatId, isDirect } = message;
      const now = deps.now();
      // Every chat is remembered (so the owner can register it); an unregistered chat's text never is.
      const chat = deps.store.chats.upsert({ channel, chatId, name: message.chatName, isDirect, now });
      const group = chat.groupId !== null ? deps.store.groups.byId(chat.groupId) : null;
      if (!group) {
        log.info({ channel, chatId }, 'message from unregistered chat ignored');
        deps.onUnregistered?.(message);
        return 'unregistered';
      }
      if (deps.onCommand?.(message, group)) return 'command';
      const isTrigger = isTriggered(group, message, deps.assistantName);
      let { text } = message;
      if (text.length > MAX_MESSAGE_CHARS) {
        log.warn({ group: group.folder, length: text.length }, 'message cut to the size limit');
        text = `${text.slice(0, MAX_MESSAGE_CHARS)}\n[… ${text.length - MAX_MESSAGE_CHARS} more characters were cut by Warren]`;
      }
      const senderName = message.senderName.slice(0, 200) || 'unknown';
      const stored = { ...message, chatRef: chat.id, senderName, text, receivedAt: now, isTrigger };
      const messageId = deps.store.messages.insert(stored);
      if (messageId === null) return 'duplicate';
      log.debug({ group: group.folder, messageId, isTrigger }, 'message stored');
      if (!isTrigger) return 'context';
      deps.onTrigger(group.id);
      return 'triggered';
    },
  };
}
