// Scenarios 1 and 2: warm turn overhead both ways, and cold start split into its phases next to the `docker run` floor.
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, loadAverage, type ScenarioResult } from './context.js';
import { bareDockerRun, hardenedRun, runningContainerIds, watchEngineEvents } from './engine.js';
import type { BenchHost } from './host-process.js';
import { markerFor } from './model.js';
import { containerCpuSeconds } from './proc.js';
import { measureProxyHop } from './proxy-hop.js';
import { type LatencyRow, median } from './report.js';
import { runSdkReference } from './sdk-reference.js';
import { type FolderTimes, recordTimeline, type Timeline } from './timeline.js';

export interface LatencyOptions {
  coldRuns: number;
  warmRuns: number;
}

const REPLY_TIMEOUT_MS = 120_000;
/** Turns of each SDK reference run (the first is its cold start). */
const REFERENCE_TURNS = 4;
/** After a reply, before the next message: the agent is idle again (its turn and transcript writes are done). */
const WARM_PAUSE_MS = 300;

/** The first timestamp at or after `after`, with slack for the container clock's millisecond resolution. */
const firstAfter = (times: number[], after: number) => times.find((at) => at >= after - 5) ?? Number.NaN;
const logAfter = (times: FolderTimes, message: string, after: number) =>
  firstAfter(
    times.logs.filter((log) => log.message === message).map((log) => log.at),
    after,
  );

export async function ask(host: BenchHost, timeline: Timeline, chatId: string, id: string) {
  const [received] = await host.send([{ chatId, text: `hello there ${markerFor(id)}` }]);
  if (!received) throw new Error('the host did not take the message');
  await timeline.waitFor(() => timeline.replies.has(id), `the reply to ${id}`, REPLY_TIMEOUT_MS);
  return received;
}

