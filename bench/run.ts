// `npm run bench`: runs Warren for real (host process, Docker, agent image, Claude Agent SDK) against the fake model
// API, prints what it measured, and writes it into docs/BENCHMARKS.md. A script that measures, not a test.
// WARREN_BENCH_RUNTIMES=docker,gvisor,podman adds the `runtimes` scenario: cold start and idle memory on each.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createRuntime } from '../src/image/engine-setup.js';
import { unmountUnder } from '../test/helpers/unmount.js';
import { measureConcurrency } from './concurrency.js';
import type { BenchContext, ScenarioResult } from './context.js';
import { measureEgress } from './egress.js';
import { removeContainers } from './engine.js';
import { type BenchHost, compileHost, startBenchHost, tail } from './host-process.js';
import { measureIdle } from './idle.js';
import { measureIngest } from './ingest.js';
import { measureLatency } from './latency.js';
import { startBenchModel } from './model.js';
import { describeMachine, renderSection, renderTargets, type TargetRow, writeResults } from './report.js';
import { measureRuntimes, parseBenchRuntimes } from './runtimes.js';

const packageRoot = path.resolve(import.meta.dirname, '..');
/** In the order, which is the report's. */
const SCENARIOS = ['latency', 'concurrency', 'ingest', 'idle', 'egress', 'runtimes'] as const;
type ScenarioName = (typeof SCENARIOS)[number];
/** What a plain `npm run bench` runs (and a full run is): `runtimes` only when WARREN_BENCH_RUNTIMES asks for it. */
const DOCKER_SCENARIOS: readonly ScenarioName[] = ['latency', 'concurrency', 'ingest', 'idle', 'egress'];
/**
 * The order they run in: the light ones first, so the load of the bench's own containers (concurrency starts
 * fifty) does not linger in the load average and the CPU caches while the quiet ones are measured.
 */
const RUN_ORDER: readonly ScenarioName[] = ['ingest', 'egress', 'idle', 'latency', 'runtimes', 'concurrency'];

