// The runtime as the rest of Warren sees it: the contract (runtime.ts) and what src/image/engine-setup.ts builds on.
export { ENGINE_TIMEOUT_MS, engineMessage, within } from './container.js';
export { createApiRuntime, ENGINES } from './engine.js';
export type * from './runtime.js';
export { assertImageTag, containerName } from './runtime.js';
