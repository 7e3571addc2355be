// The host's file operations in folders an agent can write: every step goes through the descriptor of a directory
// already opened, so no path component can be swapped under the host; no link is followed, no open can block, and
// nothing is read before its type is checked on the descriptor. Node has no openat(): `/proc/self/fd/N/name` stands
// in (the kernel resolves it to that very directory, not by its path, then looks up only `name`; Linux only).
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  createReadStream,
  createWriteStream,
  fchmodSync,
  fchownSync,
  fstatSync,
  mkdirSync,
  opendirSync,
  openSync,
  renameSync,
  rmdirSync,
  type Stats,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openRegularFile } from '../protocol/read.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;
/** O_NOFOLLOW: a link in the directory's place fails (ELOOP); O_NONBLOCK: nothing there can stall the open. */
const DIRECTORY_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK;
/** O_EXCL: an existing name (a file, a link, a FIFO the agent planted) is never opened, only refused (EEXIST). */
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK;
type Owner = { uid: number; gid: number };
type Staged = { ok: true; path: string } | { ok: false; reason: string };

/** One path component: not empty, '.' or '..', without '/' or NUL, at most 255 bytes. */
function isPlainName(name: string): boolean {
  return /^[^/\0]+$/.test(name) && name !== '.' && name !== '..' && Buffer.byteLength(name) <= 255;
}

/** The path of `name` inside the directory `dirFd` holds. Throws for anything but one plain component (a bug). */
export function pathIn(dirFd: number, name: string): string {
  if (!isPlainName(name)) throw new Error(`not a single path component: ${JSON.stringify(name)}`);
  return `/proc/self/fd/${dirFd}/${name}`;
}

/** Opens a folder whose parents are the host's: only its last component (never a link) may be the agent's. */
export function openDirectory(dirPath: string): number {
  return openSync(dirPath, DIRECTORY_FLAGS);
}

