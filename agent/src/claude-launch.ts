// How Claude Code is launched (options, command line, env), decided before the SDK loads, and its early start: its
// ~1 s start (mostly its own CPU work) then overlaps the runner loading zod and the SDK instead of following it
// (docs/BENCHMARKS.md). Imports only node built-ins and import-free modules, so it can run before everything else.
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Options, SpawnedProcess, SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { RUN_ENV } from '../../src/protocol/paths.js';
import type { Log } from './log.js';

/** What a run's Claude Code launch depends on, all known before the SDK is loaded. */
export interface ClaudeLaunch {
  cwd: string;
  /** Writable, its .claude/projects the group's session transcripts (main.ts, prepareHome). */
  home: string;
  /** The relay's URL: the SDK's only way to the model API. */
  apiBaseUrl: string;
  /** The egress relay's URL (an HTTP proxy): the only way to anywhere else, as each group's rules allow. */
  proxyUrl: string;
  /** The gateway's CA certificate, and a bundle of it with the system's CAs; null when the host gave none. */
  trust: { ca: string; bundle: string } | null;
  /** Folders besides cwd the agent may work in (global memory, extra mounts). */
  additionalDirectories: string[];
  model?: string;
  /** Claude Code's native binary and the SDK's version; null when unknown: then nothing starts early. */
  executable: string | null;
  sdkVersion: string | null;
  /** The runner's env, copied before the SDK loads (it writes variables of its own into process.env). */
  runnerEnv: Readonly<Record<string, string | undefined>>;
}

/** The SDK options the launch decides; claude-loop.ts adds the tools, the system prompt and the spawner. */
export function launchOptions(launch: ClaudeLaunch, resumeSessionId: string | null) {
  const runSettings: string[] = Object.values(RUN_ENV);
  const inherited = Object.entries(launch.runnerEnv).filter(([name]) => !runSettings.includes(name));
  return {
    cwd: launch.cwd,
    ...(resumeSessionId ? { resume: resumeSessionId } : {}),
    ...(launch.model ? { model: launch.model } : {}),
    ...(launch.executable ? { pathToClaudeCodeExecutable: launch.executable } : {}),
    // No filesystem settings: 'project' would load .claude/settings.json (hooks, MCP servers, permissions) from the
    // group folder, where an injected agent could plant a hook for its next start; 'user' reads ~/.claude, also
    // agent-writable. All is set here in code, and CLAUDE.md memory goes in the system prompt (memory.ts).
    settingSources: [],
    // No auto-memory: CLAUDE.md is the one memory the host knows about. No hooks, as a second lock behind the above.
    // No WebFetch preflight: it asks claude.ai about each domain, which the group's egress rules do not allow; the
    // gateway is what decides where a fetch may go.
    settings: { autoMemoryEnabled: false, disableAllHooks: true, skipWebFetchPreflight: true },
    strictMcpConfig: true,
    // The container is the sandbox (no network, read-only root, only the group's mounts) and nobody is there to
    // answer a permission prompt. (Claude Code refuses this as root: we run as uid 1000.)
    permissionMode: 'bypassPermissions',
    allowDangerouslySkipPermissions: true,
    // WebFetch goes through the egress gateway like every request, so the group's rules decide where. WebSearch runs
    // on the model API's side, where no rule of ours reaches: only where the owner turned it on (the credential
    // proxy refuses it otherwise). Cron*, ScheduleWakeup: in-session timers die with the container; scheduling is
    // the host's job. SendMessage: Claude Code's agent-to-agent messaging, easily confused with send_message.
    disallowedTools: [
      ...(launch.runnerEnv[RUN_ENV.webSearch] === '1' ? [] : ['WebSearch']),
      'CronCreate',
      'CronDelete',
      'CronList',
      'ScheduleWakeup',
      'SendMessage',
    ],
    additionalDirectories: launch.additionalDirectories,
    env: {
      // Fast, honest failures: Claude Code's own retries (ten by default, minutes of backoff) become two, so a model
      // API that cannot be reached ends the turn in seconds; the host then tells the chat and retries the work.
      CLAUDE_CODE_MAX_RETRIES: '2',
      ...Object.fromEntries(inherited),
      HOME: launch.home,
      ANTHROPIC_BASE_URL: launch.apiBaseUrl,
      // Not a secret: the host's credential proxy replaces it with the real key.
      ANTHROPIC_API_KEY: 'warren-proxy',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_NON_ESSENTIAL_MODEL_CALLS: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_AGENT_SDK_CLIENT_APP: 'warren-agent/0.1.0',
      // Every command Claude Code runs inherits these (curl reads only the lower-case http_proxy). The model relay
      // is local and stays direct. A tool that ignores them has no route at all: the container has no network.
      ...Object.fromEntries(
        ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY'].flatMap((name) => [
          [name, launch.proxyUrl],
          [name.toLowerCase(), launch.proxyUrl],
        ]),
      ),
      NO_PROXY: '127.0.0.1,localhost,::1',
      no_proxy: '127.0.0.1,localhost,::1',
      // The root is read-only, so the system store cannot take the gateway's CA: these point Node, OpenSSL (curl,
      // Python's ssl) and requests at it beside the system's CAs.
      ...(launch.trust
        ? {
            NODE_EXTRA_CA_CERTS: launch.trust.ca,
            SSL_CERT_FILE: launch.trust.bundle,
            CURL_CA_BUNDLE: launch.trust.bundle,
            REQUESTS_CA_BUNDLE: launch.trust.bundle,
          }
        : {}),
    },
  } satisfies Options;
}

