import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { silentLogger } from '../log.js';
import { agentSource, ensureAgentImage, SOURCE_LABEL } from './agent-image.js';
import type { BuildImageOptions, ImageEngine } from './image-build.js';

describe('the agent image', () => {
  // A package of its own: the image's sources are the runner's files the .dockerignore lets through.
  const packageRoot = mkdtempSync(path.join(os.tmpdir(), 'warren-package-'));
  mkdirSync(path.join(packageRoot, 'agent', 'src'), { recursive: true });
  writeFileSync(path.join(packageRoot, '.dockerignore'), '*\n!agent/src/\n');
  writeFileSync(path.join(packageRoot, 'agent', 'Dockerfile'), 'FROM scratch\n');
  writeFileSync(path.join(packageRoot, 'agent', 'src', 'runner.ts'), 'export const v = 1;\n');
  writeFileSync(path.join(packageRoot, 'README.md'), 'not in the context\n');

  const labels = new Map<string, string>();
  const builds: BuildImageOptions[] = [];
  const images: ImageEngine = {
    hasImage: async (tag) => labels.has(tag),
    labelOf: async (tag, label) => (label === SOURCE_LABEL ? (labels.get(tag) ?? null) : null),
    buildImage: async (options) => {
      builds.push(options);
      labels.set(options.tag, options.labels?.[SOURCE_LABEL] ?? '');
      return { ok: true };
    },
  };
  const config = loadConfig({ env: { WARREN_DATA_DIR: os.tmpdir() }, cwd: os.tmpdir() });
  const ensureImage = () => ensureAgentImage({ images, config, packageRoot, log: silentLogger() });

  it('builds the image when it is missing, labelled with its sources, and then reuses it', async () => {
    expect(await ensureImage()).toEqual({ ok: true, isBuilt: true });
    expect(builds[0]?.labels).toEqual({ [SOURCE_LABEL]: agentSource(packageRoot) });
    expect(await ensureImage()).toEqual({ ok: true, isBuilt: false });
    expect(builds).toHaveLength(1);
  });

  it('rebuilds an image built from other sources instead of silently reusing it', async () => {
    const before = agentSource(packageRoot);
    writeFileSync(path.join(packageRoot, 'README.md'), 'changed, but not in the context\n');
    expect(agentSource(packageRoot)).toBe(before);
    writeFileSync(path.join(packageRoot, 'agent', 'src', 'runner.ts'), 'export const v = 2;\n');
    expect(agentSource(packageRoot)).not.toBe(before);
    const count = builds.length;
    expect(await ensureImage()).toEqual({ ok: true, isBuilt: true });
    expect(builds).toHaveLength(count + 1);
    expect(await ensureImage()).toEqual({ ok: true, isBuilt: false });
  });
});
