// A file system per group: the hard disk limit, where the machine allows one (Linux, Warren running as root). The
// group's folder and session state live in one ext4 image the size of its quota, loop-mounted; the kernel refuses
// every write past it, whatever the agent does. groups/<folder> and sessions/<folder> are bind mounts into it, so
// every other part of Warren sees the same paths as without one. The IPC output folder stays outside: a full volume
// must not silence the runner (its files are capped and removed as they are read; the free-disk floor covers it).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { readIpcFileText } from '../protocol/read.js';
import type { ContainerUser } from './group-folder.js';
import { chownDescriptor, listDirectory, withDirectory, writeNewFileIn } from './safe-fs.js';

const execFileAsync = promisify(execFile);
const COMMAND_TIMEOUT_MS = 60_000;
/** Argument arrays, never a shell; the system's tools wherever root's PATH points, and none of the host's env. */
const run = (command: string, args: string[]) =>
  execFileAsync(command, args, {
    timeout: COMMAND_TIMEOUT_MS,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
  });
/** The memory file carried into a new volume: what registration wrote, or what the agent made of it. */
const MAX_MEMORY_FILE_BYTES = 64 * 1024;
const DETACH_WAIT_MS = 5_000;
const DETACH_POLL_MS = 100;

export type DiskQuotaMode = 'auto' | 'volume' | 'watched';

export interface GroupVolume {
  /** The mount point of the group's file system. */
  root: string;
}

export interface Volumes {
  readonly isEnabled: boolean;
  /**
   * Mounts the group's volume (made on first use, grown when its quota grew), with its folder and session state
   * bound in place. Null when the group stays on the watched quota: volumes off, or a group whose folders already
   * hold the agent's data (they are not moved; the reason is logged once). Never rejects.
   */
  ensure(folder: string, quotaMb: number): Promise<GroupVolume | null>;
}

/** Whether this machine can give each group a file system: Linux, root, and the tools for ext4 on a loop device. */
export function canUseVolumes(): boolean {
  return (
    process.platform === 'linux' &&
    process.getuid?.() === 0 &&
    ['mkfs.ext4', 'resize2fs', 'e2fsck', 'losetup'].every((tool) => existsSync(`/usr/sbin/${tool}`)) &&
    existsSync('/dev/loop-control')
  );
}

/** Mount points and their sources from /proc/self/mountinfo (octal escapes such as \040 decoded). */
export function readMounts(): Map<string, string> {
  const decode = (text: string) =>
    text.replace(/\\([0-7]{3})/g, (_, code: string) => String.fromCharCode(Number.parseInt(code, 8)));
  const mounts = new Map<string, string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (fields.length < 5 || separator < 0) continue;
    mounts.set(decode(fields[4] as string), decode(fields[separator + 2] ?? ''));
  }
  return mounts;
}

