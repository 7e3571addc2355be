// A ContainerRuntime driven through a docker-compatible CLI (docker, podman): the hardened run arguments and the lifecycle.
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../log.js';
import { ENGINE_QUESTION_TIMEOUT_MS, runCommand } from './process.js';
import { startContainer } from './running-container.js';
import {
  type BuildImageOptions,
  type BuildImageResult,
  ContainerEngineError,
  type ContainerRuntime,
  type ContainerSpec,
  ContainerSpecError,
  DEFAULT_CONTAINER_USER,
  type ExecOptions,
  type ExecResult,
  isValidContainerName,
  isValidImageTag,
  isValidInstallId,
  LABEL_GROUP,
  LABEL_INSTALL,
  LABEL_MANAGED,
  type OwnedContainer,
  type RuntimeAvailability,
  type RuntimeKind,
  validateSpec,
} from './runtime.js';

/** What differs between the engines that speak the docker CLI dialect. */
export interface CliFlavor {
  kind: RuntimeKind;
  binary: string;
  /** Flags this engine needs on every run (podman: rlimits; gVisor: --runtime=runsc). */
  extraRunArgs: string[];
  /** Go template for `<binary> version` that prints the engine's version. */
  versionFormat: string;
  /** Go template for `<binary> info` that prints how many CPUs the engine has. */
  cpuCountFormat: string;
  /** An OCI runtime that must be registered with the engine (gVisor's runsc). */
  requiredOciRuntime?: string;
  /** What to tell a person whose engine is missing or down. */
  installFix: string;
  startFix: string;
}

const DEFAULT_TMPFS_SIZE_MB = 64;

/** The `run` arguments for a spec. Every hardening flag is here, with the reason for it. */
export function buildRunArgs(spec: ContainerSpec, flavor: CliFlavor): string[] {
  validateSpec(spec);
  const user = spec.user ?? DEFAULT_CONTAINER_USER;
  const memory = `${spec.limits.memoryMb}m`;
  // noexec/nosuid/nodev: scratch space is for data, not for dropping binaries or device nodes.
  // mode=1777 rather than uid=: podman rejects uid= on tmpfs.
  const tmpfsOptions = `rw,noexec,nosuid,nodev,size=${spec.tmpfsSizeMb ?? DEFAULT_TMPFS_SIZE_MB}m,mode=1777`;
  const tmpfsDirs = (spec.tmpfs ?? []).filter((dir) => dir !== '/tmp');
  // Docker fills a tmpfs mounted over an image folder with that folder's contents and mode, but not its owner
  // (tmpcopyup): the image user's 0700 home would become root's 0700, unusable. uid/gid give the spec's tmpfs
  // folders to the container's user. Podman rejects uid= (and keeps /tmp, shared, as it is).
  const ownerOptions = flavor.kind === 'podman' ? '' : `,uid=${user.uid},gid=${user.gid}`;
  return [
    'run',
    '--name',
    spec.name,
    // Ownership labels: listOwned and orphan clean-up match on the install label, so other installs are never touched.
    '--label',
    `${LABEL_INSTALL}=${spec.installId}`,
    '--label',
    `${LABEL_GROUP}=${spec.groupFolder}`,
    '--label',
    `${LABEL_MANAGED}=true`,
    // A missing image is a start failure, never a surprise download from a registry.
    '--pull',
    'never',
    // Default-deny network (invariant 3): loopback only; the model API is reached through a mounted unix socket.
    '--network',
    'none',
    // The agent cannot change its own image, so it cannot leave a backdoor for its next run (invariant 5).
    '--read-only',
    '--tmpfs',
    `/tmp:${tmpfsOptions}`,
    ...tmpfsDirs.flatMap((dir) => ['--tmpfs', `${dir}:${tmpfsOptions}${ownerOptions}`]),
    // No capabilities at all: no chown, mount, raw sockets, ptrace, setuid tricks even if uid 0 were reached.
    '--cap-drop',
    'ALL',
    // setuid binaries and file capabilities cannot raise privileges.
    '--security-opt',
    'no-new-privileges',
    // Never root inside: a container escape lands as an unprivileged uid.
    '--user',
    `${user.uid}:${user.gid}`,
    // memory-swap equal to memory: no swap, so the memory limit is a real limit (over it: OOM kill).
    '--memory',
    memory,
    '--memory-swap',
    memory,
    '--cpus',
    String(spec.limits.cpus),
    // Bounds fork bombs and runaway tool processes.
    '--pids-limit',
    String(spec.limits.pids),
    // A tiny init as PID 1: forwards SIGTERM so stop() is prompt, and reaps zombies the agent's tools leave.
    '--init',
    // Output reaches the host through the attached CLI; the engine keeps no unbounded log file on disk.
    '--log-driver',
    'none',
    ...flavor.extraRunArgs,
    // --mount, not -v: explicit fields, no silent creation of a missing host path (root-owned) by the engine.
    ...spec.mounts.flatMap((mount) => [
      '--mount',
      `type=bind,source=${mount.hostPath},target=${mount.containerPath}${mount.isReadOnly ? ',readonly' : ''}`,
    ]),
    ...Object.keys(spec.env)
      .sort()
      .flatMap((key) => ['--env', `${key}=${spec.env[key]}`]),
    ...(spec.workdir === undefined ? [] : ['--workdir', spec.workdir]),
    ...(spec.entrypoint === undefined ? [] : ['--entrypoint', spec.entrypoint]),
    // stdin stays attached only when there is something to hand over.
    ...(spec.stdin === undefined ? [] : ['--interactive']),
    spec.image,
    ...(spec.command ?? []),
  ];
}

