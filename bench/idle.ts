// Scenario 5: no traffic, 100 registered groups, 5 idle agents: the host's CPU over a minute, and its RSS.
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, loadAverage, type ScenarioResult } from './context.js';
import { runningContainerIds } from './engine.js';
import { markerFor } from './model.js';
import { childPids, containerCpuSeconds, cpuSeconds, memory } from './proc.js';
import { mb } from './report.js';
import { recordTimeline } from './timeline.js';

const SETUP_TIMEOUT_MS = 180_000;
/** After the last reply, before measuring: the agents finish writing their transcripts and go quiet. */
const SETTLE_MS = 5_000;

export interface IdleOptions {
  groups: number;
  agents: number;
  seconds: number;
}

function sum(values: Array<number | null>): number | null {
  return values.some((value) => value === null)
    ? null
    : values.reduce<number>((total, value) => total + (value ?? 0), 0);
}

export async function measureIdle(context: BenchContext, options: IdleOptions): Promise<ScenarioResult> {
  const load = loadAverage();
  const host = await context.startHost('idle');
  const timeline = recordTimeline(host);
  try {
    const folders = Array.from({ length: options.groups }, (_, index) => `group-${index + 1}`);
    await host.order({ type: 'register', folders, trigger: 'always' });
    const active = folders.slice(0, options.agents);
    await host.send(active.map((folder) => ({ chatId: folder, text: `wake up ${markerFor(folder)}` })));
    await timeline.waitFor(
      () => active.every((folder) => timeline.replies.has(folder)),
      `replies from the ${options.agents} agents`,
      SETUP_TIMEOUT_MS,
    );
    await sleep(SETTLE_MS);
    const stats = await host.stats();
    const idleAgents = stats.running.filter((slot) => slot.state === 'idle').length;
    const containers = await runningContainerIds(host.installId);
    const clients = childPids(host.pid);
    const clientCpu = () => clients.map((pid) => safe(() => cpuSeconds(pid)));
    const loadDuring = loadAverage();

    const hostBefore = cpuSeconds(host.pid);
    const clientsBefore = sum(clientCpu());
    const containersBefore = sum(containers.map(containerCpuSeconds));
    await sleep(options.seconds * 1000);
    const hostUsed = cpuSeconds(host.pid) - hostBefore;
    const clientsAfter = sum(clientCpu());
    const containersAfter = sum(containers.map(containerCpuSeconds));
    const { rssBytes, peakRssBytes } = memory(host.pid);
    const finalStats = await host.stats();

    const percent = (seconds: number) => `${((seconds / options.seconds) * 100).toFixed(2)} % of one core`;
    const clientsUsed = clientsBefore !== null && clientsAfter !== null ? clientsAfter - clientsBefore : null;
    const containersUsed =
      containersBefore !== null && containersAfter !== null ? containersAfter - containersBefore : null;
    return {
      section: {
        title: `Idle: ${options.groups} groups, ${options.agents} idle agents, no traffic for ${options.seconds} s`,
        load,
        latency: [],
        values: [
          {
            label: `Host CPU over ${options.seconds} s`,
            value: `${hostUsed.toFixed(2)} s (${percent(hostUsed)})`,
          },
          { label: 'Host RSS (peak over its life)', value: `${mb(rssBytes)} (${mb(peakRssBytes)})` },
          { label: 'Host heap used', value: mb(finalStats.heapUsedBytes) },
          {
            label: 'Idle agents (queue) / agent containers running',
            value: `${idleAgents} / ${containers.length}`,
          },
          {
            label: `Its ${clients.length} child processes (engine clients), CPU`,
            value: clientsUsed === null ? 'unknown' : `${clientsUsed.toFixed(2)} s (${percent(clientsUsed)})`,
          },
          {
            label: `The ${containers.length} idle agent containers, CPU (cgroup)`,
            value:
              containersUsed === null
                ? 'unknown'
                : `${containersUsed.toFixed(2)} s (${percent(containersUsed)})`,
          },
        ],
        notes: [
          `Host CPU is utime + stime of the host process from /proc (read by the driver, so measuring costs the host nothing), 10 ms resolution. Load average (1 min) when the quiet minute began: ${loadDuring.toFixed(2)}.`,
        ],
      },
      figures: {
        idleCpuPercent: (hostUsed / options.seconds) * 100,
        idleRssMb: rssBytes / 1024 / 1024,
        idleContainers: containers.length,
      },
    };
  } finally {
    timeline.stop();
  }
}

function safe(read: () => number): number | null {
  try {
    return read();
  } catch {
    return null;
  }
}
