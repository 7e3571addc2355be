// The agent image: built from agent/Dockerfile with the package as context (.dockerignore keeps it to the runner's
// sources), on `warren image build` or when `warren start` finds it missing or built from other sources.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { contextFiles, type ImageEngine } from './image-build.js';

/** The label saying which sources (and base) an agent image was built from. */
export const SOURCE_LABEL = 'warren.source';

export type EnsureImageResult = { ok: true; isBuilt: boolean } | { ok: false; reason: string };

interface ImageDeps {
  images: ImageEngine;
  config: Pick<Config, 'agentImage' | 'baseImage'>;
  packageRoot: string;
}

const DOCKERFILE = path.join('agent', 'Dockerfile');

/**
 * Which code the image holds: every file of its build context, name and bytes. (The base image is the owner's
 * setting, not the code's: changing it takes `warren image build`.)
 */
export function agentSource(packageRoot: string): string {
  const hash = createHash('sha256');
  for (const file of contextFiles(packageRoot, DOCKERFILE).sort()) {
    hash.update(`${file}\n`).update(readFileSync(path.join(packageRoot, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds the agent image under its configured tag from its configured base. Never rejects for engine failures. */
export function buildAgentImage(
  deps: ImageDeps,
  onProgress: (line: string) => void,
  source = agentSource(deps.packageRoot),
) {
  return deps.images.buildImage({
    contextDir: deps.packageRoot,
    dockerfile: path.join(deps.packageRoot, DOCKERFILE),
    tag: deps.config.agentImage,
    buildArgs: { BASE_IMAGE: deps.config.baseImage },
    labels: { [SOURCE_LABEL]: source },
    onProgress,
  });
}

/** Builds the agent image when the engine does not have it, or has one built from other sources. Never rejects. */
export async function ensureAgentImage(deps: ImageDeps & { log: Logger }): Promise<EnsureImageResult> {
  const log = deps.log.child({ module: 'agent-image' });
  const image = deps.config.agentImage;
  try {
    const source = agentSource(deps.packageRoot);
    const built = await deps.images.labelOf(image, SOURCE_LABEL);
    if (built === source) return { ok: true, isBuilt: false };
    // An image from other sources would run an agent runner that does not match this host: never reused silently.
    const why = (await deps.images.hasImage(image)) ? 'built from other sources' : 'missing';
    log.info({ image, base: deps.config.baseImage, why }, 'building the agent image');
    const result = await buildAgentImage(deps, (line) => log.info({ line }, 'image build'), source);
    if (!result.ok) log.error({ image, reason: result.reason }, 'agent image build failed');
    else log.info({ image }, 'agent image built');
    return result.ok ? { ok: true, isBuilt: true } : result;
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}
