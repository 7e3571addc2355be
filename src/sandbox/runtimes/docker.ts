// Docker, and gVisor (docker with --runtime=runsc): the default engines.
import type { Logger } from '../../log.js';
import { type CliFlavor, createCliRuntime } from './cli-engine.js';
import type { ContainerRuntime } from './runtime.js';

export interface DockerRuntimeOptions {
  /** The CLI to run. Default 'docker'. */
  binary?: string;
  log?: Logger;
}

const INSTALL_FIX =
  'install Docker (Debian/Ubuntu: apt-get install docker.io; macOS: Docker Desktop or colima)';
const START_FIX =
  'start the Docker engine (systemctl start docker, or open Docker Desktop) and check that your user may use it';

export function dockerFlavor(binary = 'docker'): CliFlavor {
  return {
    kind: 'docker',
    binary,
    extraRunArgs: [],
    versionFormat: '{{.Server.Version}}',
    cpuCountFormat: '{{.NCPU}}',
    installFix: INSTALL_FIX,
    startFix: START_FIX,
  };
}

/** gVisor: every syscall of the container goes to a user-space kernel, so a kernel bug is not a host escape. */
export function gvisorFlavor(binary = 'docker'): CliFlavor {
  return {
    ...dockerFlavor(binary),
    kind: 'gvisor',
    extraRunArgs: ['--runtime', 'runsc'],
    requiredOciRuntime: 'runsc',
  };
}

export function createDockerRuntime(options: DockerRuntimeOptions = {}): ContainerRuntime {
  return createCliRuntime(dockerFlavor(options.binary), options);
}

export function createGvisorRuntime(options: DockerRuntimeOptions = {}): ContainerRuntime {
  return createCliRuntime(gvisorFlavor(options.binary), options);
}