/** The sizes the issue asks for, and a quick set to check a set-up in under a minute. */
const SIZES = {
  full: {
    coldRuns: 5,
    warmRuns: 20,
    groups: 50,
    ingest: 100_000,
    idleGroups: 100,
    idleAgents: 5,
    idleSeconds: 60,
    egressRounds: 500,
  },
  quick: {
    coldRuns: 2,
    warmRuns: 5,
    groups: 10,
    ingest: 10_000,
    idleGroups: 20,
    idleAgents: 2,
    idleSeconds: 10,
    egressRounds: 50,
  },
};

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    say(
      'npm run bench [-- --only latency,concurrency,ingest,idle,egress,runtimes] [--quick] [--no-write] [--keep] [--profile]',
    );
    say(
      'WARREN_BENCH_RUNTIMES=docker,gvisor,podman: the runtimes scenario (cold start, idle memory) on each.',
    );
    say('Writes docs/BENCHMARKS.md after a full run (all scenarios, not --quick) unless --no-write.');
    say("--keep leaves the hosts' logs and data directories in /tmp/warren-bench-*.");
    say('--profile also writes a CPU profile of each host there (node --cpu-prof), and implies --keep.');
    return 0;
  }
  const benchRuntimes = parseBenchRuntimes(process.env.WARREN_BENCH_RUNTIMES);
  const defaults = process.env.WARREN_BENCH_RUNTIMES ? SCENARIOS : DOCKER_SCENARIOS;
  const only = (values.only?.split(',').map((name) => name.trim()) ?? [...defaults]) as ScenarioName[];
  const unknown = only.filter((name) => !SCENARIOS.includes(name));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  const sizes = values.quick ? SIZES.quick : SIZES.full;
  const isFullRun = !values.quick && DOCKER_SCENARIOS.every((name) => only.includes(name));

  const config = loadConfig({ env: process.env, cwd: packageRoot });
  const agentImage = config.agentImage;
  // Docker is checked below in any case (the other scenarios and the machine's description use it).
  const engines = only.includes('runtimes') ? benchRuntimes : [];
  for (const kind of engines.filter((name) => name !== 'docker')) {
    const engine = createRuntime({ kind });
    const available = await engine.checkAvailable();
    if (!available.ok) throw new Error(`the bench needs ${kind}: ${available.reason} (${available.fix})`);
    if (!(await engine.hasImage(agentImage))) {
      throw new Error(`${kind} has no ${agentImage}: load or build it there first (docs/RUNTIMES.md)`);
    }
  }
  const runtime = createRuntime({ kind: 'docker' });
  const availability = await runtime.checkAvailable();
  if (!availability.ok)
    throw new Error(`the bench needs Docker: ${availability.reason} (${availability.fix})`);
  if (!(await runtime.hasImage(agentImage))) {
    say(
      `Building the agent image ${agentImage} from ${config.baseImage} (once; not part of any measurement)…`,
    );
    const code = await buildAgentImage();
    if (code !== 0) throw new Error(`\`warren image build\` failed (exit ${code}); see above`);
  }

  const startedAt = new Date();
  // Short: the host's proxy sockets live under it (unix socket paths are limited to 107 bytes).
  const workDir = mkdtempSync('/tmp/warren-bench-');
  const installIds: string[] = [];
  const hosts: BenchHost[] = [];
  const floorInstallId = `bench-${randomBytes(4).toString('hex')}`;
  installIds.push(floorInstallId);
  let isCleaned = false;
  const cleanUp = async () => {
    if (isCleaned) return;
    isCleaned = true;
    for (const host of hosts) host.kill();
    const left = await removeContainers(installIds, ['docker', ...engines]);
    if (left > 0) say(`Removed ${left} container(s) left by the bench.`);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`\n${signal}: stopping the hosts and removing the bench's containers…`);
      void cleanUp().finally(() => process.exit(130));
    });
  }

  const model = await startBenchModel(`sk-ant-bench-${randomBytes(12).toString('hex')}`);
  let isOk = false;
  try {
    say(`Compiling the host (plain node, as \`warren start\` runs)…`);
    const hostJs = await compileHost(packageRoot, path.join(workDir, 'build'));
    const context: BenchContext = {
      packageRoot,
      agentImage,
      model,
      floorInstallId,
      say,
      async startHost(name, env) {
        const host = await startBenchHost({
          hostJs,
          packageRoot,
          workDir,
          name,
          modelUrl: model.url,
          apiKey: model.apiKey,
          agentImage,
          ...(env ? { env } : {}),
          ...(values.profile
            ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(workDir, 'profiles', name)}`] }
            : {}),
        });
        hosts.push(host);
        installIds.push(host.installId);
        return host;
      },
    };
    const machine = describeMachine(agentImage);
    say(['', 'Machine:', ...machine.map((line) => `  ${line}`), ''].join('\n'));

    const results = new Map<ScenarioName, ScenarioResult>();
    const scenarios: Record<ScenarioName, () => Promise<ScenarioResult>> = {
      latency: () => measureLatency(context, sizes),
      concurrency: () => measureConcurrency(context, sizes.groups),
      ingest: () => measureIngest(context, sizes.ingest),
      egress: () => measureEgress(context, sizes.egressRounds),
      idle: () =>
        measureIdle(context, {
          groups: sizes.idleGroups,
          agents: sizes.idleAgents,
          seconds: sizes.idleSeconds,
        }),
      runtimes: () =>
        measureRuntimes(context, benchRuntimes, { coldRuns: sizes.coldRuns, idleAgents: sizes.idleAgents }),
    };
    for (const name of RUN_ORDER.filter((scenario) => only.includes(scenario))) {
      say(`== ${name}`);
      const firstHost = hosts.length;
      const started = Date.now();
      try {
        results.set(name, await scenarios[name]());
      } catch (error) {
        const logs = hosts.slice(firstHost).map((host) => `--- ${host.logFile}\n${tail(host.logFile)}`);
        throw new Error(`${name} failed: ${(error as Error).message}\n${logs.join('\n')}`);
      } finally {
        for (const host of hosts.slice(firstHost)) await host.shutdown();
        await removeContainers(installIds, ['docker', ...engines]);
      }
      say(`   done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }

    const seconds = (Date.now() - startedAt.getTime()) / 1000;
    const markdown = [
      `Run ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${seconds.toFixed(0)} s in all${values.quick ? ' (--quick sizes)' : ''}.`,
      '',
      ...machine.map((line) => `- ${line}`),
      '',
      '### Targets',
      '',
      renderTargets(judge(results)),
      ...SCENARIOS.flatMap((name) => {
        const result = results.get(name);
        return result ? [renderSection(result.section)] : [];
      }),
    ].join('\n');
    say(`\n${markdown}`);
    if (isFullRun && !values['no-write']) {
      writeResults(path.join(packageRoot, 'docs', 'BENCHMARKS.md'), markdown);
      say('Written to docs/BENCHMARKS.md.');
    }
    isOk = true;
    return 0;
  } finally {
    await cleanUp();
    await model.close();
    // The hosts' groups may have file systems of their own (as root): they stay mounted after a host ends.
    await unmountUnder(workDir);
    if (isOk && !values.keep && !values.profile) rmSync(workDir, { recursive: true, force: true });
    else say(`Host logs and data kept in ${workDir}`);
  }
}

/** `warren image build`, as the README has it: the CLI is the stable way in. */
function buildAgentImage(): Promise<number | null> {
  const tsx = path.join(packageRoot, 'node_modules', '.bin', 'tsx');
  const child = spawn(tsx, [path.join(packageRoot, 'src', 'cli.ts'), 'image', 'build'], {
    cwd: packageRoot,
    stdio: 'inherit',
  });
  return new Promise((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', resolve);
  });
}

/** The targets, met or missed, from what was measured (null: that scenario did not run). */
function judge(results: Map<ScenarioName, ScenarioResult>): TargetRow[] {
  const latency = results.get('latency')?.figures;
  const idle = results.get('idle')?.figures;
  const concurrency = results.get('concurrency')?.figures;
  const egress = results.get('egress')?.figures;
  const check = (figure: number | undefined, isMet: (value: number) => boolean) =>
    figure === undefined || Number.isNaN(figure) ? null : isMet(figure);
  const ms = (value: number | undefined) => (value === undefined ? '—' : `${value.toFixed(1)} ms`);
  const coldLimit = latency ? (latency.floor ?? Number.NaN) + 1000 : undefined;
  return [
    {
      target: 'Warm overhead, message → first model request: median < 50 ms',
      figure: ms(latency?.warmIn),
      isMet: check(latency?.warmIn, (value) => value < 50),
    },
    {
      target: 'Warm overhead, last model response → reply to the channel: median < 50 ms',
      figure: ms(latency?.warmOut),
      isMet: check(latency?.warmOut, (value) => value < 50),
    },
    {
      target: 'Cold start (message → first model request): median < bare `docker run` floor + 1 s',
      figure: latency
        ? `${latency.cold?.toFixed(0)} ms vs ${latency.floor?.toFixed(0)} + 1000 = ${coldLimit?.toFixed(0)} ms`
        : '—',
      isMet: check(latency?.cold, (value) => coldLimit !== undefined && value < coldLimit),
    },
    {
      target: 'Idle host CPU < 1 % of one core',
      figure: idle ? `${idle.idleCpuPercent?.toFixed(2)} %` : '—',
      isMet: check(idle?.idleCpuPercent, (value) => value < 1),
    },
    {
      target: 'Idle host RSS < 150 MB',
      figure: idle ? `${idle.idleRssMb?.toFixed(0)} MB` : '—',
      isMet: check(idle?.idleRssMb, (value) => value < 150),
    },
    {
      target: 'Concurrency: no message lost',
      figure: concurrency ? `${concurrency.lost} lost` : '—',
      isMet: check(concurrency?.lost, (value) => value === 0),
    },
    {
      target: 'Egress gateway: added per HTTPS request (tunnel) median < 2 ms',
      figure: egress ? `${ms(egress.egressAddedMedian)} (p99 ${ms(egress.egressAddedP99)})` : '—',
      isMet: check(egress?.egressAddedMedian, (value) => value < 2),
    },
    {
      target: 'Egress gateway: added per HTTPS request (intercepted, secret added) median < 2 ms',
      figure: egress ? ms(egress.egressInterceptedMedian) : '—',
      isMet: check(egress?.egressInterceptedMedian, (value) => value < 2),
    },
    {
      target: 'Egress gateway: tunnel throughput ≥ 200 MB/s',
      figure: egress ? `${egress.egressMbps?.toFixed(0)} MB/s` : '—',
      isMet: check(egress?.egressMbps, (value) => value >= 200),
    },
  ];
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).message ?? String(error)}\n`);
    process.exit(1);
  },
);