const require = createRequire(import.meta.url);

/** The installed SDK's version, read from its package.json without loading the SDK. */
export function findSdkVersion(): string | null {
  try {
    const entry = require.resolve('@anthropic-ai/claude-agent-sdk');
    return JSON.parse(readFileSync(path.join(path.dirname(entry), 'package.json'), 'utf8')).version ?? null;
  } catch {
    return null;
  }
}

/** The platform package's binary, as the SDK finds it (the image is glibc Linux; musl second). */
export function findClaudeExecutable(): string | null {
  for (const suffix of ['', '-musl']) {
    try {
      return require.resolve(`@anthropic-ai/claude-agent-sdk-linux-${process.arch}${suffix}/claude`);
    } catch {
      // Not installed for this platform: try the next one.
    }
  }
  return null;
}

/** The SDK's spawn request: command, args, cwd and env (and the abort signal, which is not part of the match). */
type SpawnRequest = Omit<SpawnOptions, 'signal'>;

/**
 * The SDK's spawn request for launchOptions(), written down so Claude Code can start before the SDK loads. The test
 * compares it with the real one, so an SDK upgrade that changes it fails a test instead of losing the early start.
 */
export function expectedSpawn(launch: ClaudeLaunch, resumeSessionId: string | null): SpawnRequest | null {
  if (launch.executable === null || launch.sdkVersion === null) return null;
  // The SDK's debug mode changes the env in ways not mirrored here: no early start then. Nor with remote MCP
  // servers: the SDK puts them on the command line in a form of its own.
  if (launch.runnerEnv.DEBUG_CLAUDE_AGENT_SDK || launch.runnerEnv[RUN_ENV.mcpServers]) return null;
  const options = launchOptions(launch, resumeSessionId);
  // What the SDK adds to and removes from the env it is given, as it does it.
  const env: Record<string, string | undefined> = options.env;
  env.CLAUDE_CODE_ENTRYPOINT ||= 'sdk-ts';
  env.CLAUDE_AGENT_SDK_VERSION ||= launch.sdkVersion;
  if (!Object.keys(env).some((name) => name.toUpperCase() === 'CLAUDE_CODE_SDK_READS_SESSION_STATE')) {
    env.CLAUDE_CODE_SDK_READS_SESSION_STATE = '1';
  }
  delete env.NODE_OPTIONS;
  delete env.DEBUG;
  if (!env.BUN_ENABLE_CRASH_REPORTING && !env.BUN_CRASH_REPORT_URL) {
    delete env.BUN_CRASH_REPORT_URL;
    env.BUN_ENABLE_CRASH_REPORTING = '0';
  }
  return {
    command: launch.executable,
    args: [
      ...['--output-format', 'stream-json', '--verbose', '--input-format', 'stream-json'],
      ...(launch.model ? [`--model=${launch.model}`] : []),
      ...(resumeSessionId ? [`--resume=${resumeSessionId}`] : []),
      `--disallowedTools=${options.disallowedTools.join(',')}`,
      '--setting-sources=',
      '--strict-mcp-config',
      `--permission-mode=${options.permissionMode}`,
      '--allow-dangerously-skip-permissions',
      ...launch.additionalDirectories.map((directory) => `--add-dir=${directory}`),
      ...['--settings', JSON.stringify(options.settings)],
    ],
    cwd: launch.cwd,
    env,
  };
}

