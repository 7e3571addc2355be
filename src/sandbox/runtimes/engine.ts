// A ContainerRuntime over the engine's HTTP API (dockerode on its socket): no client process per container, so none
// that could inherit the host's environment (its model key, channel tokens) either.
import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import { ENGINE_TIMEOUT_MS, engineMessage, startContainer, within } from './container.js';
import {
  assertInstallId,
  type ContainerRuntime,
  type ContainerSpec,
  DEFAULT_CONTAINER_USER,
  LABEL_GROUP,
  LABEL_INSTALL,
  LABEL_MANAGED,
  type OwnedContainer,
  type RuntimeKind,
  validateSpec,
} from './runtime.js';

/** What differs between the engines that speak the Docker API. */
export interface EngineFlavor {
  kind: RuntimeKind;
  /** Host settings this engine needs on every container (gVisor: the runsc runtime; podman: rlimits). */
  hostConfig: Docker.HostConfig;
  /** An OCI runtime that must be registered with the engine (gVisor's runsc). */
  requiredOciRuntime?: string;
}

const DEFAULT_TMPFS_SIZE_MB = 64;

/** The container the engine is asked to create. Every hardening setting is here, with the reason for it. */
export function createOptions(spec: ContainerSpec, flavor: EngineFlavor): Docker.ContainerCreateOptions {
  validateSpec(spec);
  const user = spec.user ?? DEFAULT_CONTAINER_USER;
  const memory = spec.limits.memoryMb * 1024 * 1024;
  // noexec/nosuid/nodev: scratch space is for data, not for dropping binaries or device nodes.
  const tmpfs = `rw,noexec,nosuid,nodev,size=${spec.tmpfsSizeMb ?? DEFAULT_TMPFS_SIZE_MB}m,mode=1777`;
  // Docker fills a tmpfs mounted over an image folder with that folder's contents and mode, but not its owner
  // (tmpcopyup): the image user's 0700 home would become root's 0700, unusable. uid/gid give the spec's tmpfs
  // folders to the container's user. Podman rejects uid= (and keeps /tmp, shared, as it is).
  const owner = flavor.kind === 'podman' ? '' : `,uid=${user.uid},gid=${user.gid}`;
  const tmpfsDirs = (spec.tmpfs ?? []).filter((dir) => dir !== '/tmp');
  return {
    name: spec.name,
    // Creating never pulls: a missing image is a start failure, never a surprise download from a registry.
    Image: spec.image,
    // Ownership labels: listOwned and orphan clean-up match on the install label, so other installs are never touched.
    Labels: { [LABEL_INSTALL]: spec.installId, [LABEL_GROUP]: spec.groupFolder, [LABEL_MANAGED]: 'true' },
    // Never root inside: a container escape lands as an unprivileged uid.
    User: `${user.uid}:${user.gid}`,
    Env: Object.keys(spec.env)
      .sort()
      .map((key) => `${key}=${spec.env[key]}`),
    ...(spec.workdir === undefined ? {} : { WorkingDir: spec.workdir }),
    ...(spec.entrypoint === undefined ? {} : { Entrypoint: [spec.entrypoint] }),
    ...(spec.command === undefined ? {} : { Cmd: spec.command }),
    HostConfig: {
      // The engine's own additions (gVisor's runtime, podman's ulimits) first: nothing after can be overridden.
      ...flavor.hostConfig,
      // Default-deny network (invariant 3): loopback only; the model API is reached through a mounted unix socket.
      NetworkMode: 'none',
      // The agent cannot change its own image, so it cannot leave a backdoor for its next run (invariant 5).
      ReadonlyRootfs: true,
      Tmpfs: Object.fromEntries([['/tmp', tmpfs], ...tmpfsDirs.map((dir) => [dir, `${tmpfs}${owner}`])]),
      // No capabilities at all: no chown, mount, raw sockets, ptrace, setuid tricks even if uid 0 were reached.
      CapDrop: ['ALL'],
      // setuid binaries and file capabilities cannot raise privileges.
      SecurityOpt: ['no-new-privileges'],
      // MemorySwap equal to Memory: no swap, so the memory limit is a real limit (over it: OOM kill).
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(spec.limits.cpus * 1e9),
      // Bounds fork bombs and runaway tool processes.
      PidsLimit: spec.limits.pids,
      // A tiny init as PID 1: forwards SIGTERM so stop() is prompt, and reaps zombies the agent's tools leave.
      Init: true,
      // Output reaches the host through the attach stream; the engine keeps no unbounded log file on disk.
      LogConfig: { Type: 'none', Config: {} },
      // Binds with explicit fields: a missing host path is an error, never created (root-owned) by the engine.
      Mounts: spec.mounts.map((mount) => ({
        Type: 'bind',
        Source: mount.hostPath,
        Target: mount.containerPath,
        ReadOnly: mount.isReadOnly,
      })),
    },
  };
}

/**
 * The runtime for one engine, less what the engine says about itself and its images (checkAvailable, cpuCount,
 * hasImage): src/image/engine-setup.ts adds those.
 */
export function createApiRuntime(
  flavor: EngineFlavor,
  docker: Docker,
  log?: Logger,
): Omit<ContainerRuntime, 'checkAvailable' | 'cpuCount' | 'hasImage'> {
  async function listOwned(installId: string): Promise<OwnedContainer[]> {
    assertInstallId(installId);
    const filters = { label: [`${LABEL_INSTALL}=${installId}`, `${LABEL_MANAGED}=true`] };
    const listed = await within(ENGINE_TIMEOUT_MS, docker.listContainers({ all: true, filters })).catch(
      (error: unknown) => {
        throw new Error(`the container engine could not list containers: ${engineMessage(error)}`);
      },
    );
    // Defence in depth: the label filter already matched, but only ever report what is provably ours.
    return listed
      .filter(
        (entry) => entry.Labels[LABEL_INSTALL] === installId && entry.Labels[LABEL_GROUP] && entry.Names[0],
      )
      .map((entry) => ({
        name: (entry.Names[0] as string).replace(/^\//, ''),
        groupFolder: entry.Labels[LABEL_GROUP] as string,
        isRunning: entry.State === 'running' || entry.State === 'paused',
      }));
  }

  return {
    kind: flavor.kind,
    start: async (spec) => startContainer(docker, spec, createOptions(spec, flavor), log),
    listOwned,

    async removeOrphans(installId) {
      const names = (await listOwned(installId)).map((entry) => entry.name);
      const isGone = await Promise.all(
        names.map((name) =>
          within(ENGINE_TIMEOUT_MS, docker.getContainer(name).remove({ force: true })).then(
            () => true,
            (error: { statusCode?: number }) => error.statusCode === 404,
          ),
        ),
      );
      return names.filter((_, index) => isGone[index]);
    },
  };
}
