// Registration: binding a chat to a new group (and its folder) or to an existing one. Both owner front ends and
// pairing come here, so the rules (one group per chat, the admin group never shared) live once.
import { ensureGroupFolder } from '../sandbox/group-folder.js';
import type { ChatAddress, Group } from '../store/records.js';
import { type Store, StoreError } from '../store/store.js';

interface RegisterGroupInput
  extends Pick<Group, 'folder' | 'name' | 'trigger'>,
    Partial<Pick<Group, 'triggerWord' | 'isAdmin'>> {
  chat: ChatAddress;
  isDirect: boolean;
}

/** A chat belongs to one group at most. */
function checkChatIsFree(store: Store, chat: ChatAddress): void {
  const groupId = store.chats.get(chat.channel, chat.chatId)?.groupId;
  if (groupId == null) return;
  const owner = store.groups.byId(groupId);
  throw new StoreError(`chat ${chat.channel}:${chat.chatId} already belongs to group '${owner?.folder}'`);
}

/** Binds the chat; a sender waiting for pairing is let in by registering their chat some other way, too. */
function attach(store: Store, chat: ChatAddress, group: Group, isDirect: boolean, now: number): void {
  store.chats.attach({ ...chat, groupId: group.id, isDirect, now });
  store.pairing.settleChat(chat.channel, chat.chatId, 'registered', now);
}

/** Registers a group and binds a chat to it. Throws StoreError with a clear message on a bad or taken folder. */
export function registerGroup(store: Store, dataDir: string, input: RegisterGroupInput, now: number): Group {
  checkChatIsFree(store, input.chat);
  const group = store.transaction(() => {
    const created = store.groups.create({ ...input, now });
    attach(store, input.chat, created, input.isDirect, now);
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
  if (group.isAdmin) {
    throw new StoreError('the admin group cannot be shared: privilege belongs to the one admin chat');
  }
  checkChatIsFree(store, input.chat);
  store.transaction(() => attach(store, input.chat, group, input.isDirect, now));
  return group;
}
