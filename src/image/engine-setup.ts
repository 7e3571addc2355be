// The engine Warren talks to: which one, where its API listens, the runtime over it, and what the engine says about
// itself (is it there, with what fix if not; how many CPUs it has). Start-up and `warren doctor` material, none of it
// an agent can push against: the runtime's hardening is src/sandbox/runtimes/.
import path from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../log.js';
import {
  assertImageTag,
  type ContainerRuntime,
  createApiRuntime,
  ENGINE_TIMEOUT_MS,
  engineMessage,
  FLAVORS,
  type RuntimeAvailability,
  type RuntimeKind,
  within,
} from '../sandbox/runtimes/index.js';

export interface RuntimeConfig {
  kind: RuntimeKind;
  /** The engine's API socket. Default: engineSocket(kind). */
  socketPath?: string;
}

/** What to tell a person whose engine socket is missing (install), or there but not answering (start). */
const DOCKER_FIX = {
  install:
    'install Docker (Debian/Ubuntu: apt-get install docker.io; macOS: Docker Desktop or colima) and start it; ' +
    'if its socket is elsewhere (colima, rootless Docker), set DOCKER_HOST=unix://PATH',
  start:
    'start the Docker engine (systemctl start docker, or open Docker Desktop) and check that your user may use it',
};
const FIXES: Record<RuntimeKind, { install: string; start: string }> = {
  docker: DOCKER_FIX,
  gvisor: DOCKER_FIX,
  podman: {
    install:
      'install podman and its init (Debian/Ubuntu: apt-get install podman catatonit), then start its API socket',
    start:
      "start podman's API socket for the user running Warren: systemctl --user enable --now podman.socket",
  },
};

/** The engine's API socket: DOCKER_HOST (unix://…) if set; else Docker's, or podman's (rootless: the user's own). */
export function engineSocket(kind: RuntimeKind, env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_HOST?.startsWith('unix://')) return env.DOCKER_HOST.slice('unix://'.length);
  if (kind !== 'podman') return '/var/run/docker.sock';
  const runtimeDir = process.getuid?.() === 0 ? undefined : env.XDG_RUNTIME_DIR;
  return runtimeDir ? path.join(runtimeDir, 'podman', 'podman.sock') : '/run/podman/podman.sock';
}

/** The engine's API client for this configuration, and where it listens (for messages). */
export function engineClient(config: RuntimeConfig): { docker: Docker; where: string } {
  const host = process.env.DOCKER_HOST;
  // A tcp:// or ssh:// engine: docker-modem reads DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) itself.
  if (config.socketPath === undefined && host !== undefined && !host.startsWith('unix://')) {
    return { docker: new Docker(), where: host };
  }
  const socketPath = config.socketPath ?? engineSocket(config.kind);
  return { docker: new Docker({ socketPath, host: undefined, protocol: 'http' }), where: socketPath };
}

/** The runtime for this configuration: the sandbox's, with what the engine says about itself and its images. */
export function createRuntime(config: RuntimeConfig, deps: { log?: Logger } = {}): ContainerRuntime {
  const { docker, where } = engineClient(config);
  const flavor = FLAVORS[config.kind];

  async function cpuCount(): Promise<number | null> {
    const count = (await within(15_000, docker.info()).catch(() => null))?.NCPU;
    return Number.isInteger(count) && count > 0 ? count : null;
  }

  async function checkAvailable(): Promise<RuntimeAvailability> {
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
            ? FIXES[config.kind].install
            : code === 'EACCES'
              ? `let the user running Warren use ${where} (the docker group, or a rootless engine)`
              : FIXES[config.kind].start,
      };
    }
    const runtime = flavor.requiredOciRuntime;
    const info = runtime === undefined ? null : await within(15_000, docker.info()).catch(() => null);
    if (runtime === undefined || runtime in (info?.Runtimes ?? {})) return { ok: true, version };
    return {
      ok: false,
      reason: `the engine has no '${runtime}' runtime registered`,
      fix: `install it (apt-get install runsc) and add {"runtimes":{"runsc":{"path":"/usr/bin/runsc"}}} to /etc/docker/daemon.json, then restart the engine`,
    };
  }

  return {
    ...createApiRuntime(flavor, docker, deps.log),
    checkAvailable,
    cpuCount,
    async hasImage(tag) {
      assertImageTag(tag);
      return within(ENGINE_TIMEOUT_MS, docker.getImage(tag).inspect()).then(
        () => true,
        () => false,
      );
    },
  };
}
