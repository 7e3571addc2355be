// A group run's place on the host: its folders, made before the container starts and owned by the container's user;
// the proxy socket's folder; the mounts, extra folders checked against the allowlist; and the disk the folders may
// fill: a file system of the group's own where the machine allows one (volumes.ts), else the watched quota
// (disk-quota.ts), measured and emptied by folder jobs (folder-jobs.ts).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { loadMountAllowlist } from '../mount-allowlist-file.js';
import { CONTAINER_PATHS } from '../protocol/ipc.js';
import type { Group } from '../store/records.js';
import { AgentStartError, type HostContext } from '../types.js';
import { createDiskQuota, type DiskQuota } from './disk-quota.js';
import { createFolderJobs, type FolderJobs } from './folder-jobs.js';
import type { ContainerUser } from './group-folder.js';
import { clearRunDirs, prepareRunDirs } from './ipc-folder.js';
import { buildMounts, type Mount } from './mounts.js';
import type { ContainerRuntime } from './runtimes/index.js';
import { chownDescriptor, closeQuietly, inFolder, openFileIn } from './safe-fs.js';
import { createVolumes } from './volumes.js';

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

export interface RunFoldersDeps extends HostContext {
  config: Config;
  log: Logger;
  /** Starts the agents, and the folder jobs in throwaway containers of the agent image. */
  runtime: ContainerRuntime;
  /** Labels this install's containers; orphan clean-up only touches these. */
  installId: string;
  /** Where the agent image is built from (agent/Dockerfile) and what is never mounted. */
  packageRoot: string;
  user: ContainerUser;
}

export interface RunFolders {
  /**
   * Gets a group's run ready on the host: its volume mounted; its IPC folder emptied (what an earlier run set aside
   * goes to a clean-up container); its group and session folders handed to the container's user; the proxy socket's
   * folder kept the host's, like global memory; its mounts. Throws an AgentStartError when the group is over its
   * disk quota or the disk is nearly full.
   */
  prepare(group: Group): Promise<{ runDir: string; socketPath: string; mounts: Mount[] }>;
  /** Empties a finished run's IPC folders, never walking them (see clearRunDirs). Never throws. */
  clear(folder: string): void;
  quota: DiskQuota;
  jobs: FolderJobs;
}

export function createRunFolders(deps: RunFoldersDeps): RunFolders {
  const { config, store, user } = deps;
  const { dataDir } = config;
  const log = deps.log.child({ module: 'run-folders' });
  const runDirOf = (folder: string) => path.join(dataDir, 'ipc', folder);
  const jobs = createFolderJobs({ ...deps, image: config.agentImage });
  const volumes = createVolumes({ dataDir, mode: config.diskQuotaMode, user, log: deps.log });
  const quotaMbOf = (folder: string) => store.groups.diskQuotaMb(folder) ?? config.diskQuotaMb;
  /** Groups on a file system of their own: the kernel holds them to their quota; only the free-disk floor is watched. */
  const hardLimited = new Set<string>();
  const ensureVolume = async (folder: string) => {
    if (await volumes.ensure(folder, quotaMbOf(folder))) hardLimited.add(folder);
    else hardLimited.delete(folder);
  };
  // Volumes made before are mounted at start, so what the host saves for a group (media) lands in them.
  const volumesMounted = Promise.all(
    store.groups
      .list()
      .filter((group) => existsSync(path.join(dataDir, 'volumes', `${group.folder}.ext4`)))
      .map((group) => ensureVolume(group.folder)),
  );
  const quota = createDiskQuota({
    ...deps,
    dataDir,
    quotaMbOf: (folder) => (hardLimited.has(folder) ? 0 : quotaMbOf(folder)),
    minFreeMb: config.minFreeDiskMb,
    // The three places of a group on the host's disk that its agent can fill.
    measure: (folder) =>
      jobs.measure(
        folder,
        ['groups', 'sessions', 'ipc'].map((part) => path.join(dataDir, part, folder)).filter(existsSync),
      ),
    remember: {
      load: (folder) => store.groups.diskUse(folder),
      save: (folder, use) => store.groups.setDiskUse(folder, use),
    },
  });

  /**
   * The group's mounts. Extra folders are checked against the allowlist file at every start (read fresh, so a
   * change takes effect at once); a denied or unreadable allowlist mounts nothing extra, and every denial is
   * audited.
   */
  function buildRunMounts(group: Group, ipcDirs: { inputDir: string; outputDir: string }): Mount[] {
    const requested = deps.store.groups.extraMounts(group.id);
    const loaded = requested.length > 0 ? loadMountAllowlist(config.mountAllowlistPath) : null;
    const deny = (detail: Record<string, unknown>) =>
      deps.audit({
        groupFolder: group.folder,
        actor: 'host',
        action: 'extra-mount',
        decision: 'deny',
        detail,
      });
    if (loaded && !loaded.ok) {
      log.error({ group: group.folder, reason: loaded.reason }, 'mount allowlist unusable: no extra mounts');
      deny({ reason: loaded.reason });
    }
    const built = buildMounts({
      dataDir,
      groupFolder: group.folder,
      isAdmin: group.isAdmin,
      extraMounts: requested,
      allowlist: loaded?.ok ? loaded.allowlist : null,
      protectedPaths: [deps.packageRoot],
    });
    for (const { path, reason } of built.denials) deny({ path, reason });
    // input/ read-only on top of the IPC folder: the agent cannot forge the host's prompts or answers. Both
    // folders are mount points of their own, so the agent cannot rename them or put a symlink in their place
    // (the host reads and deletes in output/).
    built.mounts.push(
      { hostPath: ipcDirs.inputDir, containerPath: CONTAINER_PATHS.input, isReadOnly: true },
      { hostPath: ipcDirs.outputDir, containerPath: CONTAINER_PATHS.output, isReadOnly: false },
    );
    return built.mounts;
  }

  return {
    async prepare(group) {
      const { folder } = group;
      const socketPath = path.join(dataDir, 'sockets', folder, 'api.sock');
      if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
        throw new Error(
          `the proxy socket path ${socketPath} is longer than unix sockets allow (${MAX_SOCKET_PATH_BYTES} bytes); use a shorter WARREN_DATA_DIR`,
        );
      }
      await volumesMounted;
      await ensureVolume(folder);
      const { setAside, ...ipcDirs } = prepareRunDirs(runDirOf(folder), user);
      jobs.clear(folder, setAside);
      giveToContainerUser(path.join(dataDir, 'groups', folder), user, 'CLAUDE.md');
      giveToContainerUser(path.join(dataDir, 'sessions', folder), user, null);
      // The socket's folder stays the host's: the container may connect (0666 socket) but not replace it.
      inFolder(path.dirname(socketPath), 0o755, () => {});
      const refusal = await quota.checkBeforeStart(folder);
      if (refusal !== null) throw new AgentStartError(refusal, false);
      return { runDir: runDirOf(folder), socketPath, mounts: buildRunMounts(group, ipcDirs) };
    },
    clear: (folder) => jobs.clear(folder, clearRunDirs(runDirOf(folder))),
    quota,
    jobs,
  };
}

/**
 * Makes a folder the agent writes (its group folder, its sessions) belong to the container's user, with its memory
 * file if the host made one (registration). Only through descriptors: the folder is the agent's, and a path checked
 * first and changed after could by then lead anywhere (a chown follows links). Nothing inside is walked.
 */
function giveToContainerUser(dir: string, user: ContainerUser, memoryFile: string | null): void {
  inFolder(dir, 0o700, (dirFd) => {
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
  });
}
