// What a group run needs on the host before its container starts: its folders, owned by the container's user; the
// proxy socket's folder; and the mounts, extra folders checked against the allowlist.
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { HostContext } from './app.js';
import type { Config } from './config.js';
import { prepareRunDirs } from './ipc-folder.js';
import { CONTAINER_PATHS } from './ipc-protocol.js';
import type { Logger } from './log.js';
import { buildMounts, loadMountAllowlist, type Mount, type MountAllowlist } from './mounts.js';
import type { Group } from './types.js';

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

export interface ContainerUser {
  uid: number;
  gid: number;
}

export interface RunMountDeps extends Pick<HostContext, 'store' | 'audit'> {
  config: Pick<Config, 'dataDir' | 'mountAllowlistPath'>;
  /** What is never mounted (the package itself). */
  packageRoot: string;
  log: Logger;
}

/** The container's user: uid 1000 when the host is root; otherwise the host's own user, so its files just work. */
export function containerUserFor(): ContainerUser {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid: gid === 0 ? 1000 : gid };
}

/**
 * Makes a folder (and what lies directly in it) belong to the container's user, without following symlinks.
 * Only the host's own files need it (CLAUDE.md templates); what the agent writes is already its own.
 */
function giveToContainerUser(dir: string, user: ContainerUser, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
  if (process.getuid?.() !== 0) return;
  const own = (target: string) => {
    const stat = lstatSync(target);
    if (stat.uid !== user.uid || stat.gid !== user.gid) chownSync(target, user.uid, user.gid);
  };
  own(dir);
  for (const entry of readdirSync(dir)) {
    const target = path.join(dir, entry);
    if (!lstatSync(target).isSymbolicLink()) own(target);
  }
}

/**
 * Makes the run's folders: its IPC folder (emptied), the group's, global and session folders for the container's
 * user, and the proxy socket's folder. Returns the IPC folders and the socket path.
 */
export function prepareRunFolders(
  dataDir: string,
  folder: string,
  runDir: string,
  containerUser: ContainerUser,
): { inputDir: string; outputDir: string; socketPath: string } {
  const socketDir = path.join(dataDir, 'sockets', folder);
  const { inputDir, outputDir } = prepareRunDirs(runDir, containerUser);
  giveToContainerUser(path.join(dataDir, 'groups', folder), containerUser, 0o700);
  giveToContainerUser(path.join(dataDir, 'global'), containerUser, 0o700);
  giveToContainerUser(path.join(dataDir, 'sessions', folder), containerUser, 0o700);
  // The socket's folder stays the host's: the container may connect (0666 socket) but not replace it.
  mkdirSync(socketDir, { recursive: true, mode: 0o755 });
  chmodSync(socketDir, 0o755);
  const socketPath = path.join(socketDir, 'api.sock');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `the proxy socket path ${socketPath} is longer than unix sockets allow (${MAX_SOCKET_PATH_BYTES} bytes); use a shorter WARREN_DATA_DIR`,
    );
  }
  return { inputDir, outputDir, socketPath };
}

/**
 * The group's mounts. Extra folders are checked against the allowlist file at every start (read fresh, so a
 * change takes effect at once); a denied or unreadable allowlist mounts nothing extra, and every denial is
 * audited.
 */
export function buildRunMounts(
  deps: RunMountDeps,
  group: Group,
  ipcDirs: { inputDir: string; outputDir: string },
): Mount[] {
  const { config, log } = deps;
  const requested = deps.store.groups.extraMounts(group.id);
  let allowlist: MountAllowlist | null = null;
  if (requested.length > 0) {
    const loaded = loadMountAllowlist(config.mountAllowlistPath);
    if (loaded.ok) allowlist = loaded.allowlist;
    else {
      log.error({ group: group.folder, reason: loaded.reason }, 'mount allowlist unusable: no extra mounts');
      deps.audit({
        groupFolder: group.folder,
        actor: 'host',
        action: 'extra-mount',
        decision: 'deny',
        detail: { reason: loaded.reason },
      });
    }
  }
  const built = buildMounts({
    dataDir: config.dataDir,
    groupFolder: group.folder,
    isAdmin: group.isAdmin,
    extraMounts: requested,
    allowlist,
    protectedPaths: [deps.packageRoot],
  });
  for (const denial of built.denials) {
    deps.audit({
      groupFolder: group.folder,
      actor: 'host',
      action: 'extra-mount',
      decision: 'deny',
      detail: { path: denial.path, reason: denial.reason },
    });
  }
  // input/ read-only on top of the IPC folder: the agent cannot forge the host's prompts or answers. Both
  // folders are mount points of their own, so the agent cannot rename them or put a symlink in their place
  // (the host reads and deletes in output/).
  built.mounts.push(
    { hostPath: ipcDirs.inputDir, containerPath: CONTAINER_PATHS.input, isReadOnly: true },
    { hostPath: ipcDirs.outputDir, containerPath: CONTAINER_PATHS.output, isReadOnly: false },
  );
  return built.mounts;
}