export function createVolumes(deps: {
  dataDir: string;
  mode: DiskQuotaMode;
  user: ContainerUser;
  log: Logger;
}): Volumes {
  const log = deps.log.child({ module: 'volumes' });
  const isEnabled = deps.mode === 'volume' || (deps.mode === 'auto' && canUseVolumes());
  const volumesDir = path.join(deps.dataDir, 'volumes');
  const toldWatched = new Set<string>();
  let queue: Promise<unknown> = Promise.resolve();

  /** A folder with nothing in it but what the host made at registration (CLAUDE.md) holds no agent data. */
  function holdsAgentData(dir: string): boolean {
    if (!existsSync(dir)) return false;
    const { entries } = withDirectory(dir, (fd) => listDirectory(fd, 2));
    return entries.some((entry) => entry.name !== 'CLAUDE.md' || entry.isDirectory);
  }

  async function carryMemoryFile(from: string, to: string): Promise<void> {
    const read = await readIpcFileText(path.join(from, 'CLAUDE.md'), MAX_MEMORY_FILE_BYTES);
    if (read.ok) withDirectory(to, (fd) => writeNewFileIn(fd, 'CLAUDE.md', 0o600, read.text, deps.user));
  }

  async function create(image: string, quotaMb: number): Promise<void> {
    // Sparse: the image takes only what the group writes (volumes/ is the host's alone, so paths are safe here).
    writeFileSync(image, '', { flag: 'wx', mode: 0o600 });
    truncateSync(image, quotaMb * 1024 * 1024);
    // No blocks reserved for root (-m 0); an 8 MiB journal instead of 64 (it is real disk, for every group).
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-J', 'size=8', image]);
  }

  /**
   * Grows the image to the quota. Unmounted: this machine's kernel refuses to grow a mounted ext4 (EPERM), so it is
   * done when the group's next run starts, when no agent of the group is running.
   */
  async function grow(image: string, quotaMb: number, mounted: string[]): Promise<void> {
    for (const mount of mounted) await run('umount', [mount]);
    // A container that just ended may still hold the file system in its own mount namespace for a moment (the
    // engine tears it down after the exit is reported); checking or resizing it then could corrupt it. Only a fully
    // detached image is grown: wait a little for the detach, else the next run tries again.
    for (
      let waited = 0;
      (await run('losetup', ['-j', image])).stdout.trim() !== '';
      waited += DETACH_POLL_MS
    ) {
      if (waited >= DETACH_WAIT_MS) {
        log.info({ image }, 'group volume still in use; growing it at the next run');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, DETACH_POLL_MS));
    }
    truncateSync(image, quotaMb * 1024 * 1024);
    // resize2fs wants a checked file system; e2fsck exits 1 when it fixed something, which is fine here.
    await run('e2fsck', ['-f', '-p', image]).catch((error: { code?: number }) => {
      if (error.code !== 1) throw error;
    });
    await run('resize2fs', [image]);
    log.info({ image, quotaMb }, 'grew a group volume');
  }

  async function ensureNow(folder: string, quotaMb: number): Promise<GroupVolume | null> {
    const image = path.join(volumesDir, `${folder}.ext4`);
    const root = path.join(volumesDir, folder);
    const groupDir = path.join(deps.dataDir, 'groups', folder);
    const sessionsDir = path.join(deps.dataDir, 'sessions', folder);
    let mounts = readMounts();
    if (!existsSync(image)) {
      // Data an agent already wrote is not moved (that would mean walking its tree): the group stays watched.
      const withData = [groupDir, sessionsDir].filter((dir) => !mounts.has(dir) && holdsAgentData(dir));
      if (withData.length > 0) {
        if (!toldWatched.has(folder)) {
          log.info(
            { group: folder },
            'group keeps the watched disk quota: its folders hold data from before',
          );
        }
        toldWatched.add(folder);
        return null;
      }
      mkdirSync(volumesDir, { recursive: true, mode: 0o700 });
      await create(image, quotaMb);
    }
    if (statSync(image).size < quotaMb * 1024 * 1024) {
      // A volume that cannot grow now keeps its size and stays mounted: the group must not fall off its volume.
      const mounted = [groupDir, sessionsDir, root].filter((mount) => mounts.has(mount));
      await grow(image, quotaMb, mounted).catch((error: unknown) =>
        log.warn({ err: error, image }, 'cannot grow a group volume; tried again later'),
      );
      mounts = readMounts();
    }
    mkdirSync(root, { recursive: true, mode: 0o755 });
    if (!mounts.has(root)) {
      // nosuid, nodev: nothing the agent leaves there can raise privileges or reach a device on the host.
      await run('mount', ['-o', 'loop,nosuid,nodev', image, root]);
      mounts = readMounts();
    }
    for (const [inside, outside] of [
      ['group', groupDir],
      ['sessions', sessionsDir],
    ] as const) {
      const source = path.join(root, inside);
      mkdirSync(source, { recursive: true, mode: 0o700 });
      withDirectory(source, (fd) => chownDescriptor(fd, deps.user));
      mkdirSync(outside, { recursive: true, mode: 0o700 });
      if (!mounts.has(outside)) {
        // The memory file the host made at registration moves in (read safely, capped); the rest is the host's own.
        if (inside === 'group') await carryMemoryFile(outside, source);
        await run('mount', ['--bind', source, outside]);
      }
    }
    return { root };
  }

  return {
    isEnabled,
    ensure(folder, quotaMb) {
      if (!isEnabled || quotaMb <= 0) return Promise.resolve(null);
      // One at a time: two runs of Warren's own never race to mount the same image.
      const next = queue.then(() =>
        ensureNow(folder, quotaMb).catch((error: unknown) => {
          log.error(
            { err: error, group: folder },
            'cannot mount the group volume; the watched quota applies',
          );
          return null;
        }),
      );
      queue = next;
      return next;
    },
  };
}
