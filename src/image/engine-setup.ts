// The engine Warren talks to: which one, where its API listens, the runtime over it, and what the engine says about
// itself (is it there, what fixes it, its CPUs). Nothing an agent can push against: hardening is src/sandbox/runtimes/.
import path from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../log.js';
import {
  assertImageTag,
  type ContainerRuntime,
  createApiRuntime,
  ENGINE_TIMEOUT_MS,
  ENGINES,
  engineMessage,
  type RuntimeAvailability,
  type RuntimeKind,
  within,
} from '../sandbox/runtimes/index.js';

export type RuntimeConfig = { kind: RuntimeKind; socketPath?: string };

/** What to tell a person whose engine socket is missing (install), or there but not answering (start). */
const DOCKER_FIX = {
  install:
    'install Docker (Debian/Ubuntu: apt-get install docker.io; macOS: Docker Desktop or colima) and start it; ' +
    'if its socket is elsewhere (colima, rootless Docker), set DOCKER_HOST=unix://PATH',
  start:
    'start the Docker engine (systemctl start docker, or open Docker Desktop) and check that your user may use it',
};
const PODMAN_FIX = {
  install:
    'install podman and its init (Debian/Ubuntu: apt-get install podman catatonit), then start its API socket',
  start: "start podman's API socket for the user running Warren: systemctl --user enable --now podman.socket",
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
  const info = () => within(15_000, docker.info()).catch(() => null);
  return {
    ...createApiRuntime(config.kind, docker, deps.log),
    async cpuCount() {
      const count = (await info())?.NCPU;
      return Number.isInteger(count) && count > 0 ? count : null;
    },
    async checkAvailable(): Promise<RuntimeAvailability> {
      let version: string;
      try {
        version = (await within(15_000, docker.version())).Version;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const fixes = config.kind === 'podman' ? PODMAN_FIX : DOCKER_FIX;
        return {
          ok: false,
          reason: `the ${config.kind} engine is not reachable at ${where}: ${engineMessage(error)}`,
          fix:
            code === 'ENOENT'
              ? fixes.install
              : code === 'EACCES'
                ? `let the user running Warren use ${where} (the docker group, or a rootless engine)`
                : fixes.start,
        };
      }
      const runtime = ENGINES[config.kind].hostConfig.Runtime;
      if (runtime === undefined || runtime in ((await info())?.Runtimes ?? {})) return { ok: true, version };
      return {
        ok: false,
        reason: `the engine has no '${runtime}' runtime registered`,
        fix:
          'install runsc (2023 or newer; docs/RUNTIMES.md) and add {"runtimes":{"runsc":{"path":"/usr/bin/runsc",' +
          '"runtimeArgs":["--network=none","--host-uds=open"]}}} to /etc/docker/daemon.json, then reload the engine (kill -HUP)',
      };
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
