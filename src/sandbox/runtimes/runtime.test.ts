// One contract suite for every container runtime, run against the real engine with the busybox test image.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestImage } from '../../../test/helpers/test-image.js';
import { createRuntime, engineSocket } from '../../image/engine-setup.js';
import { type ContainerSpec, containerName, type RunningContainer, type RuntimeKind } from './runtime.js';

interface Implementation {
  kind: RuntimeKind;
  engine: 'docker' | 'podman';
  /** Podman 4.3's conmon never sets State.OOMKilled (an OOM kill reads as plain exit 137): skipped for it. */
  canDetectOom: boolean;
}

const implementations: Implementation[] = [{ kind: 'docker', engine: 'docker', canDetectOom: true }];
// Podman is optional: opt in with WARREN_TEST_PODMAN=1 where it is installed and its API socket runs.
if (process.env.WARREN_TEST_PODMAN === '1') {
  implementations.push({ kind: 'podman', engine: 'podman', canDetectOom: false });
}

const PROBE_SCRIPT = [
  'touch /probe 2>/dev/null && echo rootfs=writable || echo rootfs=readonly',
  'echo "interfaces=$(ls /sys/class/net | tr "\\n" " ")"',
  'nc -w 1 172.17.0.1 80 </dev/null >/dev/null 2>&1 && echo connect=ok || echo connect=failed',
  'echo "uid=$(id -u) gid=$(id -g)"',
  'grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status | tr -d "\\t"',
  'touch /workspace/ro/x 2>/dev/null && echo romount=writable || echo romount=readonly',
  'echo "romount-content=$(cat /workspace/ro/hello)"',
  'touch /workspace/rw/x && echo rwmount=writable',
  'touch /tmp/x && echo tmp=writable',
  'touch /home/agent/x && echo home=writable',
  'echo "home-owner=$(stat -c %u /home/agent)"',
  'echo "env=$WARREN_PROBE workdir=$(pwd)"',
  'echo report-done',
  // exec: the shell stays out of the way, so SIGTERM from the init reaches sleep directly.
  'exec sleep 60',
].join('\n');

