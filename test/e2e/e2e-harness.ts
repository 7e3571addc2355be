// A real Warren host for end-to-end tests: a real engine (Docker, Docker with gVisor, or Podman), the real agent image,
// the fake model API behind the proxy.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe } from 'vitest';
import type { Warren } from '../../src/app.js';
import { type LocalChannel, loadOrCreateToken } from '../../src/channels/local.js';
import { loadConfig } from '../../src/config.js';
import { createRuntime } from '../../src/image/engine-setup.js';
import { registerGroup } from '../../src/intake/registration.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { startHostParts } from '../../src/main.js';
import type { ContainerRunner } from '../../src/sandbox/container-runner.js';
import { JOB_NAME_SUFFIX } from '../../src/sandbox/folder-jobs.js';
import type { ContainerRuntime, ContainerSpec, RuntimeKind } from '../../src/sandbox/runtimes/index.js';
import type { Group } from '../../src/store/records.js';
import { FakeChannel } from '../fake-channel.js';
import { type FakeModelApi, type FakeRequest, startFakeModelApi } from '../fake-model-api.js';
import { unmountUnder } from '../helpers/unmount.js';

export const AGENT_IMAGE = process.env.WARREN_AGENT_IMAGE ?? 'warren-agent:latest';
const packageRoot = path.resolve(import.meta.dirname, '..', '..');

/** Fails (never skips) with what to run when the engine or the agent image is missing. */
export async function requireAgentImage(runtime: ContainerRuntime): Promise<void> {
  const problem = await missingForE2e(runtime);
  if (problem !== null) throw new Error(problem);
}

async function missingForE2e(runtime: ContainerRuntime): Promise<string | null> {
  const availability = await runtime.checkAvailable();
  if (!availability.ok) {
    return `end-to-end tests on ${runtime.kind} need its engine: ${availability.reason} (${availability.fix})`;
  }
  if (await runtime.hasImage(AGENT_IMAGE)) return null;
  const build =
    'bash scripts/build-local-base.sh && docker build -f agent/Dockerfile --build-arg BASE_IMAGE=warren-base:local ' +
    `-t ${AGENT_IMAGE} .`;
  // Podman keeps images in a store of its own: the one Docker built is copied over.
  const load = runtime.kind === 'podman' ? ` && docker save ${AGENT_IMAGE} | podman load` : '';
  return `end-to-end tests on ${runtime.kind} need the agent image ${AGENT_IMAGE}, which is missing. Build it: ${build}${load}`;
}

const runtimeList = (value: string | undefined, fallback: string): RuntimeKind[] =>
  (value ?? fallback)
    .split(',')
    .map((kind) => kind.trim())
    .filter((kind) => kind !== '')
    .map((kind) => {
      if (kind !== 'docker' && kind !== 'gvisor' && kind !== 'podman') {
        throw new Error(
          `WARREN_E2E_RUNTIMES and WARREN_E2E_REQUIRE_RUNTIMES name docker, gvisor or podman, not ${kind}`,
        );
      }
      return kind;
    });

/**
 * The isolation suite once per runtime: WARREN_E2E_RUNTIMES (default all three). A runtime this machine lacks is skipped
 * with the reason in the test's name, unless WARREN_E2E_REQUIRE_RUNTIMES (default docker; CI names all three) names it:
 * then it fails, so a missing runtime never passes for a tested one.
 */
export async function describeOnRuntimes(title: string, suite: (kind: RuntimeKind) => void): Promise<void> {
  const required = runtimeList(process.env.WARREN_E2E_REQUIRE_RUNTIMES, 'docker');
  for (const kind of runtimeList(process.env.WARREN_E2E_RUNTIMES, 'docker,gvisor,podman')) {
    const problem = required.includes(kind) ? null : await missingForE2e(createRuntime({ kind }));
    if (problem === null) {
      describe(`${title} (on ${kind})`, () => suite(kind));
    } else {
      console.warn(`[e2e] ${title}: ${kind} skipped: ${problem}`);
      describe.skip(`${title} (on ${kind}: SKIPPED, ${problem})`, () => suite(kind));
    }
  }
}

/** The engine's command line client, for what a test does from outside (exec, inspect, kill). */
export const engineCommand = (kind: RuntimeKind): string => (kind === 'podman' ? 'podman' : 'docker');

