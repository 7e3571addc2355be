// A group's folder on disk: where it is, who owns it, and its starter memory file, created through descriptors.
import { join } from 'node:path';
import { checkGroupFolder, StoreError } from '../store/store.js';
import { chownDescriptor, inFolder, writeNewFileIn } from './safe-fs.js';

export type ContainerUser = { uid: number; gid: number };

const memoryTemplate = (name: string) =>
  `# ${name}\n\nThis file is this group's memory. The agent reads it at the start of every run and may edit it.\n`;

export function groupDir(dataDir: string, folder: string): string {
  const problem = checkGroupFolder(folder);
  if (problem) throw new StoreError(problem);
  return join(dataDir, 'groups', folder);
}

/** The container's user: uid 1000 when the host is root; otherwise the host's own user, so its files just work. */
export function containerUserFor(): ContainerUser {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid: gid === 0 ? 1000 : gid };
}

/**
 * Creates the group's folder with a starter memory file, both the container user's. The folder may be an old one the
 * agent wrote: the file is created through its descriptor, never opening what is there (a planted link stays one).
 */
export function ensureGroupFolder(dataDir: string, folder: string, name: string): string {
  const dir = groupDir(dataDir, folder);
  const owner = process.getuid?.() === 0 ? containerUserFor() : undefined;
  inFolder(dir, 0o700, (dirFd) => {
    if (owner) chownDescriptor(dirFd, owner);
    writeNewFileIn(dirFd, 'CLAUDE.md', 0o600, memoryTemplate(name), owner);
  });
  return dir;
}
