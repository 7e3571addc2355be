import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { query, type SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { describe, expect, it } from 'vitest';
import {
  type ClaudeLaunch,
  createClaudeSpawner,
  expectedSpawn,
  findSdkVersion,
  firstDifference,
  launchOptions,
} from './claude-launch.js';
import { buildClaudeOptions } from './claude-loop.js';
import type { Log } from './log.js';
import { createWarrenTools } from './warren-tools.js';

const silent: Log = { debug() {}, info() {}, warn() {}, error() {} };

function recordingLog() {
  const warnings: string[] = [];
  const log: Log = { ...silent, warn: (_fields, message) => warnings.push(message) };
  return { log, warnings };
}

function launchFor(overrides: Partial<ClaudeLaunch> = {}): ClaudeLaunch {
  return {
    cwd: '/workspace/group',
    home: '/home/agent',
    apiBaseUrl: 'http://127.0.0.1:40123',
    proxyUrl: 'http://127.0.0.1:40124',
    trust: { ca: '/run/warren/ca.pem', bundle: '/tmp/warren-ca-bundle.pem' },
    additionalDirectories: ['/workspace/global'],
    executable: '/opt/claude/claude',
    sdkVersion: findSdkVersion(),
    runnerEnv: {
      PATH: '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      NODE_OPTIONS: '--inspect',
      DEBUG: 'x',
      WARREN_RUN_ID: 'r1',
      CLAUDE_CODE_MAX_RETRIES: '1',
    },
    ...overrides,
  };
}

/** The spawn request the real SDK makes for Warren's options, captured instead of run. */
async function sdkSpawnRequest(
  launch: ClaudeLaunch,
  resumeSessionId: string | null,
  remoteMcp: Array<{ name: string; url: string }> = [],
): Promise<SpawnOptions> {
  let captured: SpawnOptions | null = null;
  const spawner = {
    spawn(request: SpawnOptions): never {
      captured = request;
      throw new Error('captured');
    },
    dispose() {},
  };
  const options = buildClaudeOptions(
    {
      launch,
      spawner,
      remoteMcp,
      tools: createWarrenTools({
        requests: {
          send: async () => ({ ok: true }),
          resolve: () => false,
          pendingCount: () => 0,
          cancelAll() {},
        },
        chat: 'local:main',
      }),
      systemPromptAppend: 'You are Warren.',
      log: silent,
    },
    resumeSessionId,
  );
  async function* prompts() {
    yield {
      type: 'user' as const,
      message: { role: 'user' as const, content: 'hi' },
      parent_tool_use_id: null,
    };
  }
  try {
    for await (const _message of query({ prompt: prompts(), options })) break;
  } catch {
    // The capturing spawner throws on purpose.
  }
  if (captured === null) throw new Error('the SDK asked for no process');
  return captured;
}

describe('expectedSpawn', () => {
  it.each([
    ['a new session', launchFor(), null],
    // The test process's env, with variables the SDK wrote into it at import.
    ["a new session in this process's env", launchFor({ runnerEnv: { ...process.env } }), null],
    [
      'a new session with crash reporting configured',
      launchFor({ runnerEnv: { PATH: '/bin', BUN_CRASH_REPORT_URL: 'http://127.0.0.1:9/crash' } }),
      null,
    ],
    [
      'a resumed session with a model and extra folders',
      launchFor({
        model: 'claude-sonnet-4-5',
        additionalDirectories: ['/workspace/global', '/workspace/extra/notes', '/workspace/extra/a b'],
      }),
      '6f1c2a4e-0000-4000-8000-000000000001',
    ],
  ])('is exactly the request the SDK makes for %s', async (_name, launch, resume) => {
    const request = await sdkSpawnRequest(launch, resume);
    const expected = expectedSpawn(launch, resume);
    expect(expected).not.toBeNull();
    if (expected === null) return;
    expect(request.args).toEqual(expected.args);
    expect(request.env).toEqual(expected.env);
    expect(firstDifference(expected, request)).toBeNull();
    // Claude Code inherits the container's env (the host's agentEnv included), not the run settings, NODE_OPTIONS
    // or DEBUG.
    expect(request.env.PATH).toBe(launch.runnerEnv.PATH);
    // Two retries unless the host's agentEnv says otherwise: a model API that is down ends the turn in seconds.
    expect(request.env.CLAUDE_CODE_MAX_RETRIES).toBe(launch.runnerEnv.CLAUDE_CODE_MAX_RETRIES ?? '2');
    expect(request.env.NODE_OPTIONS).toBeUndefined();
    expect(request.env.DEBUG).toBeUndefined();
    expect(request.env.WARREN_RUN_ID).toBeUndefined();
    expect(request.env.ANTHROPIC_API_KEY).toBe('warren-proxy');
    // Out only through the egress relay; the model relay (loopback) direct.
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) {
      expect(request.env[name], name).toBe(launch.proxyUrl);
    }
    expect(request.env.NO_PROXY).toBe('127.0.0.1,localhost,::1');
    expect(request.env.NODE_EXTRA_CA_CERTS).toBe('/run/warren/ca.pem');
    expect(request.env.SSL_CERT_FILE).toBe('/tmp/warren-ca-bundle.pem');
  });

  it('is null without a native binary, a known SDK version, or in SDK debug mode: nothing starts early', () => {
    expect(expectedSpawn(launchFor({ executable: null }), null)).toBeNull();
    expect(expectedSpawn(launchFor({ sdkVersion: null }), null)).toBeNull();
    expect(expectedSpawn(launchFor({ runnerEnv: { DEBUG_CLAUDE_AGENT_SDK: '1' } }), null)).toBeNull();
  });

  it('reads the installed SDK version', () => {
    expect(findSdkVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('names the first differing field, and only the env key, not its value', () => {
    const expected = expectedSpawn(launchFor(), null);
    if (expected === null) throw new Error('no expected spawn');
    expect(firstDifference(expected, { ...expected })).toBeNull();
    expect(firstDifference(expected, { ...expected, args: [...expected.args, '--x'] })).toBe('args');
    expect(firstDifference(expected, { ...expected, env: { ...expected.env, SECRET: 'v' } })).toBe(
      'env SECRET',
    );
    expect(firstDifference(expected, { ...expected, command: '/other' })).toBe('command');
  });
});

describe('remote MCP servers', () => {
  it('go to Claude Code on its command line, and then nothing starts early (the SDK writes that line itself)', async () => {
    const servers = [{ name: 'crm', url: 'https://mcp.example.com/mcp' }];
    const request = await sdkSpawnRequest(launchFor(), null, servers);
    const config = request.args[request.args.indexOf('--mcp-config') + 1] ?? '';
    expect(JSON.parse(config)).toMatchObject({ mcpServers: { crm: { type: 'http', url: servers[0]?.url } } });
    // The in-process warren server is the SDK's own, never on the command line.
    expect(config).not.toContain('"warren"');
    const runnerEnv = { PATH: '/usr/bin', WARREN_MCP_SERVERS: JSON.stringify(servers) };
    expect(expectedSpawn(launchFor({ runnerEnv }), null)).toBeNull();
  });
});

describe('launchOptions', () => {
  it('lets WebFetch through the gateway always, and WebSearch only where the owner turned it on', () => {
    const off = launchOptions(launchFor(), null);
    expect(off.disallowedTools).toContain('WebSearch');
    expect(off.disallowedTools).not.toContain('WebFetch');
    expect(off.settings.skipWebFetchPreflight).toBe(true);
    const on = launchOptions(launchFor({ runnerEnv: { PATH: '/usr/bin', WARREN_WEB_SEARCH: '1' } }), null);
    expect(on.disallowedTools).not.toContain('WebSearch');
    // The run setting is the host's: it does not pass on into Claude Code's own env.
    expect((on.env as Record<string, string | undefined>).WARREN_WEB_SEARCH).toBeUndefined();
  });
});

describe('createClaudeSpawner', () => {
  /** A stand-in for Claude Code: records its pid and args, then waits on stdin like the real one. */
  function fakeClaude() {
    const directory = mkdtempSync(path.join(tmpdir(), 'warren-claude-'));
    const executable = path.join(directory, 'claude');
    writeFileSync(executable, `#!/bin/sh\necho "$$ $*" >> "${directory}/started"\nexec cat >/dev/null\n`);
    chmodSync(executable, 0o755);
    const started = () => {
      try {
        return readFileSync(path.join(directory, 'started'), 'utf8').trim().split('\n');
      } catch {
        return [];
      }
    };
    const pidOf = (index: number) => Number(started()[index]?.split(' ')[0]);
    const launch = launchFor({ executable, cwd: directory, runnerEnv: { PATH: '/usr/bin:/bin' } });
    return { launch, started, pidOf };
  }

  // Up to 10 s: processes start and stop slowly on a loaded machine (2 s was too short in a CI dry run).
  async function until(check: () => boolean) {
    for (let i = 0; i < 1000 && !check(); i++) await sleep(10);
    expect(check()).toBe(true);
  }

  const isRunning = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('starts Claude Code before the SDK asks, and hands that process to a matching request', async () => {
    const fake = fakeClaude();
    const { launch } = fake;
    const { log, warnings } = recordingLog();
    const spawner = createClaudeSpawner(launch, 'session-1', log);
    await until(() => fake.started().length === 1);
    const request = expectedSpawn(launch, 'session-1');
    if (request === null) throw new Error('no expected spawn');
    const abort = new AbortController();
    const child = spawner.spawn({ ...request, signal: abort.signal });
    await sleep(50);
    expect(fake.started()).toHaveLength(1);
    expect(fake.started()[0]).toContain('--resume=session-1');
    const pid = fake.pidOf(0);
    expect(isRunning(pid)).toBe(true);
    expect(warnings).toEqual([]);
    // The SDK's abort (after its graceful close) stops the process.
    const exited = new Promise((resolve) => child.once('exit', resolve));
    abort.abort();
    await exited;
    expect(isRunning(pid)).toBe(false);
  });

  it('gives a different request a fresh process and stops the early one', async () => {
    const fake = fakeClaude();
    const { launch } = fake;
    const { log, warnings } = recordingLog();
    const spawner = createClaudeSpawner(launch, 'session-1', log);
    await until(() => fake.started().length === 1);
    const earlyPid = fake.pidOf(0);
    // A retry without resume (the stored session was unusable) asks for other args.
    const request = expectedSpawn(launch, null);
    if (request === null) throw new Error('no expected spawn');
    const abort = new AbortController();
    spawner.spawn({ ...request, signal: abort.signal });
    await until(() => fake.started().length === 2);
    expect(fake.started()[1]).not.toContain('--resume');
    await until(() => !isRunning(earlyPid));
    expect(warnings).toEqual(['early claude start not used']);
    abort.abort();
  });

  it('dispose() stops an early process nobody claimed', async () => {
    const fake = fakeClaude();
    const spawner = createClaudeSpawner(fake.launch, null, silent);
    await until(() => fake.started().length === 1);
    const pid = fake.pidOf(0);
    spawner.dispose();
    await until(() => !isRunning(pid));
  });
});
