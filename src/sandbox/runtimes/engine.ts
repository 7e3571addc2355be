// A ContainerRuntime over the engine's HTTP API (dockerode on its socket): no client process per container, so none
// that could inherit the host's environment (its model key, channel tokens) either.
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { Logger } from '../../log.js';
import {
  assertImageTag,
  type ContainerExit,
  type ContainerRuntime,
  type ContainerSpec,
  ContainerSpecError,
  DEFAULT_CONTAINER_USER,
  isValidInstallId,
  LABEL_GROUP,
  LABEL_INSTALL,
  LABEL_MANAGED,
  type OwnedContainer,
  type RunningContainer,
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
  /** What to tell a person whose engine socket is missing, or there but not answering. */
  installFix: string;
  startFix: string;
}

/** How long a quick engine request (create, start, inspect, kill, remove, list) may take before we stop waiting. */
const ENGINE_TIMEOUT_MS = 30_000;
const DEFAULT_TMPFS_SIZE_MB = 64;
const MAX_LINE_BYTES = 64 * 1024;

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
      ...flavor.hostConfig,
    },
  };
}

/** Everything but buildImage (image-build.ts). */
export function createApiRuntime(
  flavor: EngineFlavor,
  docker: Docker,
  where: string,
  log?: Logger,
): Omit<ContainerRuntime, 'buildImage'> {
  async function listOwned(installId: string): Promise<OwnedContainer[]> {
    if (!isValidInstallId(installId)) throw new ContainerSpecError(`install id is invalid: ${installId}`);
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

    async checkAvailable() {
      let version: string;
      try {
        version = (await within(15_000, docker.version())).Version;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        return {
          ok: false,
          reason: `the ${flavor.kind} engine is not reachable at ${where}: ${engineMessage(error)}`,
          fix:
            code === 'ENOENT'
              ? flavor.installFix
              : code === 'EACCES'
                ? `let the user running Warren use ${where} (the docker group, or a rootless engine)`
                : flavor.startFix,
        };
      }
      const runtime = flavor.requiredOciRuntime;
      if (runtime !== undefined) {
        const info = await within(15_000, docker.info()).catch(() => null);
        if (!(runtime in (info?.Runtimes ?? {}))) {
          return {
            ok: false,
            reason: `the engine has no '${runtime}' runtime registered`,
            fix: `install it (apt-get install runsc) and add {"runtimes":{"runsc":{"path":"/usr/bin/runsc"}}} to /etc/docker/daemon.json, then restart the engine`,
          };
        }
      }
      return { ok: true, version };
    },

    async cpuCount() {
      const count = (await within(15_000, docker.info()).catch(() => null))?.NCPU;
      return Number.isInteger(count) && count > 0 ? count : null;
    },

    async hasImage(tag) {
      assertImageTag(tag);
      return within(ENGINE_TIMEOUT_MS, docker.getImage(tag).inspect()).then(
        () => true,
        () => false,
      );
    },
  };
}

/**
 * Creates, attaches to (before it starts, so no output is missed) and starts the container. No AutoRemove: it is
 * inspected (OOM?) after it ends and then removed by us, before exited resolves.
 */
