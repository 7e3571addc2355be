import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestImage } from '../../test/helpers/test-image.js';
import { engineSocket } from './engine-setup.js';
import { contextFiles, createImageEngine } from './image-build.js';

describe('build context', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-context-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("follows .dockerignore with docker's rules and always sends the Dockerfile", () => {
    for (const file of [
      'agent/Dockerfile',
      'agent/src/main.ts',
      'agent/src/main.test.ts',
      'agent/node_modules/x/index.js',
      'src/protocol/ipc.ts',
      'src/app.ts',
      '.env',
      'README.md',
    ]) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), 'x');
    }
    fs.writeFileSync(
      path.join(dir, '.dockerignore'),
      '# only the runner\n*\n!agent/src/\nagent/src/**/*.test.ts\n!src/protocol/\n',
    );
    expect(contextFiles(dir, 'agent/Dockerfile').sort()).toEqual([
      '.dockerignore',
      'agent/Dockerfile',
      'agent/src/main.ts',
      'src/protocol/ipc.ts',
    ]);
  });
});

// Podman is optional, as in the runtime suite: opt in with WARREN_TEST_PODMAN=1.
const engines: Array<'docker' | 'podman'> =
  process.env.WARREN_TEST_PODMAN === '1' ? ['docker', 'podman'] : ['docker'];

describe.each(engines)('building on the %s engine', (engine) => {
  const images = createImageEngine({ kind: engine });
  // The engine asked directly, for what the builder does not tell (labels), through the same socket.
  const client = new Docker({ socketPath: engineSocket(engine) });
  const installId = `t${randomBytes(4).toString('hex')}`;
  let image = '';
  beforeAll(async () => {
    image = await ensureTestImage({ engine });
  });

  it('builds an image and reports a failing build with its output', async () => {
    const context = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-build-'));
    const tag = `warren-test-build:${installId}`;
    try {
      fs.writeFileSync(
        path.join(context, 'Dockerfile'),
        `FROM ${image}\nARG GREETING\nLABEL greeting="$GREETING"\n`,
      );
      fs.writeFileSync(path.join(context, 'Failing.Dockerfile'), `FROM ${image}\nCOPY missing-file /\n`);
      fs.writeFileSync(path.join(context, 'Slow.Dockerfile'), `FROM ${image}\nRUN sleep 30\n`);
      const progress: string[] = [];
      const built = await images.buildImage({
        contextDir: context,
        dockerfile: path.join(context, 'Dockerfile'),
        tag,
        buildArgs: { GREETING: 'hi' },
        labels: { 'warren.source': 'abc123' },
        onProgress: (line) => progress.push(line),
      });
      expect(built).toEqual({ ok: true });
      expect(progress.length).toBeGreaterThan(0);
      expect(await images.hasImage(tag)).toBe(true);
      expect((await client.getImage(tag).inspect()).Config.Labels).toMatchObject({ greeting: 'hi' });
      expect(await images.labelOf(tag, 'warren.source')).toBe('abc123');
      expect(await images.labelOf(tag, 'absent')).toBeNull();
      expect(await images.labelOf(`${tag}-missing`, 'warren.source')).toBeNull();

      const failed = await images.buildImage({
        contextDir: context,
        dockerfile: path.join(context, 'Failing.Dockerfile'),
        tag: `${tag}-failing`,
        buildArgs: {},
        onProgress: () => {},
      });
      expect(failed.ok).toBe(false);
      if (!failed.ok) expect(failed.reason).toMatch(/missing-file/);

      const started = Date.now();
      const slow = await images.buildImage({
        contextDir: context,
        dockerfile: path.join(context, 'Slow.Dockerfile'),
        tag: `${tag}-slow`,
        buildArgs: {},
        onProgress: () => {},
        timeoutMs: 1_000,
      });
      expect(slow).toMatchObject({ ok: false, reason: expect.stringMatching(/build timed out$/) });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await client
        .getImage(tag)
        .remove({ force: true })
        .catch(() => {});
      fs.rmSync(context, { recursive: true, force: true });
    }
  }, 90_000); // 1.5 s alone; a busy engine (a CI run starting dozens of containers, a docker save) made it wait past 20 s
});

describe('a builder whose engine socket is missing', () => {
  const images = createImageEngine({ kind: 'docker', socketPath: '/nonexistent/docker.sock' });

  it('refuses a Dockerfile outside the build context before asking the engine', async () => {
    const built = await images.buildImage({
      contextDir: os.tmpdir(),
      dockerfile: '/etc/passwd',
      tag: 'warren-test-build:outside',
      buildArgs: {},
      onProgress: () => {},
    });
    expect(built).toEqual({ ok: false, reason: expect.stringMatching(/outside the build context/) });
  });
});
