// The container engine as the bench uses it directly: the bare `docker run` floor, start events, clean-up by label,
// and (through the engine API, for any runtime Warren names) the hardened floor, container ids and memory stats.
import { type ChildProcess, spawn } from 'node:child_process';
import { createRuntime, engineClient } from '../src/image/engine-setup.js';
import {
  LABEL_GROUP,
  LABEL_INSTALL,
  LABEL_MANAGED,
  type RuntimeKind,
} from '../src/sandbox/runtimes/runtime.js';
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
export async function hardenedRun(
  image: string,
  installId: string,
  kind: RuntimeKind = 'docker',
): Promise<number> {
  const started = monotonicMs();
  const container = await createRuntime({ kind }).start({
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

/** Full ids of an install's running containers (for their cgroups and stats), from the engine's API. */
export async function runningContainerIds(
  installId: string,
  kind: RuntimeKind = 'docker',
): Promise<string[]> {
  const filters = { label: [`${LABEL_INSTALL}=${installId}`], status: ['running'] };
  const listed = await engineClient({ kind }).docker.listContainers({ filters });
  return listed.map((entry) => entry.Id);
}

/**
 * A container's memory as its engine's stats API reports it (one sample): `memory_stats.usage` (the cgroup's
 * usage, page cache included on cgroup v1), and that less the inactive file cache when the engine reports it,
 * which is what `docker stats` shows (null when the engine gives no breakdown).
 */
export async function containerMemory(
  id: string,
  kind: RuntimeKind,
): Promise<{ usageBytes: number; inactiveFileBytes: number | null; cacheField: string | null }> {
  const stats = await engineClient({ kind }).docker.getContainer(id).stats({ stream: false });
  const breakdown = (stats.memory_stats?.stats ?? {}) as Record<string, number | undefined>;
  // cgroup v1 names it total_inactive_file, v2 inactive_file (the `docker stats` client reads the same two).
  const cacheField = ['total_inactive_file', 'inactive_file'].find((field) => breakdown[field] !== undefined);
  return {
    usageBytes: stats.memory_stats.usage,
    inactiveFileBytes: cacheField === undefined ? null : (breakdown[cacheField] ?? null),
    cacheField: cacheField ?? null,
  };
}

/** Removes every container labelled with these install ids, running or not. Returns how many there were. */
export async function removeContainers(
  installIds: string[],
  kinds: readonly RuntimeKind[] = ['docker'],
): Promise<number> {
  let removed = 0;
  for (const kind of new Set(kinds)) {
    const runtime = createRuntime({ kind });
    for (const installId of installIds) {
      removed += (await runtime.removeOrphans(installId).catch(() => [])).length;
    }
  }
  return removed;
}
