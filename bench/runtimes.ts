// Cold start and idle agent memory on each runtime Warren names (WARREN_BENCH_RUNTIMES), side by side: one host per
// runtime (WARREN_RUNTIME), one after another so they never share the machine, each measured the same way.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRuntime } from '../src/image/engine-setup.js';
import type { RuntimeKind } from '../src/sandbox/runtimes/runtime.js';
import { type BenchContext, loadAverage, type ScenarioResult } from './context.js';
import { containerMemory, hardenedRun, runningContainerIds } from './engine.js';
import { ask } from './latency.js';
import { markerFor } from './model.js';
import { memory } from './proc.js';
import { summarize } from './report.js';
import { recordTimeline } from './timeline.js';

export const RUNTIME_KINDS: readonly RuntimeKind[] = ['docker', 'gvisor', 'podman'];

/** WARREN_BENCH_RUNTIMES=docker,gvisor,podman, checked; unset: Docker alone. */
export function parseBenchRuntimes(value: string | undefined): RuntimeKind[] {
  const names = (value ?? 'docker').split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !RUNTIME_KINDS.includes(name as RuntimeKind));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(
      `WARREN_BENCH_RUNTIMES: unknown ${unknown.join(', ')}; known: ${RUNTIME_KINDS.join(', ')}`,
    );
  }
  return [...new Set(names as RuntimeKind[])];
}

export interface RuntimesOptions {
  coldRuns: number;
  idleAgents: number;
}

const SETUP_TIMEOUT_MS = 180_000;
/** After the last reply, before measuring: the agents finish writing their transcripts and go quiet. */
const SETTLE_MS = 5_000;
const MIB = 1024 * 1024;

/** MemAvailable from /proc/meminfo, in bytes: what the machine could still give without swapping. */
function memAvailable(): number {
  const kib = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return Number(kib) * 1024;
}

interface Column {
  kind: RuntimeKind;
  load: number;
  cold: number[];
  createToReady: number[];
  floor: number[];
  usage: number[];
  lessCache: number[];
  cacheField: string | null;
  agents: number;
  machinePerAgent: number;
  hostRssPerAgent: number;
}

async function measureOne(
  context: BenchContext,
  kind: RuntimeKind,
  options: RuntimesOptions,
): Promise<Column> {
  const column: Column = {
    kind,
    load: loadAverage(),
    cold: [],
    createToReady: [],
    floor: [],
    usage: [],
    lessCache: [],
    cacheField: null,
    agents: 0,
    machinePerAgent: Number.NaN,
    hostRssPerAgent: Number.NaN,
  };
  const host = await context.startHost(`runtime-${kind}`, { WARREN_RUNTIME: kind });
  const timeline = recordTimeline(host);
  try {
    const coldFolders = Array.from({ length: options.coldRuns }, (_, index) => `cold-${index + 1}`);
    const idleFolders = Array.from({ length: options.idleAgents }, (_, index) => `idle-${index + 1}`);
    await host.order({ type: 'register', folders: [...coldFolders, ...idleFolders], trigger: 'always' });
    for (const folder of coldFolders) {
      // The container alone right before each cold start, so both see the same machine.
      column.floor.push(await hardenedRun(context.agentImage, context.floorInstallId, kind));
      // The fake model is shared by every runtime's host: the marker names the runtime too.
      const id = `${kind}-${folder}`;
      const received = await ask(host, timeline, folder, id);
      const times = timeline.folder(folder);
      column.cold.push((context.model.timing(id)?.requestAt ?? Number.NaN) - received.at);
      column.createToReady.push((times.readies[0] ?? Number.NaN) - (times.containerStarts[0] ?? Number.NaN));
      context.say(`  ${kind} ${folder}: ${column.cold.at(-1)?.toFixed(0)} ms to the first model request`);
      await host.order({ type: 'stop-agent', folder });
    }

    const availableBefore = memAvailable();
    const rssBefore = memory(host.pid).rssBytes;
    await host.send(
      idleFolders.map((folder) => ({ chatId: folder, text: `wake up ${markerFor(`${kind}-${folder}`)}` })),
    );
    await timeline.waitFor(
      () => idleFolders.every((folder) => timeline.replies.has(`${kind}-${folder}`)),
      `replies from the ${options.idleAgents} agents on ${kind}`,
      SETUP_TIMEOUT_MS,
    );
    await sleep(SETTLE_MS);
    const ids = await runningContainerIds(host.installId, kind);
    const samples = await Promise.all(ids.map((id) => containerMemory(id, kind)));
    column.agents = ids.length;
    column.machinePerAgent = (availableBefore - memAvailable()) / ids.length;
    column.hostRssPerAgent = (memory(host.pid).rssBytes - rssBefore) / ids.length;
    for (const sample of samples) {
      column.usage.push(sample.usageBytes / MIB);
      column.lessCache.push((sample.usageBytes - (sample.inactiveFileBytes ?? 0)) / MIB);
      column.cacheField = sample.cacheField ?? column.cacheField;
    }
    context.say(
      `  ${kind}: ${ids.length} idle agents, ${summarize(column.usage)?.median.toFixed(1)} MiB each`,
    );
    return column;
  } finally {
    timeline.stop();
    // Its agents stop before the next runtime's host starts: no runtime is measured beside another's containers.
    await host.shutdown();
  }
}