/** Runs `use` on the directory opened by openDirectory; closes it after (once a returned promise settles). */
export function withDirectory<T>(dirPath: string, use: (dirFd: number) => T): T {
  const fd = openDirectory(dirPath);
  let result: T;
  try {
    result = use(fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (result instanceof Promise) return result.finally(() => closeSync(fd)) as T;
  closeSync(fd);
  return result;
}

/** Makes a folder (parents the host's alone) if missing, gives it `mode` and runs `work` through its descriptor. */
export function inFolder<T>(dir: string, mode: number, work: (dirFd: number) => T): T {
  mkdirSync(dir, { recursive: true, mode });
  return withDirectory(dir, (dirFd) => {
    fchmodSync(dirFd, mode);
    return work(dirFd);
  });
}

/** Opens a directory inside a verified one, first making it (with createMode) when asked and missing. */
export function openDirectoryIn(dirFd: number, name: string, createMode?: number): number {
  if (createMode !== undefined) {
    try {
      mkdirSync(pathIn(dirFd, name), createMode);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return openSync(pathIn(dirFd, name), DIRECTORY_FLAGS);
}

/** Opens a regular file inside a verified directory for reading (no link, no FIFO: ENOTREG). */
export function openFileIn(dirFd: number, name: string): { fd: number; stat: Stats } {
  return openRegularFile(pathIn(dirFd, name));
}

/** Creates a new file inside a verified directory; never opens what is already there (EEXIST). */
export function createFileIn(dirFd: number, name: string, mode: number): number {
  return openSync(pathIn(dirFd, name), CREATE_FLAGS, mode);
}

/** Creates `name` with the text (given to owner, if named); false, nothing opened, when the name exists. */
export function writeNewFileIn(dirFd: number, name: string, mode: number, text: string, owner?: Owner) {
  let fd: number;
  try {
    fd = createFileIn(dirFd, name, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeFileSync(fd, text);
    if (owner) chownDescriptor(fd, owner);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes a name that is not a directory. unlink never follows: a link goes, not its target. */
export function unlinkIn(dirFd: number, name: string): void {
  unlinkSync(pathIn(dirFd, name));
}

export function renameIn(dirFd: number, from: string, to: string): void {
  renameSync(pathIn(dirFd, from), pathIn(dirFd, to));
}

/** Names one pass of removeFolderTree reads from a folder. */
const REMOVE_BATCH = 1_000;
/** Runs an action that may fail: true when it did not throw. */
export const isDone = (action: () => void) => {
  try {
    action();
    return true;
  } catch {
    return false;
  }
};

/**
 * Removes a folder an agent could write, with all it holds (a purged group). The one walk the host does in such a
 * folder, by the same rule as the rest: the folder is opened once (its parent is the host's alone), and each step is
 * a name directly in a folder held open, never followed. A file or link is unlinked (a link goes, never its target);
 * a folder has its names unlinked and its folders renamed up into the top one, then goes. Nothing is entered deeper
 * than one level, so a tree of any depth takes two descriptors, and a name swapped meanwhile is met as what it is
 * now. It yields between passes: a big tree does not hold up the host. True when the folder is gone (or was never
 * there); what cannot go (a folder the agent made unreadable, a host that is not root) is left. Never rejects.
 */
export async function removeFolderTree(dir: string): Promise<boolean> {
  let rootFd: number;
  try {
    rootFd = openDirectory(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A link or a file in the folder's place: only that name goes.
    return code === 'ENOENT' || ((code === 'ELOOP' || code === 'ENOTDIR') && isDone(() => unlinkSync(dir)));
  }
  try {
    for (;;) {
      const { entries } = listDirectory(rootFd, REMOVE_BATCH);
      const moved = entries.filter((entry) => removeOneLevel(rootFd, entry.name));
      if (moved.length === 0) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch {
    // The folder itself became unreadable: what is left stays.
  } finally {
    closeSync(rootFd);
  }
  return isDone(() => rmdirSync(dir));
}

/** One step of removeFolderTree on a name in its top folder; true when anything was removed or moved. */
function removeOneLevel(rootFd: number, name: string): boolean {
  let fd: number;
  try {
    fd = openDirectoryIn(rootFd, name);
  } catch {
    return isDone(() => unlinkIn(rootFd, name));
  }
  let isChanged = false;
  try {
    for (const entry of listDirectory(fd, REMOVE_BATCH).entries) {
      // unlink refuses a folder (EISDIR): that one moves up, to be emptied in a later pass.
      const up = () => renameSync(pathIn(fd, entry.name), pathIn(rootFd, `.removing-${randomUUID()}`));
      if (isDone(() => unlinkIn(fd, entry.name)) || isDone(up)) isChanged = true;
    }
  } catch {
    // Unreadable: left as it is.
  } finally {
    closeSync(fd);
  }
  return isDone(() => rmdirSync(pathIn(rootFd, name))) || isChanged;
}

/** Gives what a descriptor holds to a user: the descriptor, never a path, so a swapped link cannot redirect it. */
export function chownDescriptor(fd: number, owner: Owner): void {
  const stat = fstatSync(fd);
  if (stat.uid !== owner.uid || stat.gid !== owner.gid) fchownSync(fd, owner.uid, owner.gid);
}

/** Lists at most `max` entries (an agent can make millions of names); isComplete is false if there were more. */
export function listDirectory(dirFd: number, max: number) {
  const dir = opendirSync(`/proc/self/fd/${dirFd}`);
  const entries: Array<{ name: string; isDirectory: boolean }> = [];
  try {
    for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
      if (entries.length >= max) return { entries, isComplete: false };
      entries.push({ name: entry.name, isDirectory: entry.isDirectory() });
    }
    return { entries, isComplete: true };
  } finally {
    dir.closeSync();
  }
}

/** Opens a regular file by a relative path, one component at a time: no '..', absolute path or link on the way. */
export function openFileAt(rootFd: number, relativePath: string): { fd: number; stat: Stats } {
  const parts = relativePath.split('/').filter((part) => part !== '' && part !== '.');
  const name = parts.pop();
  if (relativePath.startsWith('/') || name === undefined || !parts.concat(name).every(isPlainName)) {
    const error = new Error(`not a path inside the folder: ${JSON.stringify(relativePath)}`);
    throw Object.assign(error, { code: 'EOUTSIDE' });
  }
  let dirFd = rootFd;
  try {
    for (const part of parts) {
      const next = openDirectoryIn(dirFd, part);
      if (dirFd !== rootFd) closeSync(dirFd);
      dirFd = next;
    }
    return openFileIn(dirFd, name);
  } finally {
    if (dirFd !== rootFd) closeSync(dirFd);
  }
}

export function closeQuietly(fd: number | null | undefined): void {
  try {
    if (fd != null) closeSync(fd);
  } catch {}
}

/** Why an O_NOFOLLOW open or read of a file to send failed, in words for the agent or the log. */
export function describeOpenError(error: unknown, missing: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return 'the file, or a folder on its path, is a symlink';
  if (code === 'ENOENT') return missing;
  if (code === 'ENOTREG') return 'not a regular file';
  if (code === 'ENOTDIR') return 'a part of the path is not a folder';
  if (code === 'EOUTSIDE') return "the file must be inside this group's folder (/workspace/group)";
  return `cannot read the file (${code ?? 'error'})`;
}

const MAX_OUTGOING_BYTES = 50 * 1024 * 1024;

/**
 * Copies a file the agent asked to send (a path in its group folder, walked by openFileAt) into a host-only folder no
 * container can reach; delivery reads only the copy. The copy is asynchronous, so no file of the agent's can hold up
 * the host. Never rejects.
 */
export async function stageOutgoingFile(groupDir: string, file: string, stagingDir: string): Promise<Staged> {
  try {
    return await withDirectory(groupDir, async (rootFd) => {
      const source = openFileAt(rootFd, file);
      try {
        if (source.stat.size > MAX_OUTGOING_BYTES) {
          return { ok: false, reason: `the file is larger than ${MAX_OUTGOING_BYTES / 1024 / 1024} MB` };
        }
        mkdirSync(stagingDir, { recursive: true, mode: 0o700 });
        const staged = path.join(stagingDir, `${randomUUID()}-${path.basename(file)}`);
        await pipeline(
          // end is inclusive: a file that grows while it is copied is cut at the cap, never read without end.
          createReadStream('', { fd: source.fd, autoClose: false, end: MAX_OUTGOING_BYTES - 1 }),
          createWriteStream(staged, { flags: 'wx', mode: 0o600 }),
        );
        return { ok: true, path: staged };
      } finally {
        closeSync(source.fd);
      }
    });
  } catch (error) {
    return { ok: false, reason: describeOpenError(error, "no such file in this group's folder") };
  }
}
