// What a group run needs on the host before its container starts: its folders, owned by the container's user; the
// proxy socket's folder; and the mounts, extra folders checked against the allowlist.
import { closeSync, fchmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { CONTAINER_PATHS } from '../protocol/ipc.js';
import type { Group } from '../store/records.js';
import type { HostContext } from '../types.js';
import { type ContainerUser, containerUserFor } from './group-folder.js';
import { prepareRunDirs } from './ipc-folder.js';
import { buildMounts, loadMountAllowlist, type Mount, type MountAllowlist } from './mounts.js';
import { chownDescriptor, closeQuietly, openDirectory, openFileIn } from './safe-fs.js';

export { type ContainerUser, containerUserFor };

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

export interface RunMountDeps extends Pick<HostContext, 'store' | 'audit'> {
  config: Pick<Config, 'dataDir' | 'mountAllowlistPath'>;
  /** What is never mounted (the package itself). */
  packageRoot: string;
  log: Logger;
}

/**
 * Makes a folder the agent writes (its group folder, its sessions) belong to the container's user, with its memory
 * file if the host made one (registration). Only through descriptors: the folder is the agent's, and a path checked
 * first and changed after could by then lead anywhere (a chown follows links). Nothing inside is walked.
 */
function giveToContainerUser(dir: string, user: ContainerUser, memoryFile: string | null): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dirFd = openDirectory(dir);
  try {
    fchmodSync(dirFd, 0o700);
    if (process.getuid?.() !== 0) return;
    chownDescriptor(dirFd, user);
    if (memoryFile === null) return;
    let fileFd: number | null = null;
    try {
      // A FIFO, link or folder in its place is the agent's own business: left alone (ENOTREG, ELOOP).
      fileFd = openFileIn(dirFd, memoryFile).fd;
      chownDescriptor(fileFd, user);
    } catch {
      // Missing, or not a plain file: nothing of the host's to hand over.
    } finally {
      closeQuietly(fileFd);
    }
  } finally {
    closeSync(dirFd);
  }
}

/**
 * Makes the run's folders: its IPC folder (emptied), the group's and session folders for the container's user, and
 * the proxy socket's folder. The global memory folder stays the host's (read-only in every container). Returns the
 * IPC folders, the socket path and folders an earlier run set aside for the clean-up container.
 */
export function prepareRunFolders(
  dataDir: string,
  folder: string,
  runDir: string,
  containerUser: ContainerUser,
): { inputDir: string; outputDir: string; socketPath: string; setAside: string[] } {
  const socketDir = path.join(dataDir, 'sockets', folder);
  const { inputDir, outputDir, setAside } = prepareRunDirs(runDir, containerUser);
  giveToContainerUser(path.join(dataDir, 'groups', folder), containerUser, 'CLAUDE.md');
  giveToContainerUser(path.join(dataDir, 'sessions', folder), containerUser, null);
  // The socket's folder stays the host's: the container may connect (0666 socket) but not replace it.
  mkdirSync(socketDir, { recursive: true, mode: 0o755 });
  const socketFd = openDirectory(socketDir);
  try {
    fchmodSync(socketFd, 0o755);
  } finally {
    closeSync(socketFd);
  }
  const socketPath = path.join(socketDir, 'api.sock');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `the proxy socket path ${socketPath} is longer than unix sockets allow (${MAX_SOCKET_PATH_BYTES} bytes); use a shorter WARREN_DATA_DIR`,
    );
  }
  return { inputDir, outputDir, socketPath, setAside };
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
