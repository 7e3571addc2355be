// A file system per group, the hard disk limit where the machine allows one (Linux, root): the group's folder and
// session state live in an ext4 image the size of its quota, loop-mounted, so the kernel refuses every write past it.
// groups/<folder> and sessions/<folder> are bind mounts into it: the rest of Warren sees the same paths. The IPC
// output folder stays outside: a full volume must not silence the runner (the IPC caps and the disk floor bound it).
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { readIpcFileText } from '../protocol/read.js';
import type { ContainerUser } from './group-folder.js';
import { chownDescriptor, listDirectory, withDirectory, writeNewFileIn } from './safe-fs.js';

const execFileAsync = promisify(execFile);
/** Argument arrays, never a shell; the system's tools wherever root's PATH points, and none of the host's env. */
const TOOL_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };
const run = (command: string, args: string[]) =>
  execFileAsync(command, args, { timeout: 60_000, env: TOOL_ENV });
/** The memory file carried into a new volume: what registration wrote, or what the agent made of it. */
const MAX_MEMORY_FILE_BYTES = 64 * 1024;
const DETACH_WAIT_MS = 5_000;
const DETACH_POLL_MS = 100;

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

/**
 * Takes a purged group's volume away: its folder and session state unmounted from it, then the volume itself, and its
 * image deleted (the disk is freed once no container holds it any more). Returns the image's path when there was
 * one. Rejects when an unmount fails; the image is then kept, still mounted.
 */
export async function removeVolume(dataDir: string, folder: string): Promise<string[]> {
  const root = path.join(dataDir, 'volumes', folder);
  const image = `${root}.ext4`;
  if (!existsSync(image)) return [];
  const mounts = readMounts();
  for (const dir of [path.join(dataDir, 'groups', folder), path.join(dataDir, 'sessions', folder), root]) {
    if (mounts.has(dir)) await run('umount', [dir]);
  }
  rmSync(image);
  // Only the host writes in volumes/: the empty mount point goes by its path.
  if (existsSync(root)) rmdirSync(root);
  return [image];
}

export function createVolumes(deps: {
  dataDir: string;
  mode: Config['diskQuotaMode'];
  user: ContainerUser;
  log: Logger;
}) {
  const log = deps.log.child({ module: 'volumes' });
  const isEnabled = deps.mode === 'volume' || (deps.mode === 'auto' && canUseVolumes());
  const volumesDir = path.join(deps.dataDir, 'volumes');
  const toldWatched = new Set<string>();
  let queue = Promise.resolve(false);

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

  /** Grows the image to the quota, unmounted (this kernel refuses to grow a mounted ext4), at the group's next run. */
  async function grow(image: string, quotaMb: number, mounted: string[]): Promise<void> {
    for (const mount of mounted) await run('umount', [mount]);
    // A container that just ended may hold the file system in its mount namespace a moment longer; checking or
    // resizing it then could corrupt it. Only a detached image is grown: wait a little, else the next run tries.
    const isAttached = async () => (await run('losetup', ['-j', image])).stdout.trim() !== '';
    for (let waited = 0; await isAttached(); waited += DETACH_POLL_MS) {
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

  async function ensureNow(folder: string, quotaMb: number): Promise<boolean> {
    const image = path.join(volumesDir, `${folder}.ext4`);
    const root = path.join(volumesDir, folder);
    const groupDir = path.join(deps.dataDir, 'groups', folder);
    const sessionsDir = path.join(deps.dataDir, 'sessions', folder);
    let mounts = readMounts();
    if (!existsSync(image)) {
      // Data an agent already wrote is not moved (that would mean walking its tree): the group stays watched.
      if ([groupDir, sessionsDir].some((dir) => !mounts.has(dir) && holdsAgentData(dir))) {
        if (!toldWatched.has(folder)) {
          log.info({ group: folder }, 'group keeps the watched disk quota: its folders hold older data');
        }
        toldWatched.add(folder);
        return false;
      }
      mkdirSync(volumesDir, { recursive: true, mode: 0o700 });
      // Sparse: the image takes only what the group writes (volumes/ is the host's alone, so paths are safe here).
      writeFileSync(image, '', { flag: 'wx', mode: 0o600 });
      truncateSync(image, quotaMb * 1024 * 1024);
      // No blocks reserved for root (-m 0); an 8 MiB journal instead of 64 (it is real disk, for every group).
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-J', 'size=8', image]);
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
    for (const [inside, outside] of Object.entries({ group: groupDir, sessions: sessionsDir })) {
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
    return true;
  }

  return {
    /**
     * Mounts the group's volume (made on first use, grown when its quota grew), its folder and session state bound in
     * place. False when the group stays on the watched quota: volumes off, or its folders already hold the agent's
     * data (not moved; logged once). Never rejects.
     */
    ensure(folder: string, quotaMb: number): Promise<boolean> {
      if (!isEnabled || quotaMb <= 0) return Promise.resolve(false);
      const failed = (error: unknown) => {
        log.error({ err: error, group: folder }, 'cannot mount the group volume; the watched quota applies');
        return false;
      };
      // One at a time: two runs of Warren's own never race to mount the same image.
      queue = queue.then(() => ensureNow(folder, quotaMb).catch(failed));
      return queue;
    },
  };
}
