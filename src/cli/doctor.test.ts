import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { dotEnvFingerprint, loadConfig, STARTED_WITH } from '../config.js';
import { agentSource, SOURCE_LABEL } from '../image/agent-image.js';
import type { ContainerRuntime } from '../sandbox/runtimes/index.js';
import { runDoctor, settingsCheck } from './doctor.js';

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

  it('says when .env changed since the running Warren read it, and that it needs a restart', () => {
    const home = tempDir();
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'ANTHROPIC_API_KEY=sk-ant-old\nWARREN_TIMEZONE=UTC\n');
    // As `warren start` writes it (src/main.ts): this test process stands for the running host.
    const started = { pid: process.pid, cwd, salt: 'pepper', keys: dotEnvFingerprint(cwd, 'pepper') };
    writeFileSync(join(home, STARTED_WITH), JSON.stringify(started));
    expect(settingsCheck(home)).toMatchObject({ isOk: true });
    writeFileSync(join(cwd, '.env'), 'ANTHROPIC_API_KEY=sk-ant-new\nWARREN_TELEGRAM_BOT_TOKEN=1:abc\n');
    const check = settingsCheck(home);
    expect(check).toMatchObject({ isOk: false, fix: expect.stringMatching(/restart Warren/) });
    expect(check?.detail).toMatch(
      /ANTHROPIC_API_KEY changed, WARREN_TIMEZONE removed, WARREN_TELEGRAM_BOT_TOKEN added/,
    );
    // The hashes are salted: the key itself is in no file of the data directory.
    expect(JSON.stringify(started)).not.toContain('sk-ant-old');
    // A host that is not running any more: nothing to restart.
    const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    writeFileSync(join(home, STARTED_WITH), JSON.stringify({ ...started, pid: gone }));
    expect(settingsCheck(home)).toBeNull();
  });
});