export interface E2eWarren {
  kind: RuntimeKind;
  warren: Warren;
  runner: ContainerRunner;
  runtime: ContainerRuntime;
  fake: FakeModelApi;
  channel: FakeChannel;
  local: LocalChannel | null;
  localToken: string;
  dataDir: string;
  installId: string;
  apiKey: string;
  /** Every agent container spec the host asked the engine to start, in order (folder jobs left out). */
  starts: ContainerSpec[];
  /** The agent runners' log lines (their stderr), all containers, in arrival order. */
  runnerLines: string[];
  addGroup(folder: string): Group;
  /** The name of the running container of a group (there is at most one). */
  containerOf(folder: string): Promise<string>;
  /** Stops the host as SIGTERM does (`warren.stop()`, then the runner) and starts a new one on the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startE2eWarren(
  options: {
    /** The engine: docker unless a suite runs per runtime (describeOnRuntimes). */
    runtime?: RuntimeKind;
    env?: Record<string, string>;
    isLocalChatEnabled?: boolean;
    agentEnv?: Record<string, string>;
    /** The egress gateway's resolver: the tests' fake hosts (on loopback) by name. */
    resolveName?(host: string): Promise<string[]>;
  } = {},
): Promise<E2eWarren> {
  const kind = options.runtime ?? 'docker';
  const baseRuntime = createRuntime({ kind });
  await requireAgentImage(baseRuntime);
  const starts: ContainerSpec[] = [];
  const runnerLines: string[] = [];
  const runtime: ContainerRuntime = {
    ...baseRuntime,
    start(spec) {
      // Agent containers only: folder jobs (measuring, clearing) have an entrypoint of their own.
      if (spec.entrypoint === undefined) starts.push(spec);
      return baseRuntime.start({
        ...spec,
        onOutput(output) {
          if (output.stream === 'stderr') runnerLines.push(output.line);
          spec.onOutput?.(output);
        },
      });
    },
  };
  const apiKey = `sk-ant-e2e-${randomBytes(12).toString('hex')}`;
  const fake = await startFakeModelApi({ expectedApiKey: apiKey });
  // Short: the proxy's unix socket path lives under it (108-byte limit).
  const dataDir = mkdtempSync('/tmp/warren-e2e-');
  const installId = `e2e${randomBytes(4).toString('hex')}`;
  const isLocalChatEnabled = options.isLocalChatEnabled ?? false;
  const config = loadConfig({
    env: {
      WARREN_DATA_DIR: dataDir,
      ANTHROPIC_BASE_URL: fake.url,
      WARREN_TIMEZONE: 'UTC',
      WARREN_LOCAL_CHAT: String(isLocalChatEnabled),
      WARREN_LOCAL_PORT: '0',
      WARREN_RETRY_BASE_MS: '300',
      WARREN_MAX_AGENTS: '10',
      WARREN_AGENT_MEMORY_MB: '768',
      WARREN_AGENT_IDLE_SECONDS: '120',
      WARREN_AGENT_MAX_RUN_MINUTES: '10',
      // A test machine may have little disk free; the floor is tested with a fake disk (src/disk-quota.test.ts).
      WARREN_MIN_FREE_DISK_MB: '0',
      // The watched quota unless a test asks for a file system per group (it unmounts them in stop()).
      WARREN_DISK_QUOTA_MODE: 'watched',
      WARREN_AGENT_IMAGE: AGENT_IMAGE,
      WARREN_RUNTIME: kind,
      WARREN_LOG_LEVEL: process.env.WARREN_E2E_LOG ?? 'silent',
      ...options.env,
    },
    cwd: dataDir,
  });
  const log = process.env.WARREN_E2E_LOG
    ? await createLogger({ level: process.env.WARREN_E2E_LOG })
    : silentLogger();
  const localToken = loadOrCreateToken(dataDir);
  const channel = new FakeChannel();
  // The same wiring as `warren start` (src/main.ts), with the fake channel added.
  const boot = () =>
    startHostParts({
      config,
      log,
      runtime,
      installId,
      credential: { kind: 'api-key', apiKey },
      packageRoot,
      localToken,
      extraChannels: [channel],
      // One retry at most: a refused or failed model call ends the turn in about a second, not minutes.
      agentEnv: options.agentEnv ?? { CLAUDE_CODE_MAX_RETRIES: '1' },
      resolveName: options.resolveName,
    });
  let { warren, runner: startedRunner } = await boot();
  const local = (warren.channels.get('local') as LocalChannel | undefined) ?? null;

  return {
    kind,
    get warren() {
      return warren;
    },
    get runner() {
      return startedRunner;
    },
    runtime,
    fake,
    channel,
    local,
    localToken,
    dataDir,
    installId,
    apiKey,
    starts,
    runnerLines,
    addGroup(folder) {
      return registerGroup(
        warren.store,
        dataDir,
        {
          folder,
          name: folder,
          chat: { channel: 'fake', chatId: folder },
          isDirect: false,
          trigger: 'always',
        },
        Date.now(),
      );
    },
    async containerOf(folder) {
      const owned = await baseRuntime.listOwned(installId);
      const running = owned.filter(
        (container) =>
          container.groupFolder === folder &&
          container.isRunning &&
          !container.name.endsWith(JOB_NAME_SUFFIX),
      );
      if (running.length !== 1) {
        throw new Error(`expected one running container for ${folder}, found ${running.length}`);
      }
      return (running[0] as { name: string }).name;
    },
    async restart() {
      await warren.stop();
      await startedRunner.close();
      ({ warren, runner: startedRunner } = await boot());
    },
    async stop() {
      let failure: unknown = null;
      try {
        await warren.stop();
        await startedRunner.close();
      } catch (error) {
        failure = error;
      }
      // Whatever happened above, no container of this test may outlive it.
      const left = await baseRuntime.removeOrphans(installId).catch(() => []);
      // Nor a mount: a group's file system (volumes.ts) stays mounted after a host stops, by design.
      await unmountUnder(dataDir);
      await fake.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (failure) throw failure;
      if (left.length > 0) throw new Error(`containers were still there after stop: ${left.join(', ')}`);
    },
  };
}