/** "median (min–max)", or — without samples. */
function spread(values: number[], digits = 0): string {
  const summary = summarize(values);
  if (!summary) return '—';
  const min = Math.min(...values.filter(Number.isFinite));
  return `${summary.median.toFixed(digits)} (${min.toFixed(digits)}–${summary.max.toFixed(digits)})`;
}

export async function measureRuntimes(
  context: BenchContext,
  kinds: readonly RuntimeKind[],
  options: RuntimesOptions,
): Promise<ScenarioResult> {
  const load = loadAverage();
  const columns: Column[] = [];
  const headers: string[] = [];
  for (const kind of kinds) {
    const available = await createRuntime({ kind }).checkAvailable();
    headers.push(`${kind} (engine ${available.ok ? available.version : '?'})`);
    columns.push(await measureOne(context, kind, options));
  }
  const row = (label: string, cell: (column: Column) => string) => [label, ...columns.map(cell)];
  const mib = (bytes: number) => (Number.isFinite(bytes) ? (bytes / MIB).toFixed(1) : '—');
  return {
    section: {
      title: `Runtimes side by side: ${kinds.join(', ')}`,
      load,
      latency: [],
      values: [],
      grid: [
        ['median (min–max)', ...headers],
        row('Cold start: message arrives → first model request (ms)', (column) => spread(column.cold)),
        row('&nbsp;&nbsp;↳ host: container create → runner `ready` (ms)', (column) =>
          spread(column.createToReady),
        ),
        row(
          "Container alone: `true` with Warren's hardening via the engine API, create → removed (ms)",
          (column) => spread(column.floor),
        ),
        row('Idle agent container, engine stats `memory_stats.usage` (MiB)', (column) =>
          spread(column.usage, 1),
        ),
        row('&nbsp;&nbsp;less inactive file cache, as `docker stats` shows it (MiB)', (column) =>
          column.cacheField === null ? 'not reported' : spread(column.lessCache, 1),
        ),
        row('Machine memory per live agent: drop in MemAvailable ÷ agents (MiB)', (column) =>
          mib(column.machinePerAgent),
        ),
        row('Warren host RSS per live agent (MiB)', (column) => mib(column.hostRssPerAgent)),
        row('Load average (1 min) when its host started', (column) => column.load.toFixed(2)),
      ],
      notes: [
        `Per runtime, one after another: a host with WARREN_RUNTIME set to it, ${options.coldRuns} cold starts (each in a new group with no agent running, right after one hardened \`true\` container on the same runtime), then ${options.idleAgents} agents woken and left idle ${SETTLE_MS / 1000} s before their memory is read; the host is stopped before the next runtime starts.`,
        `Engine memory breakdown: ${columns.map((column) => `${column.kind}: ${column.cacheField ? `\`memory_stats.stats.${column.cacheField}\`` : 'none, `usage` alone'}`).join('; ')}. Machine memory per agent is everything the machine gave the agents (containers, the engine's per-container processes, gVisor's Sentry and gofer, the host's share), from /proc/meminfo before and after they woke: other work on the machine moves it.`,
        `Agents measured: ${columns.map((column) => `${column.kind} ${column.agents}`).join(', ')}.`,
      ],
    },
    figures: Object.fromEntries(
      columns.map((column) => [`cold-${column.kind}`, summarize(column.cold)?.median ?? Number.NaN]),
    ),
  };
}
