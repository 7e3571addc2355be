// Picks the container engine from configuration and where its API listens: one explicit table, no import side effects.
import path from 'node:path';
import Docker from 'dockerode';
import type { Logger } from '../../log.js';
import { createApiRuntime, type EngineFlavor } from './engine.js';
import type { ContainerRuntime, RuntimeKind } from './runtime.js';

export interface RuntimeConfig {
  kind: RuntimeKind;
  /** The engine's API socket. Default: engineSocket(kind). */
  socketPath?: string;
}

const DOCKER: EngineFlavor = {
  kind: 'docker',
  hostConfig: {},
  installFix:
    'install Docker (Debian/Ubuntu: apt-get install docker.io; macOS: Docker Desktop or colima) and start it; ' +
    'if its socket is elsewhere (colima, rootless Docker), set DOCKER_HOST=unix://PATH',
  startFix:
    'start the Docker engine (systemctl start docker, or open Docker Desktop) and check that your user may use it',
};

export const FLAVORS: Record<RuntimeKind, EngineFlavor> = {
  docker: DOCKER,
  // gVisor: every syscall of the container goes to a user-space kernel, so a kernel bug is not a host escape.
  gvisor: { ...DOCKER, kind: 'gvisor', hostConfig: { Runtime: 'runsc' }, requiredOciRuntime: 'runsc' },
  podman: {
    kind: 'podman',
    // Podman 4.3 fails every run with "error setting rlimit" when it inherits the host's limits; explicit ones work.
    hostConfig: {
      Ulimits: [
        { Name: 'nofile', Soft: 4096, Hard: 4096 },
        { Name: 'nproc', Soft: 4096, Hard: 4096 },
      ],
    },
    installFix:
      'install podman and its init (Debian/Ubuntu: apt-get install podman catatonit), then start its API socket',
    startFix:
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

export function createRuntime(config: RuntimeConfig, deps: { log?: Logger } = {}): ContainerRuntime {
  const { docker, where } = engineClient(config);
  return createApiRuntime(FLAVORS[config.kind], docker, where, deps.log);
}

export type * from './runtime.js';
export { containerName } from './runtime.js';