/** The SDK's `spawnClaudeCodeProcess`, and `dispose` to stop an early process nobody claimed. */
export type ClaudeSpawner = ReturnType<typeof createClaudeSpawner>;

/**
 * Starts Claude Code now, for the run's first session. The SDK's first spawn request gets it only if it asks for
 * exactly that; any other gets a fresh process (the early one stopped): a process always runs what the SDK asked.
 */
export function createClaudeSpawner(launch: ClaudeLaunch, resumeSessionId: string | null, log: Log) {
  const expected = expectedSpawn(launch, resumeSessionId);
  let early = expected && startProcess(expected, log);
  if (early) log.info({ pid: early.pid }, 'claude code started early');
  const dispose = () => {
    if (early && isRunning(early)) early.kill('SIGKILL');
    early = null;
  };
  return {
    spawn(request: SpawnOptions): SpawnedProcess {
      if (early && expected) {
        const mismatch =
          firstDifference(expected, request) ?? (isRunning(early) ? null : 'the early process has ended');
        const child = early;
        early = null;
        if (mismatch === null) return asSpawned(child, request.signal);
        log.warn({ mismatch }, 'early claude start not used');
        if (isRunning(child)) child.kill('SIGKILL');
      }
      return asSpawned(startProcess(request, log), request.signal);
    },
    dispose,
  };
}

const isRunning = (child: ChildProcess) =>
  child.pid !== undefined && child.exitCode === null && child.signalCode === null;

function startProcess(request: SpawnRequest, log: Log): ChildProcessWithoutNullStreams {
  const child = spawn(request.command, request.args, { cwd: request.cwd, env: request.env });
  // Always drained (a full stderr pipe would stall Claude Code); the tail goes into the log if it fails.
  let tail = '';
  child.stderr.setEncoding('utf8').on('data', (data: string) => {
    tail = (tail + data).slice(-2_000);
    log.debug({ data: data.trimEnd() }, 'claude code stderr');
  });
  child.on('error', (error) => log.warn({ err: error }, 'claude code process error'));
  child.on('exit', (code, signal) => {
    if (code) log.warn({ code, stderr: tail.trim() }, 'claude code exited with an error');
    else log.debug({ code, signal }, 'claude code exited');
  });
  return child;
}

/** The SDK's view of a child; aborting `signal` stops it (the SDK aborts after its own graceful close). */
function asSpawned(child: ChildProcessWithoutNullStreams, signal: AbortSignal): SpawnedProcess {
  const kill = () => isRunning(child) && child.kill('SIGTERM');
  if (signal.aborted) kill();
  else signal.addEventListener('abort', kill, { once: true });
  return child;
}

/** The first field in which the request differs from the expected one (names only: env values stay out of logs). */
export function firstDifference(expected: SpawnRequest, request: SpawnRequest): string | null {
  for (const field of ['command', 'cwd', 'args'] as const) {
    if (JSON.stringify(expected[field]) !== JSON.stringify(request[field])) return field;
  }
  const keys = new Set([...Object.keys(expected.env), ...Object.keys(request.env)]);
  for (const key of keys) {
    if (expected.env[key] !== request.env[key]) return `env ${key}`;
  }
  return null;
}
