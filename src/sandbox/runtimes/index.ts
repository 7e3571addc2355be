// Picks the container runtime from configuration: one explicit table, no import side effects.
import type { Logger } from '../../log.js';
import { createDockerRuntime, createGvisorRuntime } from './docker.js';
import { createPodmanRuntime } from './podman.js';
import type { ContainerRuntime } from './runtime.js';

export type RuntimeConfig =
  | { kind: 'docker'; binary?: string }
  | { kind: 'podman'; binary?: string }
  /** Docker with gVisor's runsc as the OCI runtime (it must be registered with the engine). */
  | { kind: 'gvisor'; binary?: string };

export function createRuntime(config: RuntimeConfig, deps: { log?: Logger } = {}): ContainerRuntime {
  const options = { ...(config.binary === undefined ? {} : { binary: config.binary }), ...deps };
  switch (config.kind) {
    case 'docker':
      return createDockerRuntime(options);
    case 'podman':
      return createPodmanRuntime(options);
    case 'gvisor':
      return createGvisorRuntime(options);
  }
}

export type * from './runtime.js';
export { ContainerEngineError, ContainerSpecError, containerName, isValidInstallId } from './runtime.js';