export async function measureLatency(
  context: BenchContext,
  options: LatencyOptions,
): Promise<ScenarioResult> {
  const load = loadAverage();
  const host = await context.startHost('latency');
  const timeline = recordTimeline(host);
  const engine = watchEngineEvents(host.installId);
  const { model } = context;
  const cold = {
    total: [] as number[],
    host: [] as number[],
    container: [] as number[],
    runner: [] as number[],
    runnerBoot: [] as number[],
    runnerLoad: [] as number[],
    runnerSetup: [] as number[],
    claude: [] as number[],
    sdk: [] as number[],
    reply: [] as number[],
    cpu: [] as number[],
  };
  const reference = {
    start: [] as number[],
    in: [] as number[],
    out: [] as number[],
    optionsStart: [] as number[],
    optionsIn: [] as number[],
  };
  let referenceIdleCpu: number | null = null;
  const floor = { bare: [] as number[], hardened: [] as number[] };
  let proxyHop: number[] = [];
  const warm = {
    in: [] as number[],
    inHost: [] as number[],
    inSync: [] as number[],
    inSdk: [] as number[],
    out: [] as number[],
    outSdk: [] as number[],
    outFile: [] as number[],
    outHost: [] as number[],
  };
  try {
    const coldFolders = Array.from({ length: options.coldRuns }, (_, index) => `cold-${index + 1}`);
    await host.order({ type: 'register', folders: [...coldFolders, 'warm'], trigger: 'always' });

    for (const [index, folder] of coldFolders.entries()) {
      // The floor and the SDK alone right before each cold start, so all three see the same machine.
      floor.bare.push(await bareDockerRun(context.agentImage, context.floorInstallId));
      floor.hardened.push(await hardenedRun(context.agentImage, context.floorInstallId));
      const sdk = await runSdkReference(context, {
        turns: REFERENCE_TURNS,
        isIdleMeasured: index === coldFolders.length - 1,
        sdkOptions: 'bare',
      });
      reference.start.push(sdk.start);
      reference.in.push(...sdk.warmIn);
      reference.out.push(...sdk.warmOut);
      referenceIdleCpu = sdk.idleCpuPercent ?? referenceIdleCpu;
      const withOptions = await runSdkReference(context, {
        turns: REFERENCE_TURNS,
        isIdleMeasured: false,
        sdkOptions: 'warren',
      });
      reference.optionsStart.push(withOptions.start);
      reference.optionsIn.push(...withOptions.warmIn);
      const received = await ask(host, timeline, folder, folder);
      const timing = model.timing(folder);
      const times = timeline.folder(folder);
      const containerStart = times.containerStarts[0] ?? Number.NaN;
      const engineStart = engine.of(folder, 'start')[0] ?? Number.NaN;
      const claudeStarted = logAfter(times, 'claude code started early', containerStart);
      const runnerStarting = logAfter(times, 'runner starting', containerStart);
      const ready = times.readies[0] ?? Number.NaN;
      const requestAt = timing?.requestAt ?? Number.NaN;
      cold.total.push(requestAt - received.at);
      cold.host.push(containerStart - received.at);
      cold.container.push(engineStart - containerStart);
      cold.runner.push(ready - engineStart);
      cold.runnerBoot.push(claudeStarted - engineStart);
      cold.runnerLoad.push(runnerStarting - claudeStarted);
      cold.runnerSetup.push(ready - runnerStarting);
      cold.claude.push(requestAt - claudeStarted);
      cold.sdk.push(requestAt - ready);
      cold.reply.push((timeline.replies.get(folder) ?? Number.NaN) - received.at);
      context.say(
        `  cold ${folder}: ${(requestAt - received.at).toFixed(0)} ms to the first model request (floor ${floor.bare.at(-1)?.toFixed(0)} ms)`,
      );
      const [container] = await runningContainerIds(host.installId);
      cold.cpu.push((container ? (containerCpuSeconds(container) ?? Number.NaN) : Number.NaN) * 1000);
      // No container running before the next cold start.
      await host.order({ type: 'stop-agent', folder });
    }

    // The warm group: one cold start and two turns to settle in, then the measured turns.
    for (let turn = -3; turn < options.warmRuns; turn++) {
      const id = `warm-${turn + 3}`;
      const received = await ask(host, timeline, 'warm', id);
      await sleep(WARM_PAUSE_MS);
      if (turn < 0) continue;
      const timing = model.timing(id);
      const sentAt = timeline.replies.get(id) ?? Number.NaN;
      if (!timing) throw new Error(`the fake model never saw ${id}`);
      const times = timeline.folder('warm');
      const promptReceived = logAfter(times, 'prompt received', received.at);
      const turnEnded = logAfter(times, 'turn ended', timing.responseEndAt);
      const turnEndFile = firstAfter(times.outputFiles, timing.responseEndAt);
      warm.in.push(timing.requestAt - received.at);
      warm.inSync.push(received.handleMs);
      warm.inHost.push(promptReceived - received.at);
      warm.inSdk.push(timing.requestAt - promptReceived);
      warm.out.push(sentAt - timing.responseEndAt);
      warm.outSdk.push(turnEnded - timing.responseEndAt);
      warm.outFile.push(turnEndFile - turnEnded);
      warm.outHost.push(sentAt - turnEndFile);
    }
    // While the warm agent still runs, its proxy socket is open: what does the hop through it cost?
    const apiSocket = timeline.folder('warm').apiSocket;
    if (apiSocket) proxyHop = await measureProxyHop(model, apiSocket, options.warmRuns);
  } finally {
    engine.stop();
    timeline.stop();
  }

  const latency: LatencyRow[] = [
    { label: 'Warm: message arrives → first model request', values: warm.in },
    {
      label: 'host stores, routes, writes the prompt file (synchronous part)',
      values: warm.inSync,
      isPart: true,
    },
    { label: 'message arrives → runner has read the prompt', values: warm.inHost, isPart: true },
    {
      label: 'runner has the prompt → request at the model (SDK, relay, proxy)',
      values: warm.inSdk,
      isPart: true,
    },
    { label: "Warm: model's last response → reply handed to the channel", values: warm.out },
    { label: 'response end → runner has the result (proxy, relay, SDK)', values: warm.outSdk, isPart: true },
    {
      label: 'runner has the result → its turn-end file appears on the host',
      values: warm.outFile,
      isPart: true,
    },
    {
      label: 'turn-end file appears → channel (host: IPC read, store, delivery)',
      values: warm.outHost,
      isPart: true,
    },
    {
      label: 'Credential proxy hop: a 43 KB streamed request via the group socket, minus direct',
      values: proxyHop,
    },
    { label: 'Cold: message arrives → first model request', values: cold.total },
    { label: 'host: message → container create (engine API)', values: cold.host, isPart: true },
    { label: 'container start: create → engine `start` event', values: cold.container, isPart: true },
    { label: 'runner start: engine `start` → runner `ready`', values: cold.runner, isPart: true },
    {
      label: 'of which node boot, relay, HOME → Claude Code started (early start)',
      values: cold.runnerBoot,
      isPart: true,
    },
    {
      label: 'of which loading zod and the SDK beside Claude Code (to "runner starting")',
      values: cold.runnerLoad,
      isPart: true,
    },
    { label: 'of which runner setup (settings, memory, tools)', values: cold.runnerSetup, isPart: true },
    { label: 'SDK start: runner `ready` → first model request', values: cold.sdk, isPart: true },
    {
      label: 'Claude Code, overlapping the two above: started → first model request',
      values: cold.claude,
      isPart: true,
    },
    { label: 'Cold: message arrives → reply handed to the channel', values: cold.reply },
    { label: 'Floor: `docker run --rm --entrypoint true IMAGE`', values: floor.bare },
    { label: "Floor through the engine API with Warren's hardening (no mounts)", values: floor.hardened },
    {
      label: 'Reference, the SDK alone in the same image: query() → first model request',
      values: reference.start,
    },
    { label: 'Reference, the SDK alone: prompt → model request (warm)', values: reference.in },
    { label: 'Reference, the SDK alone: response end → result (warm)', values: reference.out },
    {
      label: "Reference, the SDK with Warren's options: query() → first model request",
      values: reference.optionsStart,
    },
    {
      label: "Reference, the SDK with Warren's options: prompt → model request (warm)",
      values: reference.optionsIn,
    },
  ];
  return {
    section: {
      title: 'Turn overhead and cold start',
      load,
      latency,
      values: [
        {
          label: 'CPU time of an agent container for its start and first turn (median)',
          value: `${median(cold.cpu).toFixed(0)} ms`,
        },
        {
          label: "Reference: the SDK's idle session (Claude Code waiting for input), container CPU",
          value: referenceIdleCpu === null ? 'not measured' : `${referenceIdleCpu.toFixed(2)} % of one core`,
        },
      ],
      notes: [
        `${options.warmRuns} warm turns in one group (after 3 unmeasured turns); ${options.coldRuns} cold starts, each in a new group with no container running, each right after one floor run of each kind.`,
        'Model time is excluded: the fake model answers at once; "response end" is when it has written the whole stream.',
        "Parts come from: the host (message arrival, its container create request, the runner's first output file), the engine's `start` event, the runner's own log lines (container clock, ms), and the fake model.",
        `Reference: bench/sdk-probe.mjs runs the SDK in the agent image with Warren's CPU and memory limits but none of Warren (no runner, file IPC, relay or proxy; host networking to reach the fake), ${REFERENCE_TURNS} turns per run, before each cold start. "With Warren's options" gives it the options Warren's runner builds (in-process MCP tools, system prompt preset and append, disallowed tools), from the runner's code in the image.`,
        `Model requests without a bench marker: ${model.unmatched}; repeated requests for one message: ${model.repeated}.`,
      ],
    },
    figures: {
      warmIn: median(warm.in),
      warmOut: median(warm.out),
      cold: median(cold.total),
      floor: median(floor.bare),
    },
  };
}
