// The engines Warren can use, in one explicit table: what each needs on every container. Which one, where its API
// listens and what it says about itself are src/image/engine-setup.ts's.
import { createApiRuntime, type EngineFlavor } from './engine.js';
import type { RuntimeKind } from './runtime.js';

export const FLAVORS: Record<RuntimeKind, EngineFlavor> = {
  docker: { kind: 'docker', hostConfig: {} },
  // gVisor: every syscall of the container goes to a user-space kernel, so a kernel bug is not a host escape.
  gvisor: { kind: 'gvisor', hostConfig: { Runtime: 'runsc' }, requiredOciRuntime: 'runsc' },
  podman: {
    kind: 'podman',
    // Podman 4.3 fails every run with "error setting rlimit" when it inherits the host's limits; explicit ones work.
    hostConfig: {
      Ulimits: [
        { Name: 'nofile', Soft: 4096, Hard: 4096 },
        { Name: 'nproc', Soft: 4096, Hard: 4096 },
      ],
    },
  },
};

export { ENGINE_TIMEOUT_MS, engineMessage, within } from './container.js';
export type * from './runtime.js';
export { assertImageTag, containerName } from './runtime.js';
export { createApiRuntime };
