import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { silentLogger } from '../log.js';
import { ensureAgentImage } from './agent-image.js';
import type { ImageEngine } from './image-build.js';

describe('the agent image', () => {
  let hasImage = true;
  const images: ImageEngine = {
    hasImage: async () => hasImage,
    buildImage: async () => {
      hasImage = true;
      return { ok: true };
    },
  };

  it('builds the image only when it is missing', async () => {
    const config = loadConfig({ env: { WARREN_DATA_DIR: os.tmpdir() }, cwd: os.tmpdir() });
    const ensureImage = () =>
      ensureAgentImage({ images, config, packageRoot: path.resolve('.'), log: silentLogger() });
    expect(await ensureImage()).toEqual({ ok: true, isBuilt: false });
    hasImage = false;
    expect(await ensureImage()).toEqual({ ok: true, isBuilt: true });
  });
});
