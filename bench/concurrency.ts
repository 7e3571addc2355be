// Scenario 3: many groups write at once under the default agent cap: how long until all are answered, peak host RSS.
import { type BenchContext, loadAverage, type ScenarioResult } from './context.js';
import { watchEngineEvents } from './engine.js';
import { markerFor } from './model.js';
import { cpuSeconds, memory } from './proc.js';
import { type LatencyRow, mb } from './report.js';
import { recordTimeline, type Timeline } from './timeline.js';

const ALL_ANSWERED_TIMEOUT_MS = 300_000;
const RSS_SAMPLE_MS = 100;

export async function measureConcurrency(context: BenchContext, groups: number): Promise<ScenarioResult> {
  const load = loadAverage();
  const host = await context.startHost('concurrency');
  const timeline = recordTimeline(host);
  const engine = watchEngineEvents(host.installId);
  const folders = Array.from({ length: groups }, (_, index) => `group-${index + 1}`);
  let sampledPeak = 0;
  const sampler = setInterval(() => {
    try {
      sampledPeak = Math.max(sampledPeak, memory(host.pid).rssBytes);
    } catch {
      // The host is gone; the scenario fails on its own.
    }
  }, RSS_SAMPLE_MS);
  try {
    await host.order({ type: 'register', folders, trigger: 'always' });
    const rssBefore = memory(host.pid).rssBytes;
    const cpuBefore = cpuSeconds(host.pid);
    const received = await host.send(
      folders.map((folder) => ({ chatId: folder, text: `hi ${markerFor(folder)}` })),
    );
    const isAllAnswered = () => folders.every((folder) => timeline.replies.has(folder));
    let timedOut = false;
    await timeline
      .waitFor(isAllAnswered, `replies in all ${groups} groups`, ALL_ANSWERED_TIMEOUT_MS)
      .catch(() => {
        timedOut = true;
      });
    const firstIn = Math.min(...received.map((item) => item.at));
    const lastReply = Math.max(...folders.map((folder) => timeline.replies.get(folder) ?? Number.NaN));
    const perMessage = received.map((item) => (timeline.replies.get(item.chatId) ?? Number.NaN) - item.at);
    const answered = folders.filter((folder) => timeline.replies.has(folder)).length;
    const { peakRssBytes, rssBytes } = memory(host.pid);
    const hostCpu = cpuSeconds(host.pid) - cpuBefore;
    const stats = await host.stats();
    const done = stats.messages.find((row) => row.status === 'done')?.count ?? 0;
    const failed = stats.messages.find((row) => row.status === 'failed')?.count ?? 0;
    const containers = folders.reduce(
      (sum, folder) => sum + timeline.folder(folder).containerStarts.length,
      0,
    );
    const allAnsweredS = timedOut ? Number.NaN : (lastReply - firstIn) / 1000;
    return {
      section: {
        title: `Concurrency: ${groups} groups at once, default cap`,
        load,
        latency: [
          { label: 'Each message: arrives → its reply handed to the channel', values: perMessage },
          ...startRows(folders, received, timeline, context),
          ...evictionRows(folders, timeline, engine),
        ],
        values: [
          {
            label: `Time until all ${groups} are answered`,
            value: timedOut
              ? `not within ${ALL_ANSWERED_TIMEOUT_MS / 1000} s`
              : `${allAnsweredS.toFixed(1)} s`,
          },
          { label: 'Answered / lost', value: `${answered} / ${groups - answered}` },
          {
            label: 'Messages in the store: done / failed',
            value: `${done} / ${failed}`,
          },
          { label: 'Retry or failure notices sent', value: String(timeline.notices.length) },
          { label: 'Agent containers started', value: String(containers) },
          { label: 'Host CPU for the whole run', value: `${hostCpu.toFixed(2)} s` },
          {
            label: 'Host RSS before / peak (VmHWM) / after',
            value: `${mb(rssBefore)} / ${mb(peakRssBytes)} / ${mb(rssBytes)}`,
          },
        ],
        notes: [
          `All ${groups} messages reach the host in one tick; the queue runs at most WARREN_MAX_AGENTS (default 5) agents and stops idle ones to make room.`,
          `Peak RSS is the kernel's high-water mark for the host process (sampled peak every ${RSS_SAMPLE_MS} ms: ${mb(sampledPeak)}).`,
        ],
      },
      figures: { allAnsweredS, lost: groups - answered, peakRssMb: peakRssBytes / 1024 / 1024 },
    };
  } finally {
    clearInterval(sampler);
    engine.stop();
    timeline.stop();
  }
}

/** How long each group waited for a place, and how long its start took with the others starting beside it. */
function startRows(
  folders: string[],
  received: Array<{ chatId: string; at: number }>,
  timeline: Timeline,
  context: BenchContext,
): LatencyRow[] {
  const arrival = new Map(received.map((item) => [item.chatId, item.at]));
  const waits: number[] = [];
  const starts: number[] = [];
  for (const folder of folders) {
    const containerStart = timeline.folder(folder).containerStarts[0] ?? Number.NaN;
    waits.push(containerStart - (arrival.get(folder) ?? Number.NaN));
    starts.push((context.model.timing(folder)?.requestAt ?? Number.NaN) - containerStart);
  }
  return [
    { label: 'waiting for a place (message → its container create)', values: waits, isPart: true },
    {
      label: 'starting beside the others (container create → first model request)',
      values: starts,
      isPart: true,
    },
  ];
}

/** Where the time goes when an idle agent is stopped to make room for a waiting group. */
function evictionRows(
  folders: string[],
  timeline: Timeline,
  engine: ReturnType<typeof watchEngineEvents>,
): LatencyRow[] {
  const allStarts = folders
    .flatMap((folder) => timeline.folder(folder).containerStarts)
    .sort((a, b) => a - b);
  const parts = {
    runner: [] as number[],
    die: [] as number[],
    remove: [] as number[],
    host: [] as number[],
    next: [] as number[],
    total: [] as number[],
  };
  for (const folder of folders) {
    const times = timeline.folder(folder);
    const stopRequested = times.logs.find((log) => log.message === 'stop requested')?.at;
    if (stopRequested === undefined) continue;
    const runnerExiting = times.logs.find((log) => log.message === 'runner exiting')?.at ?? Number.NaN;
    const die = engine.of(folder, 'die')[0] ?? Number.NaN;
    const destroy = engine.of(folder, 'destroy')[0] ?? Number.NaN;
    const ended = times.exits[0] ?? Number.NaN;
    const next = allStarts.find((at) => at >= ended - 1);
    if (next === undefined) continue; // the last ones were stopped at shutdown, not evicted
    parts.runner.push(runnerExiting - stopRequested);
    parts.die.push(die - runnerExiting);
    parts.remove.push(destroy - die);
    parts.host.push(ended - destroy);
    parts.next.push(next - ended);
    parts.total.push(next - stopRequested);
  }
  return [
    {
      label: "Eviction: the runner reads its stop file → next group's container create",
      values: parts.total,
    },
    { label: 'runner and SDK shut down (stop file → "runner exiting")', values: parts.runner, isPart: true },
    { label: 'container ends ("runner exiting" → engine `die`)', values: parts.die, isPart: true },
    { label: 'container removed (`die` → `destroy`)', values: parts.remove, isPart: true },
    {
      label: 'host learns the run ended (`destroy` → `docker rm` returns)',
      values: parts.host,
      isPart: true,
    },
    { label: 'host starts the next group (run ended → container create)', values: parts.next, isPart: true },
  ];
}