for (const implementation of implementations) {
  describe(`${implementation.kind} runtime`, () => {
    const runtime = createRuntime({ kind: implementation.kind });
    // The engine asked directly, for what the runtime does not tell (labels, images), through the same socket.
    const engine = new Docker({ socketPath: engineSocket(implementation.kind) });
    const installId = `t${randomBytes(4).toString('hex')}`;
    let image = '';
    let hostDir = '';
    let probe: RunningContainer;
    const report = new Map<string, string>();

    function baseSpec(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
      return {
        name: containerName(overrides.installId ?? installId, 'probe'),
        image,
        installId,
        groupFolder: 'probe',
        mounts: [],
        env: {},
        limits: { memoryMb: 64, cpus: 1, pids: 32 },
        hardRunTimeoutMs: 60_000,
        command: ['sleep', '60'],
        ...overrides,
      };
    }

    beforeAll(async () => {
      image = await ensureTestImage({ engine: implementation.engine });
      hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-runtime-'));
      for (const dir of ['ro', 'rw']) fs.mkdirSync(path.join(hostDir, dir), { mode: 0o777 });
      fs.chmodSync(path.join(hostDir, 'rw'), 0o777);
      fs.chmodSync(hostDir, 0o755);
      fs.writeFileSync(path.join(hostDir, 'ro', 'hello'), 'from-host');

      let reportDone!: () => void;
      const isReportDone = new Promise<void>((resolve) => {
        reportDone = resolve;
      });
      probe = await runtime.start(
        baseSpec({
          mounts: [
            { hostPath: path.join(hostDir, 'ro'), containerPath: '/workspace/ro', isReadOnly: true },
            { hostPath: path.join(hostDir, 'rw'), containerPath: '/workspace/rw', isReadOnly: false },
          ],
          env: { WARREN_PROBE: 'probe-env' },
          workdir: '/workspace/rw',
          tmpfs: ['/home/agent'],
          limits: { memoryMb: 64, cpus: 1, pids: 24 },
          command: ['sh', '-c', PROBE_SCRIPT],
          onOutput({ stream, line }) {
            if (stream !== 'stdout') return;
            if (line === 'report-done') reportDone();
            for (const part of line.split(' ')) {
              const [key, ...value] = part.split(/[=:]/);
              if (key) report.set(key, value.join('='));
            }
          },
        }),
      );
      await Promise.race([
        isReportDone,
        probe.exited.then((exit) => {
          throw new Error(`probe ended early: ${JSON.stringify(exit)} ${probe.stderrTail()}`);
        }),
      ]);
    });

    afterAll(async () => {
      await probe?.stop(0);
      await runtime.removeOrphans(installId);
      if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
    });

    it('reports the engine as available, with how many CPUs it can give a container', async () => {
      const availability = await runtime.checkAvailable();
      expect(availability).toMatchObject({ ok: true });
      const cpus = await runtime.cpuCount();
      expect(Number.isInteger(cpus) && (cpus ?? 0) >= 1).toBe(true);
    });

    it('the container cannot write its root filesystem but can write /tmp', () => {
      expect(report.get('rootfs')).toBe('readonly');
      expect(report.get('tmp')).toBe('writable');
    });

    it('the container has no network but loopback', () => {
      expect(report.get('interfaces')).toBe('lo');
      expect(report.get('connect')).toBe('failed');
    });

    it('the container runs as uid 1000 with no capabilities and no new privileges', () => {
      expect(report.get('uid')).toBe('1000');
      expect(report.get('gid')).toBe('1000');
      expect(report.get('CapEff')).toBe('0000000000000000');
      expect(report.get('CapBnd')).toBe('0000000000000000');
      expect(report.get('NoNewPrivs')).toBe('1');
    });

    it('a read-only mount is read-only inside and a read-write mount is writable', () => {
      expect(report.get('romount')).toBe('readonly');
      expect(report.get('romount-content')).toBe('from-host');
      expect(report.get('rwmount')).toBe('writable');
      expect(fs.existsSync(path.join(hostDir, 'rw', 'x'))).toBe(true);
    });

    it("a tmpfs folder of the spec is the container user's and writable", () => {
      expect(report.get('home')).toBe('writable');
      expect(report.get('home-owner')).toBe('1000');
    });

    it('env and workdir reach the container', () => {
      expect(report.get('env')).toBe('probe-env');
      expect(report.get('workdir')).toBe('/workspace/rw');
    });

    it('labels name the install, the group and Warren', async () => {
      const inspect = await engine.getContainer(probe.name).inspect();
      expect(inspect.Config.Labels).toMatchObject({
        'warren.install': installId,
        'warren.group': 'probe',
        'warren.managed': 'true',
      });
    });

    it('the engine holds the container to its limits, with no swap, no log file and an init', async () => {
      const { HostConfig } = await engine.getContainer(probe.name).inspect();
      expect(HostConfig).toMatchObject({
        Memory: 64 * 1024 * 1024,
        MemorySwap: 64 * 1024 * 1024,
        NanoCpus: 1e9,
        PidsLimit: 24,
        ReadonlyRootfs: true,
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Init: true,
        LogConfig: { Type: 'none' },
      });
    });

    it.concurrent('the pids limit holds', async () => {
      const lines: string[] = [];
      const container = await runtime.start(
        baseSpec({
          limits: { memoryMb: 64, cpus: 1, pids: 24 },
          command: ['sh', '-c', 'for i in $(seq 1 40); do sleep 1 >/dev/null 2>&1 & done; echo all-spawned'],
          onOutput: ({ stream, line }) => lines.push(`${stream}:${line}`),
        }),
      );
      await container.exited;
      expect(lines).not.toContain('stdout:all-spawned');
      expect(lines.join('\n')).toMatch(/stderr:.*fork/);
    });

    it('freezes and thaws a running container', async () => {
      const isPaused = async () => (await engine.getContainer(probe.name).inspect()).State.Paused;
      expect(await probe.pause(true)).toBe(true);
      expect(await isPaused()).toBe(true);
      expect(await probe.pause(false)).toBe(true);
      expect(await isPaused()).toBe(false);
    });

    it('lists only containers of its own install', async () => {
      const owned = await runtime.listOwned(installId);
      expect(owned).toEqual([
        expect.objectContaining({ name: probe.name, groupFolder: 'probe', isRunning: true }),
      ]);
    });

    it('removeOrphans removes only containers of the given install', async () => {
      const orphanInstall = `o${randomBytes(4).toString('hex')}`;
      const otherInstall = `x${randomBytes(4).toString('hex')}`;
      const orphan = await runtime.start(baseSpec({ installId: orphanInstall }));
      const other = await runtime.start(baseSpec({ installId: otherInstall }));
      try {
        await waitFor(async () => (await runtime.listOwned(otherInstall)).some((entry) => entry.isRunning));
        await waitFor(async () => (await runtime.listOwned(orphanInstall)).some((entry) => entry.isRunning));
        expect(await runtime.removeOrphans(orphanInstall)).toEqual([orphan.name]);
        expect((await orphan.exited).reason).toBe('exited');
        expect(await runtime.listOwned(orphanInstall)).toEqual([]);
        expect((await runtime.listOwned(otherInstall)).map((entry) => entry.name)).toEqual([other.name]);
        expect((await runtime.listOwned(installId)).map((entry) => entry.name)).toEqual([probe.name]);
      } finally {
        await other.stop(0);
        await runtime.removeOrphans(otherInstall);
      }
    });

    // Independent containers: run side by side to keep the suite short.
    it.concurrent('the hard run timeout kills a hanging container with reason timeout', async () => {
      const started = Date.now();
      const container = await runtime.start(baseSpec({ hardRunTimeoutMs: 1_000 }));
      const exit = await container.exited;
      expect(exit.reason).toBe('timeout');
      // Far below the 60 s the container would sleep: the 1 s ceiling ended it (8.7 s on a machine loaded by a CI run).
      expect(Date.now() - started).toBeLessThan(20_000);
      expect((await runtime.listOwned(installId)).map((entry) => entry.name)).not.toContain(container.name);
    });

    (implementation.canDetectOom ? it.concurrent : it.skip)(
      'a container over its memory limit ends with reason oom',
      async () => {
        const container = await runtime.start(
          baseSpec({
            limits: { memoryMb: 32, cpus: 1, pids: 32 },
            command: ['sh', '-c', 'head -c 200m /dev/zero | tail -c 150m >/dev/null'],
          }),
        );
        expect(await container.exited).toMatchObject({ reason: 'oom', exitCode: 137 });
      },
    );

    it.concurrent('a container that ends by itself reports its exit code and output', async () => {
      const lines: string[] = [];
      const container = await runtime.start(
        baseSpec({
          command: ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 7'],
          onOutput: ({ stream, line }) => lines.push(`${stream}:${line}`),
        }),
      );
      expect(await container.exited).toEqual({ exitCode: 7, reason: 'exited' });
      expect(lines).toEqual(expect.arrayContaining(['stdout:to-stdout', 'stderr:to-stderr']));
      expect(container.stderrTail()).toContain('to-stderr');
    });

    it.concurrent('a missing image is a start failure with the engine message', async () => {
      const container = await runtime.start(baseSpec({ image: 'warren-test-missing:0' }));
      const exit = await container.exited;
      expect(exit.reason).toBe('start-failed');
      expect(exit.detail).toMatch(/warren-test-missing/);
    });

    it.concurrent('reports whether an image exists', async () => {
      expect(await runtime.hasImage(image)).toBe(true);
      expect(await runtime.hasImage('warren-test-missing:0')).toBe(false);
    });

    // Last: it ends the probe the other tests use.
    it('stop() ends a running container promptly', async () => {
      const started = Date.now();
      await probe.stop(5_000);
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(await probe.exited).toMatchObject({ reason: 'killed' });
      expect(await probe.pause(true)).toBe(false);
      expect(await runtime.listOwned(installId)).toEqual([]);
    });
  });
}

describe('a runtime whose engine socket is missing', () => {
  const runtime = createRuntime({ kind: 'docker', socketPath: '/nonexistent/docker.sock' });

  it('says so, with a fix', async () => {
    const availability = await runtime.checkAvailable();
    expect(availability.ok).toBe(false);
    if (!availability.ok) expect(availability.fix).toMatch(/install/i);
    // And knows no CPU count rather than failing.
    expect(await runtime.cpuCount()).toBeNull();
  });

  it('reports a start as start-failed', async () => {
    const container = await runtime.start({
      name: containerName('abc', 'probe'),
      image: 'warren-test-missing:0',
      installId: 'abc',
      groupFolder: 'probe',
      mounts: [],
      env: {},
      limits: { memoryMb: 64, cpus: 1, pids: 32 },
      hardRunTimeoutMs: 10_000,
    });
    expect(await container.exited).toMatchObject({ reason: 'start-failed', exitCode: null });
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('condition not met in time');
}
