import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { loadConfig } from '../config.js';
import { agentSource, SOURCE_LABEL } from '../image/agent-image.js';
import type { ContainerRuntime } from '../sandbox/runtimes/index.js';
import { runDoctor } from './doctor.js';

describe('warren doctor', () => {
  const packageRoot = tempDir();
  mkdirSync(join(packageRoot, 'agent', 'src'), { recursive: true });
  writeFileSync(join(packageRoot, '.dockerignore'), '*\n!agent/src/\n');
  writeFileSync(join(packageRoot, 'agent', 'Dockerfile'), 'FROM scratch\n');
  writeFileSync(join(packageRoot, 'agent', 'src', 'runner.ts'), 'export {};\n');
  const dataDir = tempDir();
  const config = loadConfig({ env: { WARREN_DATA_DIR: dataDir }, cwd: dataDir });
  const runtime = {
    kind: 'docker',
    checkAvailable: async () => ({ ok: true, version: '27.0' }),
    hasImage: async () => true,
  } as unknown as ContainerRuntime;
  const imageCheck = async (label: string | null) => {
    const images = { labelOf: async (_tag: string, name: string) => (name === SOURCE_LABEL ? label : null) };
    const checks = await runDoctor({
      config,
      runtime,
      images,
      packageRoot,
      credential: null,
      nodeVersion: 'v22.1.0',
    });
    return checks.find((check) => check.name === 'Agent image');
  };

  it("says when the agent image holds other code than this Warren's, and that the next start rebuilds it", async () => {
    expect(await imageCheck(agentSource(packageRoot))).toEqual({
      name: 'Agent image',
      isOk: true,
      detail: config.agentImage,
    });
    expect((await imageCheck('0123456789abcdef'))?.detail).toMatch(
      /holds other code than this Warren's; the next start rebuilds it/,
    );
    expect((await imageCheck(null))?.detail).toMatch(/holds other code/);
  });
});
