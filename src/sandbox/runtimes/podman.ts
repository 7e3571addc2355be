// Podman: the docker CLI dialect with a few differences of its own.
import type { Logger } from '../../log.js';
import { type CliFlavor, createCliRuntime } from './cli-engine.js';
import type { ContainerRuntime } from './runtime.js';

export interface PodmanRuntimeOptions {
  /** The CLI to run. Default 'podman'. */
  binary?: string;
  log?: Logger;
}

export function podmanFlavor(binary = 'podman'): CliFlavor {
  return {
    kind: 'podman',
    binary,
    // Podman 4.3 fails every run with "error setting rlimit" when it inherits the host's limits; explicit ones work.
    extraRunArgs: ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'],
    // Podman has no daemon: the client is the engine.
    versionFormat: '{{.Client.Version}}',
    cpuCountFormat: '{{.Host.CPUs}}',
    installFix: 'install podman and its init (Debian/Ubuntu: apt-get install podman catatonit)',
    startFix: 'check that `podman info` works for the user running Warren',
  };
}

export function createPodmanRuntime(options: PodmanRuntimeOptions = {}): ContainerRuntime {
  return createCliRuntime(podmanFlavor(options.binary), options);
}
