// A ContainerRuntime over the engine's HTTP API: no client process per container that could inherit host secrets.
import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import { ENGINE_TIMEOUT_MS, engineMessage, startContainer, within } from './container.js';
import {
  assertInstallId,
  type ContainerSpec,
  LABEL_GROUP,
  LABEL_INSTALL,
  LABEL_MANAGED,
  type OwnedContainer,
  type RuntimeKind,
  validateSpec,
} from './runtime.js';

/**
 * Everything that differs between the engines Warren names, in this one table, each with the reason. What is not here
 * is the same on all three (proven by test/e2e on each): CPU count (the engine's NCPU), memory limit and OOM report.
 */
export const ENGINES: Record<
  RuntimeKind,
  {
    /** Added to every container's HostConfig. */
    hostConfig: Docker.HostConfig;
    /** Mount options that give a tmpfs over an image folder (e.g. $HOME) to the container's user. */
    tmpfsOwner(user: { uid: number; gid: number }): string;
  }
> = {
  // Docker fills a tmpfs over an image folder with its contents and mode but not its owner: the image user's 0700
  // home would become root's. uid/gid give it to the container's user.
  docker: { hostConfig: {}, tmpfsOwner: (user) => `,uid=${user.uid},gid=${user.gid}` },
  // gVisor: every syscall of the container goes to a user-space kernel, so a kernel bug is not a host escape. The
  // engine must have runsc registered (docs/RUNTIMES.md); tmpfs and everything else as on Docker.
  gvisor: { hostConfig: { Runtime: 'runsc' }, tmpfsOwner: (user) => `,uid=${user.uid},gid=${user.gid}` },
  podman: {
    hostConfig: {
      // Podman 4.3 fails every run with "error setting rlimit" when it inherits the host's limits; explicit ones work.
      Ulimits: [
        { Name: 'nofile', Soft: 4096, Hard: 4096 },
        { Name: 'nproc', Soft: 4096, Hard: 4096 },
      ],
      // Rootless podman (the host runs as a user): the container's uids are the user's subuids, so the group folder
      // the host made (its own) would be another user's inside. keep-id maps the host user to the same uid inside,
      // the user containerUserFor() picks. Rootful podman refuses keep-id, and needs nothing: uids are the host's.
      ...(process.getuid?.() === 0 ? {} : { UsernsMode: 'keep-id' }),
    },
    // Podman rejects uid= on a tmpfs and ignores its mode over an image folder; U chowns it to the container's user.
    tmpfsOwner: () => ',U',
  },
};

/** The container the engine is asked to create. Every hardening setting is here, with the reason for it. */
export function createOptions(spec: ContainerSpec, kind: RuntimeKind): Docker.ContainerCreateOptions {
  validateSpec(spec);
  const user = spec.user ?? { uid: 1000, gid: 1000 };
  const memory = spec.limits.memoryMb * 1024 * 1024;
  // noexec/nosuid/nodev: scratch space is for data, not for dropping binaries or device nodes. Counts as memory.
  const tmpfs = 'rw,noexec,nosuid,nodev,size=64m,mode=1777';
  const owner = ENGINES[kind].tmpfsOwner(user);
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
      ...ENGINES[kind].hostConfig,
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

/** The runtime for one engine, less what it says about itself and its images: src/image/engine-setup.ts adds those. */
export function createApiRuntime(kind: RuntimeKind, docker: Docker, log?: Logger) {
  async function listOwned(installId: string): Promise<OwnedContainer[]> {
    assertInstallId(installId);
    const filters = { label: [`${LABEL_INSTALL}=${installId}`, `${LABEL_MANAGED}=true`] };
    const listed = await within(ENGINE_TIMEOUT_MS, docker.listContainers({ all: true, filters })).catch(
      (error) => {
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
    kind,
    start: async (spec: ContainerSpec) => startContainer(docker, spec, createOptions(spec, kind), log),
    listOwned,
    async removeOrphans(installId: string) {
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