/** `docker kill`: what a crash, an OOM killer or an impatient admin does to a container from outside. */
export function killContainer(name: string, kind: RuntimeKind = 'docker'): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(engineCommand(kind), ['kill', name], { stdio: 'ignore' });
    child.on('close', resolve);
    child.on('error', () => resolve(null));
  });
}

/** Runs a command in a running container as its own user (the engine's exec); stdout and stderr together. */
export async function execInContainer(
  kind: RuntimeKind,
  name: string,
  command: string[],
  timeoutMs = 60_000,
): Promise<string> {
  let output = '';
  const isTimedOut = await new Promise<boolean>((resolve) => {
    const child = spawn(engineCommand(kind), ['exec', name, ...command], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      resolve(signal === 'SIGKILL');
    });
  });
  if (isTimedOut) throw new Error(`${command.join(' ')} in ${name} took over ${timeoutMs} ms`);
  // The host freezes a running agent while its disk use is measured (disk-quota.ts), and the engine refuses to exec
  // into a frozen container: asked again once it is thawed (a measurement takes seconds at most).
  if (/is paused|container state improper/i.test(output) && timeoutMs > 1_000) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    return execInContainer(kind, name, command, timeoutMs - 500);
  }
  return output;
}

/**
 * Searches a running container for a value: every file (but /proc, /sys and /dev), every process's environment and
 * command line, and the env. The value goes in as two halves joined on /dev/shm (excluded), so the search never finds
 * itself; control, searched the same way, must be found (the search works). The output's sections: "== files",
 * "== processes", "== env" (each empty when nothing was found), "== scanned N processes", "== control". roots: where
 * files are searched (the whole root by default).
 */
export function searchContainer(
  kind: RuntimeKind,
  name: string,
  value: string,
  control: string,
  roots = ['/'],
): Promise<string> {
  const files = `grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev`;
  const half = (text: string) => [text.slice(0, text.length >> 1), text.slice(text.length >> 1)];
  const script = [
    'printf "%s%s" "$1" "$2" > /dev/shm/k',
    `echo "== files"; ${files} -f /dev/shm/k ${roots.join(' ')} 2>/dev/null`,
    'echo "== processes"; for p in /proc/[0-9]*; do cat $p/environ $p/cmdline 2>/dev/null | tr "\\0" "\\n" | grep -F -f /dev/shm/k >/dev/null && echo "found in $p"; done',
    'echo "== env"; env | grep -F -f /dev/shm/k',
    'echo "== scanned $(ls -d /proc/[0-9]* | wc -l) processes"; rm /dev/shm/k',
    `printf "%s%s" "$3" "$4" > /dev/shm/c; echo "== control"; ${files} -f /dev/shm/c ${roots.join(' ')} 2>/dev/null`,
    'rm /dev/shm/c',
  ].join('; ');
  return execInContainer(
    kind,
    name,
    ['/bin/sh', '-c', script, 'sh', ...half(value), ...half(control)],
    120_000,
  );
}

/** The text of every tool_result block in the last user message of a recorded model request. */
export function toolResults(request: FakeRequest): string[] {
  const body = request.body as { messages?: Array<{ role: string; content: unknown }> } | null;
  const last = body?.messages?.at(-1);
  if (!last || !Array.isArray(last.content)) return [];
  return last.content
    .filter((block): block is { type: string; content: unknown } => block?.type === 'tool_result')
    .map((block) =>
      typeof block.content === 'string'
        ? block.content
        : Array.isArray(block.content)
          ? block.content.map((part: { text?: string }) => part.text ?? '').join('')
          : '',
    );
}

/** The newest tool result in a model request (the SDK may put a reminder of its own after it). */
export function latestToolResult(request: FakeRequest): string {
  const body = request.body as { messages?: unknown[] } | null;
  const messages = body?.messages ?? [];
  for (let index = messages.length; index > 0; index--) {
    const texts = toolResults({ ...request, body: { messages: messages.slice(0, index) } });
    if (texts.length > 0) return texts.join('\n');
  }
  return '';
}

/** The text of every user message (prompts, not tool results) in a recorded model request. */
export function userTexts(request: FakeRequest): string[] {
  const body = request.body as { messages?: Array<{ role: string; content: unknown }> } | null;
  const texts: string[] = [];
  for (const message of body?.messages ?? []) {
    if (message.role !== 'user') continue;
    if (typeof message.content === 'string') texts.push(message.content);
    else if (Array.isArray(message.content)) {
      for (const block of message.content as Array<{ type?: string; text?: string }>) {
        if (block.type === 'text' && block.text) texts.push(block.text);
      }
    }
  }
  return texts;
}

/** Waits until check() holds, checking every 50 ms. */
export async function waitFor<T>(
  check: () => T | null | undefined | false,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
