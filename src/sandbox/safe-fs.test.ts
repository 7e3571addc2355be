import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import {
  createFileIn,
  listDirectory,
  openDirectory,
  openFileAt,
  pathIn,
  removeFolderTree,
  unlinkIn,
} from './safe-fs.js';

let folder: string;
let outside: string;
let folderFd: number;

beforeEach(() => {
  folder = tempDir();
  outside = tempDir();
  writeFileSync(join(outside, 'secret.txt'), 'outside');
  mkdirSync(join(folder, 'reports'));
  writeFileSync(join(folder, 'reports', 'q3.txt'), 'numbers');
  folderFd = openDirectory(folder);
});

afterEach(() => closeSync(folderFd));

const codeOf = (action: () => unknown): string | undefined => {
  try {
    const result = action() as { fd?: number } | undefined;
    if (result?.fd !== undefined) closeSync(result.fd);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
};

describe('file operations inside a folder an agent can write', () => {
  it('opens a file by a relative path, one folder at a time', () => {
    const { fd, stat } = openFileAt(folderFd, 'reports/q3.txt');
    expect(readFileSync(fd, 'utf8')).toBe('numbers');
    expect(stat.size).toBe(7);
    closeSync(fd);
  });

  it('refuses .., absolute paths, and a link as the file or as any folder on the way', () => {
    symlinkSync(join(outside, 'secret.txt'), join(folder, 'link.txt'));
    symlinkSync(outside, join(folder, 'sneaky'));
    expect(codeOf(() => openFileAt(folderFd, '../secret.txt'))).toBe('EOUTSIDE');
    expect(codeOf(() => openFileAt(folderFd, 'reports/../../secret.txt'))).toBe('EOUTSIDE');
    expect(codeOf(() => openFileAt(folderFd, join(outside, 'secret.txt')))).toBe('EOUTSIDE');
    expect(codeOf(() => openFileAt(folderFd, 'link.txt'))).toBe('ELOOP');
    // O_DIRECTORY is checked before O_NOFOLLOW: a link where a folder should be is 'not a folder'.
    expect(codeOf(() => openFileAt(folderFd, 'sneaky/secret.txt'))).toBe('ENOTDIR');
    expect(codeOf(() => openFileAt(folderFd, 'reports/q3.txt/x'))).toBe('ENOTDIR');
  });

  it('opens a FIFO without blocking and refuses it, like a folder or a socket, before reading', () => {
    execFileSync('mkfifo', [join(folder, 'pipe')]);
    const started = Date.now();
    expect(codeOf(() => openFileAt(folderFd, 'pipe'))).toBe('ENOTREG');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(codeOf(() => openFileAt(folderFd, 'reports'))).toBe('ENOTREG');
  });

  it('creates a file only where nothing is: a planted link is never opened, its target untouched', () => {
    symlinkSync(join(outside, 'secret.txt'), join(folder, 'CLAUDE.md'));
    symlinkSync(join(outside, 'new.txt'), join(folder, 'dangling.md'));
    expect(codeOf(() => createFileIn(folderFd, 'CLAUDE.md', 0o644))).toBe('EEXIST');
    expect(codeOf(() => createFileIn(folderFd, 'dangling.md', 0o644))).toBe('EEXIST');
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('outside');
    expect(readdirSync(outside)).toEqual(['secret.txt']);
    const fd = createFileIn(folderFd, 'fresh.md', 0o644);
    writeFileSync(fd, 'mine');
    closeSync(fd);
    expect(readFileSync(join(folder, 'fresh.md'), 'utf8')).toBe('mine');
  });

  it('unlinks a link itself, never its target', () => {
    symlinkSync(join(outside, 'secret.txt'), join(folder, 'link.txt'));
    unlinkIn(folderFd, 'link.txt');
    expect(readdirSync(folder)).toEqual(['reports']);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('outside');
  });

  it('keeps working on the folder it opened when the path is swapped for a link', () => {
    const moved = `${folder}-moved`;
    renameSync(folder, moved);
    symlinkSync(outside, folder);
    expect(codeOf(() => unlinkIn(folderFd, 'secret.txt'))).toBe('ENOENT');
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('outside');
    expect(readlinkSync(`/proc/self/fd/${folderFd}`)).toBe(moved);
  });

  it('lists at most the entries asked for', () => {
    for (let index = 0; index < 20; index++) writeFileSync(join(folder, `f${index}`), '');
    const listing = listDirectory(folderFd, 5);
    expect(listing).toMatchObject({ isComplete: false });
    expect(listing.entries).toHaveLength(5);
    expect(listDirectory(folderFd, 100).entries).toHaveLength(21);
  });

  it('names only single path components', () => {
    for (const bad of ['', '.', '..', 'a/b', 'x\0y']) expect(() => pathIn(folderFd, bad)).toThrow();
    expect(pathIn(folderFd, 'ok.txt')).toBe(`/proc/self/fd/${folderFd}/ok.txt`);
  });
});

describe('removing a folder an agent could write (a purged group)', () => {
  /** Everything under a folder, links as links (never followed), with what each link points at. */
  const contentsOf = (dir: string): string[] =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .map((entry) => join(entry.parentPath, entry.name))
      .sort();

  it('removes links planted anywhere in it as links: their targets outside are untouched', async () => {
    mkdirSync(join(outside, 'etc'));
    writeFileSync(join(outside, 'etc', 'passwd'), 'root:x:0:0');
    symlinkSync(join(outside, 'etc'), join(folder, 'etc')); // a link to a folder, at the top
    symlinkSync(join(outside, 'etc', 'passwd'), join(folder, 'reports', 'passwd')); // to a file, one level down
    mkdirSync(join(folder, 'reports', 'deep', 'deeper'), { recursive: true });
    symlinkSync(join(outside, 'etc'), join(folder, 'reports', 'deep', 'deeper', 'etc')); // and further down
    const before = contentsOf(outside);
    expect(await removeFolderTree(folder)).toBe(true);
    expect(existsSync(folder)).toBe(false);
    expect(contentsOf(outside)).toEqual(before);
    expect(readFileSync(join(outside, 'etc', 'passwd'), 'utf8')).toBe('root:x:0:0');
  });

  it('removes only the link when the folder itself is a link, and a tree of any depth', async () => {
    const linked = `${folder}-link`;
    symlinkSync(outside, linked);
    expect(await removeFolderTree(linked)).toBe(true);
    expect(existsSync(linked)).toBe(false);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('outside');
    // Deeper than a walk holding one descriptor per level would like, with a file at every level.
    let dir = folder;
    for (let level = 0; level < 300; level++) {
      dir = join(dir, 'd');
      mkdirSync(dir);
      writeFileSync(join(dir, 'f'), String(level));
    }
    expect(await removeFolderTree(folder)).toBe(true);
    expect(existsSync(folder)).toBe(false);
    expect(await removeFolderTree(folder)).toBe(true); // already gone
  });
});
