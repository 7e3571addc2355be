// A group run's place on the host: its folders (owned by the container's user), the proxy socket's folder, the mounts
// (extra folders checked against the allowlist), and the disk they may fill: a file system of the group's own where
// the machine allows one (volumes.ts), else the watched quota (disk-quota.ts), measured by folder jobs.
import { existsSync, lstatSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { loadMountAllowlist } from '../mount-allowlist-file.js';
import { CONTAINER_PATHS } from '../protocol/ipc.js';
import type { Group } from '../store/records.js';
import { AgentStartError, type HostContext } from '../types.js';
import { createDiskQuota } from './disk-quota.js';
import { createFolderJobs } from './folder-jobs.js';
import { type ContainerUser, groupDir } from './group-folder.js';
import { clearRunDirs, prepareRunDirs } from './ipc-folder.js';
import { buildMounts, type Mount } from './mounts.js';
import type { ContainerRuntime } from './runtimes/index.js';
import { chownDescriptor, closeQuietly, inFolder, isDone, openFileIn, removeFolderTree } from './safe-fs.js';
import { createVolumes, removeVolume } from './volumes.js';

/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

export interface RunFoldersDeps extends HostContext {
  config: Config;
  log: Logger;
  /** Starts the agents, and the folder jobs in throwaway containers of the agent image. */
  runtime: ContainerRuntime;
  /** Labels this install's containers; orphan clean-up only touches these. */
  installId: string;
  /** Where the agent image is built from (agent/Dockerfile); never mounted. */
  packageRoot: string;
  user: ContainerUser;
}

export function createRunFolders(deps: RunFoldersDeps) {
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

  /** The allowlist is read at every start (a change counts at once); an unreadable one mounts nothing extra. */
  function buildRunMounts(group: Group, ipcDirs: { inputDir: string; outputDir: string }): Mount[] {
    const requested = deps.store.groups.extraMounts(group.id);
    const loaded = requested.length > 0 ? loadMountAllowlist(config.mountAllowlistPath) : null;
    const groupFolder = group.folder;
    const deny = (detail: Record<string, unknown>) =>
      deps.audit({ groupFolder, actor: 'host', action: 'extra-mount', decision: 'deny', detail });
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
    // input/ read-only: the agent cannot forge the host's prompts or answers. Both are mount points of their own,
    // so the agent cannot rename them or put a link in their place (the host reads and deletes in output/).
    built.mounts.push(
      { hostPath: ipcDirs.inputDir, containerPath: CONTAINER_PATHS.input, isReadOnly: true },
      { hostPath: ipcDirs.outputDir, containerPath: CONTAINER_PATHS.output, isReadOnly: false },
    );
    return built.mounts;
  }

  return {
    /**
     * Gets a group's run ready: its volume mounted, its IPC folder emptied (what an earlier run set aside goes to a
     * clean-up container), its group and session folders handed to the container's user, the proxy socket's folder
     * kept the host's, its mounts. Throws an AgentStartError when over its disk quota or the disk is nearly full.
     */
    async prepare(group: Group) {
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
    /** Empties a finished run's IPC folders, never walking them (clearRunDirs). Never throws. */
    clear: (folder: string) => jobs.clear(folder, clearRunDirs(runDirOf(folder))),
    quota,
    jobs,
  };
}

/**
 * Deletes a purged group's files: its volume if it had one, its folder, session state, IPC and proxy socket folders
 * (removeFolderTree: no link followed, nothing outside touched), and the staged files of replies it will never send
 * (from the database, so only ever under outgoing/). Returns what went and what is left, under the data directory.
 * Rejects only for a name that is not a group folder's.
 */
export async function removeGroupFiles(dataDir: string, folder: string, stagedFiles: string[]) {
  groupDir(dataDir, folder); // throws for a name that is not a group folder's (a bug): it becomes paths
  const removed: string[] = [];
  const left: string[] = [];
  try {
    removed.push(...(await removeVolume(dataDir, folder)).map((image) => path.relative(dataDir, image)));
  } catch (error) {
    left.push(`volumes/${folder}.ext4 (${(error as Error).message})`);
  }
  for (const part of ['groups', 'sessions', 'ipc', 'sockets']) {
    const dir = path.join(dataDir, part, folder);
    if (!lstatSync(dir, { throwIfNoEntry: false })) continue;
    ((await removeFolderTree(dir)) ? removed : left).push(`${part}/${folder}`);
  }
  const outgoing = path.join(dataDir, 'outgoing');
  for (const file of stagedFiles.filter((file) => path.dirname(file) === outgoing)) {
    if (!isDone(() => rmSync(file, { force: true }))) left.push(path.relative(dataDir, file));
  }
  return { removed, left };
}

/**
 * Gives a folder the agent writes (group, sessions) to the container's user, with the memory file the host made at
 * registration. Only through descriptors: a path checked first could lead anywhere by the chown (which follows
 * links). Nothing inside is walked.
 */
function giveToContainerUser(dir: string, user: ContainerUser, memoryFile: string | null): void {
  inFolder(dir, 0o700, (dirFd) => {
    if (process.getuid?.() !== 0) return;
    chownDescriptor(dirFd, user);
    if (memoryFile === null) return;
    let fileFd: number | null = null;
    try {
      fileFd = openFileIn(dirFd, memoryFile).fd;
      chownDescriptor(fileFd, user);
    } catch {
      // Missing, or a FIFO, link or folder in its place (ENOTREG, ELOOP): the agent's own business, left alone.
    } finally {
      closeQuietly(fileFd);
    }
  });
}
