// The container engine as the bench uses it directly: the bare `docker run` floor, start events, clean-up by label.
import { type ChildProcess, spawn } from 'node:child_process';
import { createRuntime } from '../src/image/engine-setup.js';
import { LABEL_GROUP, LABEL_INSTALL, LABEL_MANAGED } from '../src/sandbox/runtimes/runtime.js';
import { monotonicMs } from './protocol.js';
import { wallToMonotonic } from './timeline.js';

const FLOOR_TIMEOUT_MS = 60_000;

/** Runs the docker CLI to its end (killed past timeoutMs). Never rejects. */
export function runDocker(
  args: string[],
  timeoutMs = 30_000,
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (error) => {
      stderr += error.message;
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

async function timedRun(args: string[]): Promise<number> {
  const started = monotonicMs();
  const result = await runDocker(args, FLOOR_TIMEOUT_MS);
  const elapsed = monotonicMs() - started;
  if (result.exitCode !== 0) {
    throw new Error(
      `docker ${args.slice(0, 3).join(' ')} … failed: ${result.stderr.trim() || result.exitCode}`,
    );
  }
  return elapsed;
}

/**
 * `docker run --rm IMAGE true`, the floor the issue names. The image's entrypoint is the runner, so `true` has to
 * be the entrypoint. The labels only let the clean-up find it should the bench be interrupted.
 */
export function bareDockerRun(image: string, installId: string): Promise<number> {
  return timedRun([
    'run',
    '--rm',
    ...['--label', `${LABEL_INSTALL}=${installId}`, '--label', `${LABEL_MANAGED}=true`],
    ...['--label', `${LABEL_GROUP}=floor`, '--entrypoint', 'true', image],
  ]);
}

/**
 * The same `true`, started the way the host starts agents (the engine's API, every hardening setting, no bind
 * mounts) and waited for until it is removed: what the settings and the API's create/attach/start/wait/remove cost.
 */
export async function hardenedDockerRun(image: string, installId: string): Promise<number> {
  const started = monotonicMs();
  const container = await createRuntime({ kind: 'docker' }).start({
    name: `warren-${installId}-floor-${Math.random().toString(16).slice(2, 10)}`,
    image,
    installId,
    groupFolder: 'floor',
    mounts: [],
    env: {},
    limits: { memoryMb: 1024, cpus: 1, pids: 256 },
    tmpfs: ['/home/agent'],
    user: { uid: 1000, gid: 1000 },
    workdir: '/workspace/group',
    entrypoint: '/bin/true',
    hardRunTimeoutMs: FLOOR_TIMEOUT_MS,
  });
  const exit = await container.exited;
  if (exit.reason !== 'exited' || exit.exitCode !== 0) {
    throw new Error(`the hardened floor container failed: ${exit.reason} ${exit.detail ?? exit.exitCode}`);
  }
  return monotonicMs() - started;
}

export type EngineAction = 'start' | 'die' | 'destroy';

export interface EngineEvents {
  /** When the engine reported this action for each container of a group (monotonic ms), in order. */
  of(group: string, action: EngineAction): number[];
  stop(): void;
}

/**
 * Follows the engine's events for one install: `start` (the container's process runs), `die` (it ended), `destroy`
 * (the container is removed). The engine's own clock, so these need no instrumentation in the host.
 */
export function watchEngineEvents(installId: string): EngineEvents {
  const seen = new Map<string, number[]>();
  const since = String(Math.floor(Date.now() / 1000) - 2);
  const child: ChildProcess = spawn(
    'docker',
    [
      ...['events', '--since', since, '--filter', `label=${LABEL_INSTALL}=${installId}`],
      ...['--filter', 'event=start', '--filter', 'event=die', '--filter', 'event=destroy'],
      ...['--format', `{{.TimeNano}} {{.Action}} {{index .Actor.Attributes "${LABEL_GROUP}"}}`],
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      const [nanos, action, group] = line.trim().split(' ');
      if (!nanos || !/^\d+$/.test(nanos) || !action || !group) continue;
      const key = `${group} ${action}`;
      const list = seen.get(key) ?? [];
      list.push(wallToMonotonic(Number(BigInt(nanos) / 1000n) / 1000));
      seen.set(key, list);
    }
  });
  return {
    of: (group, action) => seen.get(`${group} ${action}`) ?? [],
    stop: () => child.kill(),
  };
}

/** Full ids of an install's running containers (for their cgroups). */
export async function runningContainerIds(installId: string): Promise<string[]> {
  const result = await runDocker([
    'ps',
    '--quiet',
    '--no-trunc',
    '--filter',
    `label=${LABEL_INSTALL}=${installId}`,
  ]);
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

/** Removes every container labelled with these install ids, running or not. Returns how many there were. */
export async function removeContainers(installIds: string[]): Promise<number> {
  const runtime = createRuntime({ kind: 'docker' });
  let removed = 0;
  for (const installId of installIds) {
    removed += (await runtime.removeOrphans(installId).catch(() => [])).length;
  }
  return removed;
}