async function startContainer(
  docker: Docker,
  spec: ContainerSpec,
  options: Docker.ContainerCreateOptions,
  log?: Logger,
): Promise<RunningContainer> {
  const container = docker.getContainer(spec.name);
  const sink = (stream: 'stdout' | 'stderr', tailBytes = 0) =>
    new LineSink((line) => {
      try {
        spec.onOutput?.({ stream, line });
      } catch (error) {
        log?.warn({ container: spec.name, err: error }, 'container output handler threw');
      }
    }, tailBytes);
  const stdout = sink('stdout');
  const stderr = sink('stderr', 8 * 1024);
  let drained: Promise<unknown> = Promise.resolve();
  log?.debug({ container: spec.name, group: spec.groupFolder }, 'container starting');
  const startError = await within(
    ENGINE_TIMEOUT_MS,
    (async () => {
      await docker.createContainer(options);
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      // The engine ends the attach stream once the container has ended and all its output is sent.
      drained = finished(stream).catch(() => {});
      docker.modem.demuxStream(stream, stdout, stderr);
      await container.start();
    })(),
  ).then(() => null, engineMessage);

  let endRequest: 'killed' | 'timeout' | null = null;
  let hasEnded = false;
  let lostEngine: string | null = null;
  let giveUp!: (code: null) => void;
  const ended: Promise<number | null> =
    startError !== null
      ? Promise.resolve(null)
      : Promise.race([
          container.wait({ condition: 'not-running' }).then(
            (result: { StatusCode: number }) => result.StatusCode,
            (error: unknown) => {
              lostEngine = engineMessage(error);
              return null;
            },
          ),
          new Promise<null>((resolve) => {
            giveUp = resolve;
          }),
        ]);
  const endsWithin = (ms: number) => Promise.race([ended.then(() => true), sleep(ms, false, { ref: false })]);
  async function kill(): Promise<void> {
    await within(ENGINE_TIMEOUT_MS, container.kill()).catch(() => {});
    // An engine that does not answer: stop waiting for it; removeOrphans finds the container later.
    if (!(await endsWithin(ENGINE_TIMEOUT_MS))) giveUp(null);
  }
  const timer = setTimeout(() => {
    endRequest ??= 'timeout';
    void kill();
  }, spec.hardRunTimeoutMs);

  async function describe(exitCode: number | null): Promise<ContainerExit> {
    if (startError !== null) return { exitCode: null, reason: 'start-failed', detail: startError };
    if (endRequest === 'timeout') {
      return { exitCode, reason: 'timeout', detail: `hard run timeout of ${spec.hardRunTimeoutMs} ms` };
    }
    if (endRequest === 'killed') return { exitCode, reason: 'killed' };
    // 137 is any SIGKILL: only the engine knows whether the kernel's OOM killer sent it.
    const info =
      exitCode === 137 ? await within(ENGINE_TIMEOUT_MS, container.inspect()).catch(() => null) : null;
    if (info?.State.OOMKilled) {
      return { exitCode, reason: 'oom', detail: `memory limit ${spec.limits.memoryMb} MB` };
    }
    return {
      exitCode,
      reason: 'exited',
      ...(lostEngine === null ? {} : { detail: `lost track: ${lostEngine}` }),
    };
  }

  const exited = ended.then(async (exitCode) => {
    hasEnded = true;
    clearTimeout(timer);
    await within(2_000, drained).catch(() => {});
    stdout.flush();
    stderr.flush();
    const exit = await describe(exitCode);
    await within(ENGINE_TIMEOUT_MS, container.remove({ force: true })).catch(() => {});
    log?.debug({ container: spec.name, group: spec.groupFolder, ...exit }, 'container ended');
    return exit;
  });

  return {
    name: spec.name,
    exited,
    stderrTail: () => stderr.tail(),
    async pause(isPaused) {
      if (hasEnded) return false;
      return within(ENGINE_TIMEOUT_MS, isPaused ? container.pause() : container.unpause()).then(
        () => true,
        () => false,
      );
    },
    async stop(graceMs = 10_000) {
      if (!hasEnded) {
        endRequest ??= 'killed';
        // The engine sends SIGTERM, then SIGKILL once the grace is over; it answers when the container has stopped.
        const stopping = container.stop({ t: Math.max(0, Math.ceil(graceMs / 1000)) });
        await within(graceMs + ENGINE_TIMEOUT_MS, stopping).catch(() => {});
        if (!(await endsWithin(2_000))) await kill();
      }
      await exited;
    },
  };
}

/** Settles as promise does, or rejects after ms (the request itself is left to the engine). */
export function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  const late = sleep(ms, undefined, { ref: false }).then(() => {
    throw new Error(`the container engine did not answer within ${ms / 1000} s`);
  });
  return Promise.race([promise, late]);
}

/** The engine's own words for a failed request (its JSON message), else the error's. */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  if (typeof json?.message === 'string') return json.message;
  return error instanceof Error ? error.message : String(error);
}

/** Cuts a byte stream into lines (a line over 64 KiB is cut there, so memory stays bounded); keeps a tail. */
export class LineSink extends Writable {
  private pending = Buffer.alloc(0);
  private last = Buffer.alloc(0);

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly tailBytes = 0,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    if (this.tailBytes > 0) this.last = Buffer.concat([this.last, chunk]).subarray(-this.tailBytes);
    let data = Buffer.concat([this.pending, chunk]);
    for (let end = data.indexOf(0x0a); end !== -1; end = data.indexOf(0x0a)) {
      this.line(data.subarray(0, end));
      data = data.subarray(end + 1);
    }
    // What is left has no newline: whole 64 KiB pieces go now, at most 64 KiB waits for the rest of its line.
    const cut =
      data.length > MAX_LINE_BYTES ? Math.floor((data.length - 1) / MAX_LINE_BYTES) * MAX_LINE_BYTES : 0;
    if (cut > 0) this.line(data.subarray(0, cut));
    this.pending = Buffer.from(data.subarray(cut));
    done();
  }

  override _final(done: () => void): void {
    this.flush();
    done();
  }

  flush(): void {
    if (this.pending.length > 0) this.line(this.pending);
    this.pending = Buffer.alloc(0);
  }

  tail(): string {
    return this.last.toString('utf8');
  }

  private line(bytes: Buffer): void {
    for (let start = 0; start === 0 || start < bytes.length; start += MAX_LINE_BYTES) {
      const text = bytes.subarray(start, start + MAX_LINE_BYTES).toString('utf8');
      this.onLine(text.endsWith('\r') ? text.slice(0, -1) : text);
    }
  }
}
