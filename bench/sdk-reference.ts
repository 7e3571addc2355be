// The reference: the Claude Agent SDK alone in the agent image (bench/sdk-probe.mjs), without Warren's runner, file
// IPC, relay or proxy, under the same CPU and memory limits. What it costs is the SDK's share, not ours.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defaultAgentCpus } from '../src/config.js';
import { LABEL_GROUP, LABEL_INSTALL, LABEL_MANAGED } from '../src/sandbox/runtimes/runtime.js';
import type { BenchContext } from './context.js';
import { runDocker } from './engine.js';
import { containerCpuSeconds } from './proc.js';

export interface SdkReference {
  /** query() called → first model request (the SDK starting Claude Code, which builds and sends it). */
  start: number;
  /** A prompt yielded to the SDK → its model request, for every turn after the first. */
  warmIn: number[];
  /** The model's response fully written → the SDK's result message. */
  warmOut: number[];
  /** CPU of the container while the SDK's session waits for input, as a share of one core; null if not measured. */
  idleCpuPercent: number | null;
}

const probeEventSchema = z.object({
  event: z.enum(['query', 'prompt', 'result', 'idle', 'done']),
  at: z.number(),
  id: z.string().optional(),
});
type ProbeEvent = z.infer<typeof probeEventSchema>;

const PROBE_TIMEOUT_MS = 120_000;
const IDLE_WINDOW_S = 10;
/** As in the idle scenario: the session finishes writing its transcript and goes quiet first. */
const IDLE_SETTLE_S = 5;

export async function runSdkReference(
  context: BenchContext,
  options: {
    turns: number;
    isIdleMeasured: boolean;
    /** 'warren': the SDK options Warren's runner uses, built by its code in the image (tools, system prompt). */
    sdkOptions: 'bare' | 'warren';
  },
): Promise<SdkReference> {
  const { model } = context;
  const prefix = `sdk${randomBytes(3).toString('hex')}`;
  const name = `warren-${context.floorInstallId}-sdkref-${prefix}`;
  const idleMs = options.isIdleMeasured ? (IDLE_WINDOW_S + IDLE_SETTLE_S + 3) * 1000 : 0;
  const args = [
    'run',
    '--rm',
    ...['--name', name, '--label', `${LABEL_INSTALL}=${context.floorInstallId}`],
    ...['--label', `${LABEL_MANAGED}=true`, '--label', `${LABEL_GROUP}=sdkref`],
    // Host networking only so the SDK reaches the fake model on 127.0.0.1 directly (no relay, no proxy).
    ...['--network', 'host', '--read-only', '--tmpfs', '/tmp:rw,mode=1777'],
    ...['--tmpfs', '/home/agent:rw,uid=1000,gid=1000,mode=0700', '--user', '1000:1000', '--cap-drop', 'ALL'],
    // Warren's default limits (WARREN_AGENT_CPUS, WARREN_AGENT_MEMORY_MB=1024).
    ...['--cpus', String(defaultAgentCpus()), '--memory', '1024m', '--memory-swap', '1024m', '--init'],
    ...[
      '--mount',
      `type=bind,source=${path.join(context.packageRoot, 'bench', 'sdk-probe.mjs')},target=/opt/warren/sdk-probe.mjs,readonly`,
    ],
    ...['--env', `ANTHROPIC_BASE_URL=${model.url}`, '--env', `ANTHROPIC_API_KEY=${model.apiKey}`],
    ...['--env', 'HOME=/home/agent', '--env', `PROBE_TURNS=${options.turns}`, '--env', `PROBE_ID=${prefix}`],
    ...['--env', `PROBE_IDLE_MS=${idleMs}`, '--env', `PROBE_OPTIONS=${options.sdkOptions}`],
    ...['--workdir', '/opt/warren', '--entrypoint', 'node'],
    context.agentImage,
    '/opt/warren/sdk-probe.mjs',
  ];
  const events: ProbeEvent[] = [];
  let idleCpuPercent: number | null = null;
  let idleMeasured: Promise<void> = Promise.resolve();
  const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      const parsed = probeEventSchema.safeParse(value);
      if (!parsed.success) continue;
      events.push(parsed.data);
      if (parsed.data.event === 'idle' && options.isIdleMeasured) {
        idleMeasured = measureIdle(name).then((percent) => {
          idleCpuPercent = percent;
        });
      }
    }
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      void runDocker(['rm', '--force', name]);
    }, PROBE_TIMEOUT_MS);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  await idleMeasured;
  if (code !== 0)
    throw new Error(`the SDK reference probe failed (exit ${code}): ${stderr.trim().slice(-1000)}`);

  const queryAt = events.find((event) => event.event === 'query')?.at ?? Number.NaN;
  const results = events.filter((event) => event.event === 'result');
  const prompts = events.filter((event) => event.event === 'prompt');
  const warmIn: number[] = [];
  const warmOut: number[] = [];
  prompts.forEach((prompt, turn) => {
    const timing = prompt.id ? model.timing(prompt.id) : undefined;
    if (!timing || turn === 0) return;
    warmIn.push(timing.requestAt - prompt.at);
    warmOut.push((results[turn]?.at ?? Number.NaN) - timing.responseEndAt);
  });
  const first = model.timing(`${prefix}-0`);
  return { start: (first?.requestAt ?? Number.NaN) - queryAt, warmIn, warmOut, idleCpuPercent };
}

async function measureIdle(name: string): Promise<number | null> {
  const inspect = await runDocker(['inspect', '--format', '{{.Id}}', name]);
  const id = inspect.stdout.trim();
  await sleep(IDLE_SETTLE_S * 1000);
  const before = containerCpuSeconds(id);
  await sleep(IDLE_WINDOW_S * 1000);
  const after = containerCpuSeconds(id);
  return before === null || after === null ? null : ((after - before) / IDLE_WINDOW_S) * 100;
}
