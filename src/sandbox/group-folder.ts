// Registering and removing groups: the database row, the chat binding and the folder on disk, together.
import { closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChatAddress, Group } from '../store/records.js';
import { checkGroupFolder, type Store, StoreError } from '../store/store.js';
import { chownDescriptor, openDirectory, writeNewFileIn } from './safe-fs.js';

export interface RegisterGroupInput {
  folder: string;
  name: string;
  chat: ChatAddress;
  isDirect: boolean;
  trigger: Group['trigger'];
  triggerWord?: string | null;
  isAdmin?: boolean;
}

const memoryTemplate = (name: string) =>
  `# ${name}\n\nThis file is this group's memory. The agent reads it at the start of every run and may edit it.\n`;

export function groupDir(dataDir: string, folder: string): string {
  const problem = checkGroupFolder(folder);
  if (problem) throw new StoreError(problem);
  return join(dataDir, 'groups', folder);
}

export interface ContainerUser {
  uid: number;
  gid: number;
}

/** The container's user: uid 1000 when the host is root; otherwise the host's own user, so its files just work. */
export function containerUserFor(): ContainerUser {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid: gid === 0 ? 1000 : gid };
}

/**
 * Creates the group's folder with a starter memory file, both the container's user's; never overwrites an existing
 * one. The folder may be an old one the agent wrote: the file is created through the folder's descriptor and never
 * opens what is there (a link planted as CLAUDE.md stays a link, its target untouched).
 */
export function ensureGroupFolder(dataDir: string, folder: string, name: string): string {
  const dir = groupDir(dataDir, folder);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const owner = process.getuid?.() === 0 ? containerUserFor() : null;
  const dirFd = openDirectory(dir);
  try {
    if (owner) chownDescriptor(dirFd, owner);
    writeNewFileIn(dirFd, 'CLAUDE.md', 0o600, memoryTemplate(name), owner ?? undefined);
  } finally {
    closeSync(dirFd);
  }
  return dir;
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

/** Parses "channel:chatId" (the chat id may itself contain ':'). */
export function parseChatAddress(text: string): ChatAddress | null {
  const index = text.indexOf(':');
  if (index <= 0 || index === text.length - 1) return null;
  return { channel: text.slice(0, index), chatId: text.slice(index + 1) };
}

export const formatChatAddress = (chat: ChatAddress) => `${chat.channel}:${chat.chatId}`;
