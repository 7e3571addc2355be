// Registration: binding a chat to a new group (and its folder) or to an existing one. Both owner front ends and
// pairing come here, so the rules (one group per chat, the admin group never shared) live once.
import { ensureGroupFolder } from '../sandbox/group-folder.js';
import type { ChatAddress, Group } from '../store/records.js';
import { type Store, StoreError } from '../store/store.js';

export interface RegisterGroupInput {
  folder: string;
  name: string;
  chat: ChatAddress;
  isDirect: boolean;
  trigger: Group['trigger'];
  triggerWord?: string | null;
  isAdmin?: boolean;
}

/** Registers a group and binds a chat to it. Throws StoreError with a clear message on a bad or taken folder. */
export function registerGroup(store: Store, dataDir: string, input: RegisterGroupInput, now: number): Group {
  const existingChat = store.chats.get(input.chat.channel, input.chat.chatId);
  if (existingChat?.groupId != null) {
    const owner = store.groups.byId(existingChat.groupId);
    throw new StoreError(
      `chat ${input.chat.channel}:${input.chat.chatId} already belongs to group '${owner?.folder}'`,
    );
  }
  const group = store.transaction(() => {
    const created = store.groups.create({ ...input, now });
    store.chats.attach({ ...input.chat, groupId: created.id, isDirect: input.isDirect, now });
    // A sender waiting for pairing is let in by registering their chat some other way, too.
    store.pairing.settleChat(input.chat.channel, input.chat.chatId, 'registered', now);
    return created;
  });
  ensureGroupFolder(dataDir, group.folder, group.name);
  return group;
}

/**
 * Binds a chat to an existing group: the chat shares that group's agent, folder and memory. The admin group is
 * never shared, because privilege belongs to the one admin chat.
 */
export function shareGroup(
  store: Store,
  input: { chat: ChatAddress; folder: string; isDirect: boolean },
  now: number,
): Group {
  const group = store.groups.byFolder(input.folder);
  if (!group) throw new StoreError(`no group '${input.folder}' to share (see \`warren groups list\`)`);
  if (group.isAdmin)
    throw new StoreError('the admin group cannot be shared: privilege belongs to the one admin chat');
  const existingChat = store.chats.get(input.chat.channel, input.chat.chatId);
  if (existingChat?.groupId != null) {
    const owner = store.groups.byId(existingChat.groupId);
    throw new StoreError(
      `chat ${input.chat.channel}:${input.chat.chatId} already belongs to group '${owner?.folder}'`,
    );
  }
  store.transaction(() => {
    store.chats.attach({ ...input.chat, groupId: group.id, isDirect: input.isDirect, now });
    store.pairing.settleChat(input.chat.channel, input.chat.chatId, 'registered', now);
  });
  return group;
}