export function createCliRuntime(flavor: CliFlavor, options: { log?: Logger } = {}): ContainerRuntime {
  const ask = (args: string[], timeoutMs = ENGINE_QUESTION_TIMEOUT_MS) =>
    runCommand(flavor.binary, args, { timeoutMs });

  async function listOwned(installId: string): Promise<OwnedContainer[]> {
    if (!isValidInstallId(installId)) throw new ContainerSpecError(`install id is invalid: ${installId}`);
    const psArgs = [
      'ps',
      '--all',
      '--quiet',
      '--no-trunc',
      '--filter',
      `label=${LABEL_INSTALL}=${installId}`,
    ];
    const ps = await ask([...psArgs, '--filter', `label=${LABEL_MANAGED}=true`]);
    if (ps.exitCode !== 0) throw engineError('ps', ps);
    const ids = ps.stdout.split('\n').filter((line) => line.trim() !== '');
    if (ids.length === 0) return [];
    const format = `{{.Name}}\t{{index .Config.Labels "${LABEL_INSTALL}"}}\t{{index .Config.Labels "${LABEL_GROUP}"}}\t{{.Created}}\t{{.State.Running}}`;
    // A container may vanish between ps and inspect: inspect then fails for it but still prints the others.
    const inspect = await ask(['inspect', '--type', 'container', '--format', format, ...ids]);
    if (inspect.exitCode !== 0 && inspect.stdout.trim() === '' && !/no such/i.test(inspect.stderr)) {
      throw engineError('inspect', inspect);
    }
    const owned: OwnedContainer[] = [];
    for (const line of inspect.stdout.split('\n')) {
      const [name, install, groupFolder, createdAt, running] = line.split('\t');
      // Defence in depth: the label filter already matched, but only ever report what is provably ours.
      if (!name || install !== installId || groupFolder === undefined) continue;
      owned.push({ name: name.replace(/^\//, ''), groupFolder, createdAt, isRunning: running === 'true' });
    }
    return owned;
  }

  return {
    kind: flavor.kind,

    async start(spec) {
      const args = buildRunArgs(spec, flavor);
      return startContainer(flavor, spec, args, options.log);
    },

    listOwned,

    async removeOrphans(installId) {
      const owned = await listOwned(installId);
      if (owned.length === 0) return [];
      const names = owned.map((container) => container.name);
      const removal = await ask(['rm', '--force', ...names]);
      if (removal.exitCode === 0) return names;
      const left = new Set((await listOwned(installId)).map((container) => container.name));
      return names.filter((name) => !left.has(name));
    },

    async cpuCount(): Promise<number | null> {
      const info = await ask(['info', '--format', flavor.cpuCountFormat], 15_000);
      const count = Number(info.stdout.trim());
      return info.exitCode === 0 && Number.isInteger(count) && count > 0 ? count : null;
    },
    async checkAvailable(): Promise<RuntimeAvailability> {
      const version = await ask(['version', '--format', flavor.versionFormat], 15_000);
      if (version.spawnError !== undefined) {
        return {
          ok: false,
          reason: `${flavor.binary} could not be run: ${version.spawnError}`,
          fix: flavor.installFix,
        };
      }
      if (version.exitCode !== 0 || version.stdout.trim() === '') {
        const reason =
          firstLine(version.stderr) || (version.isTimedOut ? 'the engine did not answer' : 'unknown');
        return {
          ok: false,
          reason: `${flavor.binary} engine is not reachable: ${reason}`,
          fix: flavor.startFix,
        };
      }
      if (flavor.requiredOciRuntime !== undefined) {
        const info = await ask(['info', '--format', '{{json .Runtimes}}'], 15_000);
        const runtimes = parseJsonObject(info.stdout);
        if (runtimes === null || !(flavor.requiredOciRuntime in runtimes)) {
          return {
            ok: false,
            reason: `the engine has no '${flavor.requiredOciRuntime}' runtime registered`,
            fix: `install it (apt-get install runsc) and add {"runtimes":{"runsc":{"path":"/usr/bin/runsc"}}} to /etc/docker/daemon.json, then restart the engine`,
          };
        }
      }
      return { ok: true, version: version.stdout.trim() };
    },

    async hasImage(tag) {
      if (!isValidImageTag(tag)) throw new ContainerSpecError(`image tag is invalid: ${tag}`);
      const result = await ask(['image', 'inspect', '--format', '{{.Id}}', tag]);
      return result.exitCode === 0;
    },

    async buildImage(build: BuildImageOptions): Promise<BuildImageResult> {
      if (!isValidImageTag(build.tag)) throw new ContainerSpecError(`image tag is invalid: ${build.tag}`);
      const buildArgs = Object.keys(build.buildArgs)
        .sort()
        .flatMap((key) => {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
            throw new ContainerSpecError(`build arg name is invalid: ${key}`);
          return ['--build-arg', `${key}=${build.buildArgs[key]}`];
        });
      const lastLines: string[] = [];
      const result = await runCommand(
        flavor.binary,
        // Absolute paths: a context dir starting with '-' could otherwise read as a flag.
        [
          'build',
          // A failed step's container is removed too, not left behind.
          '--force-rm',
          '--file',
          path.resolve(build.dockerfile),
          '--tag',
          build.tag,
          ...buildArgs,
          path.resolve(build.contextDir),
        ],
        {
          timeoutMs: build.timeoutMs ?? 24 * 60 * 60 * 1000,
          maxOutputBytes: 0,
          onLine(line) {
            lastLines.push(line);
            if (lastLines.length > 20) lastLines.shift();
            build.onProgress(line);
          },
        },
      );
      if (result.exitCode === 0) return { ok: true };
      const reason =
        result.spawnError ??
        (result.isTimedOut ? 'build timed out' : lastLines.join('\n').trim() || 'build failed');
      return { ok: false, reason };
    },

    async exec(name: string, command: string[], execOptions: ExecOptions): Promise<ExecResult> {
      if (!isValidContainerName(name)) throw new ContainerSpecError(`container name is invalid: ${name}`);
      if (command.length === 0) throw new ContainerSpecError('exec needs a command');
      const interactive = execOptions.stdin === undefined ? [] : ['--interactive'];
      // Everything after the container name is the command: the CLI stops reading its own flags there.
      const result = await runCommand(flavor.binary, ['exec', ...interactive, name, ...command], {
        timeoutMs: execOptions.timeoutMs,
        maxOutputBytes: execOptions.maxOutputBytes,
        ...(execOptions.stdin === undefined ? {} : { stdin: execOptions.stdin }),
      });
      return {
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.spawnError ?? result.stderr,
        isTimedOut: result.isTimedOut,
        isTruncated: result.isTruncated,
      };
    },
  };
}

function engineError(
  command: string,
  result: { exitCode: number | null; stderr: string; spawnError?: string },
) {
  const stderr = result.spawnError ?? result.stderr;
  return new ContainerEngineError(`container engine ${command} failed: ${firstLine(stderr) || 'no output'}`, {
    command,
    exitCode: result.exitCode,
    stderr,
  });
}

export function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '') ?? '';
}

const jsonObjectSchema = z.record(z.string(), z.unknown());

function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const parsed = jsonObjectSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
