// The records the store keeps, in the shapes every layer above it uses (the store imports nothing of ours).

/** A chat as the host addresses it: the channel's name plus that channel's own id for the chat. */
export interface ChatAddress {
  channel: string;
  chatId: string;
}

/** A registered group: one agent, one folder, one set of rules. */
export interface Group {
  id: number;
  /** Folder name under the data directory's groups/; validated (no path tricks). */
  folder: string;
  name: string;
  /** 'mention': answer in group chats only when the assistant is named; 'always': every message triggers. */
  trigger: 'mention' | 'always';
  /** The name that triggers the agent in this group; null means the configured assistant name. */
  triggerWord: string | null;
  isAdmin: boolean;
  createdAt: number;
}

/** A message as the agent sees it in a prompt. */
export interface PromptMessage {
  senderName: string;
  text: string;
  sentAt: number;
}

export type ChannelState =
  | { status: 'connected' }
  | { status: 'reconnecting'; reason: string }
  | { status: 'disconnected'; reason: string }
  /** The service no longer accepts our credentials (or never had any): a person must pair or fix them. */
  | { status: 'logged-out'; reason: string };

export type ScheduleKind = 'cron' | 'interval' | 'once';

/** A validated schedule; value is canonical text: a 5-field cron expression, an interval or an epoch time in ms. */
export interface Schedule {
  kind: ScheduleKind;
  value: string;
  timezone: string;
}

/** Parses "channel:chatId" (the chat id may itself contain ':'). */
export function parseChatAddress(text: string): ChatAddress | null {
  const index = text.indexOf(':');
  if (index <= 0 || index === text.length - 1) return null;
  return { channel: text.slice(0, index), chatId: text.slice(index + 1) };
}

export const formatChatAddress = (chat: ChatAddress) => `${chat.channel}:${chat.chatId}`;

export const isSameChat = (a: ChatAddress, b: ChatAddress) =>
  a.channel === b.channel && a.chatId === b.chatId;
