// The agent image: built from agent/Dockerfile with the package as context (.dockerignore keeps it to the runner's
// sources), on `warren image build` or when `warren start` finds it missing.
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { ImageEngine } from './image-build.js';

export type EnsureImageResult = { ok: true; isBuilt: boolean } | { ok: false; reason: string };

interface ImageDeps {
  images: ImageEngine;
  config: Pick<Config, 'agentImage' | 'baseImage'>;
  packageRoot: string;
}

/** Builds the agent image under its configured tag from its configured base. Never rejects for engine failures. */
export function buildAgentImage(deps: ImageDeps, onProgress: (line: string) => void) {
  return deps.images.buildImage({
    contextDir: deps.packageRoot,
    dockerfile: path.join(deps.packageRoot, 'agent', 'Dockerfile'),
    tag: deps.config.agentImage,
    buildArgs: { BASE_IMAGE: deps.config.baseImage },
    onProgress,
  });
}

/** Builds the agent image when the engine does not have it yet. Never rejects. */
export async function ensureAgentImage(deps: ImageDeps & { log: Logger }): Promise<EnsureImageResult> {
  const log = deps.log.child({ module: 'agent-image' });
  const image = deps.config.agentImage;
  try {
    if (await deps.images.hasImage(image)) return { ok: true, isBuilt: false };
    log.info({ image, base: deps.config.baseImage }, 'building the agent image');
    const result = await buildAgentImage(deps, (line) => log.info({ line }, 'image build'));
    if (!result.ok) log.error({ image, reason: result.reason }, 'agent image build failed');
    else log.info({ image }, 'agent image built');
    return result.ok ? { ok: true, isBuilt: true } : result;
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}
