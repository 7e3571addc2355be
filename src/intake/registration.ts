// Registration: binding a chat to a new group (and its folder) or to an existing one. Both owner front ends and
// pairing come here, so the rules (one group per chat, the admin group never shared) live once.
import { ensureGroupFolder } from '../sandbox/group-folder.js';
import type { ChatAddress, Group } from '../store/records.js';
import { type Store, StoreError } from '../store/store.js';

type Binding = { chat: ChatAddress; isDirect: boolean };

/** Binds a chat that has no group yet (one group per chat at most); a sender waiting for pairing is let in, too. */
function attach(store: Store, group: Group, { chat, isDirect }: Binding, now: number): Group {
  const groupId = store.chats.get(chat.channel, chat.chatId)?.groupId;
  if (groupId != null) {
    const owner = store.groups.byId(groupId)?.folder;
    throw new StoreError(`chat ${chat.channel}:${chat.chatId} already belongs to group '${owner}'`);
  }
  store.chats.attach({ ...chat, groupId: group.id, isDirect, now });
  store.pairing.settleChat(chat.channel, chat.chatId, 'registered', now);
  return group;
}

/** Registers a group and binds a chat to it. Throws StoreError with a clear message on a bad or taken folder. */
export function registerGroup(
  store: Store,
  dataDir: string,
  input: Binding &
    Pick<Group, 'folder' | 'name' | 'trigger'> &
    Partial<Pick<Group, 'triggerWord' | 'isAdmin'>>,
  now: number,
): Group {
  const group = store.transaction(() => attach(store, store.groups.create({ ...input, now }), input, now));
  ensureGroupFolder(dataDir, group.folder, group.name);
  return group;
}

/** Binds a chat to an existing group: it shares that group's agent, folder and memory. */
export function shareGroup(store: Store, input: Binding & { folder: string }, now: number): Group {
  const group = store.groups.byFolder(input.folder);
  if (!group) throw new StoreError(`no group '${input.folder}' to share (see \`warren groups list\`)`);
  if (group.isAdmin) {
    throw new StoreError('the admin group cannot be shared: privilege belongs to the one admin chat');
  }
  return store.transaction(() => attach(store, group, input, now));
}
