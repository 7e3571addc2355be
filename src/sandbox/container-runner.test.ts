import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/fake-agent-runner.js';
import { prepareDataDir } from '../app.js';
import { loadConfig } from '../config.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import { type InputFile, ipcFileName, type OutputFile, parseIpcFile } from '../protocol/ipc.js';
import type { Group } from '../store/records.js';
import { type AuditEntry, openStore, type Store } from '../store/store.js';
import type { AgentEvent, AgentStartRequest } from '../types.js';
import { type ContainerRunner, createContainerRunner } from './container-runner.js';
import type {
  ContainerExit,
  ContainerRuntime,
  ContainerSpec,
  OwnedContainer,
  RunningContainer,
} from './runtimes/index.js';

interface Behaviour {
  isReady: boolean;
  isAutoReply: boolean;
  /** Each prompt first calls the model API through the mounted proxy socket; a refusal ends the turn in error. */
  isCallingModel?: boolean;
}

/** POSTs to /v1/messages through a unix socket, as the runner's relay would. Resolves with the status. */
function callModel(socketPath: string): Promise<number> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ model: 'claude-fake', max_tokens: 10, messages: [] });
    const req = http.request(
      { socketPath, path: '/v1/messages', method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** A container that plays the agent runner's side of the file protocol, driven by the test. */
class FakeContainer implements RunningContainer {
  readonly exited: Promise<ContainerExit>;
  readonly prompts: string[] = [];
  private resolveExit!: (exit: ContainerExit) => void;
  private sequence = 0;
  private seen = new Set<string>();
  private timer: NodeJS.Timeout;
  private isEnded = false;

  constructor(
    readonly name: string,
    readonly spec: ContainerSpec,
    private readonly behaviour: Behaviour,
  ) {
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
    if (behaviour.isReady) this.write({ type: 'ready', protocolVersion: 1 });
    this.timer = setInterval(() => this.poll(), 5);
  }

  get ipcDir(): string {
    const mount = this.spec.mounts.find((entry) => entry.containerPath === '/workspace/ipc/output');
    if (!mount) throw new Error('no ipc mount');
    return path.dirname(mount.hostPath);
  }

  write(file: OutputFile): void {
    const name = ipcFileName(++this.sequence, 'fake');
    writeFileSync(path.join(this.ipcDir, 'output', name), JSON.stringify(file));
  }

  private poll(): void {
    let names: string[];
    try {
      names = readdirSync(path.join(this.ipcDir, 'input')).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (this.seen.has(name) || name.startsWith('.')) continue;
      this.seen.add(name);
      const parsed = parseIpcFile('input', readFileSync(path.join(this.ipcDir, 'input', name), 'utf8'));
      if (!parsed.ok) continue;
      this.onInput(parsed.value);
    }
  }

  private onInput(file: InputFile): void {
    if (file.type === 'prompt') {
      this.prompts.push(file.text);
      if (this.behaviour.isCallingModel) {
        const socket = this.spec.mounts.find((entry) => entry.containerPath === '/run/warren')?.hostPath;
        void callModel(path.join(socket ?? '/nonexistent', 'api.sock')).then((status) =>
          this.write({
            type: 'turn-end',
            id: `t${this.sequence}`,
            batchIds: [file.batchId],
            result: null,
            sessionId: 'sess-1',
            isError: status !== 200,
            error: `API Error: ${status}`,
          }),
        );
      } else if (this.behaviour.isAutoReply) {
        this.write({
          type: 'turn-end',
          id: `t${this.sequence}`,
          batchIds: [file.batchId],
          result: `echo: ${file.text}`,
          sessionId: 'sess-1',
          isError: false,
        });
      }
    } else if (file.type === 'stop') {
      this.write({ type: 'exit', reason: 'stop' });
      this.end({ exitCode: 0, reason: 'exited' });
    }
  }

  end(exit: ContainerExit): void {
    if (this.isEnded) return;
    this.isEnded = true;
    clearInterval(this.timer);
    // Like the real CLI: the end is seen a moment after the last files were written.
    setTimeout(() => this.resolveExit(exit), 10);
  }

  async stop(): Promise<void> {
    this.end({ exitCode: 137, reason: 'killed' });
    await this.exited;
  }

  stderrTail(): string {
    return '';
  }

  readonly pauses: boolean[] = [];
  async pause(isPaused: boolean): Promise<boolean> {
    this.pauses.push(isPaused);
    return true;
  }
}

class FakeRuntime implements ContainerRuntime {
  readonly kind = 'docker' as const;
  readonly containers: FakeContainer[] = [];
  behaviour: Behaviour = { isReady: true, isAutoReply: true };
  startFailure: ContainerExit | null = null;
  hasAgentImage = true;
  orphanCalls: string[] = [];
  engineCpus: number | null = null;

  /** Folder jobs (measuring, clearing) the runner started, and what a measurement reports. */
  readonly jobs: ContainerSpec[] = [];
  measuredBytes = 4096;

  async start(spec: ContainerSpec): Promise<RunningContainer> {
    if (spec.entrypoint !== undefined) {
      this.jobs.push(spec);
      // du's two totals: bytes, then entries.
      spec.onOutput?.({ stream: 'stdout', line: `${this.measuredBytes}\ttotal` });
      spec.onOutput?.({ stream: 'stdout', line: '12\ttotal' });
      return {
        name: spec.name,
        exited: Promise.resolve({ exitCode: 0, reason: 'exited' as const }),
        stop: async () => {},
        pause: async () => false,
        stderrTail: () => '',
      };
    }
    const container = new FakeContainer(spec.name, spec, {
      ...this.behaviour,
      isReady: this.behaviour.isReady && !this.startFailure,
    });
    this.containers.push(container);
    if (this.startFailure) container.end(this.startFailure);
    return container;
  }
  async listOwned(): Promise<OwnedContainer[]> {
    return [];
  }
  async removeOrphans(installId: string): Promise<string[]> {
    this.orphanCalls.push(installId);
    return [];
  }
  async checkAvailable() {
    return { ok: true as const, version: 'fake' };
  }
  async cpuCount(): Promise<number | null> {
    return this.engineCpus;
  }
  async hasImage(): Promise<boolean> {
    return this.hasAgentImage;
  }
}

let dataDir: string;
let store: Store;
let runtime: FakeRuntime;
let runner: ContainerRunner;
let group: Group;
let audits: AuditEntry[];

function makeRunner(
  env: Record<string, string> = {},
  credential: { kind: 'api-key'; apiKey: string } | null = null,
) {
  const config = loadConfig({
    env: {
      WARREN_DATA_DIR: dataDir,
      // The machine's real free space must not decide these tests (the floor has its own, in disk-quota.test.ts).
      WARREN_MIN_FREE_DISK_MB: '0',
      // A file system per group needs root and mounts: the watched quota is what these tests drive.
      WARREN_DISK_QUOTA_MODE: 'watched',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      WARREN_AGENT_IDLE_SECONDS: '5',
      ...env,
    },
    cwd: dataDir,
  });
  return createContainerRunner({
    store,
    audit: (entry) => audits.push(entry),
    now: Date.now,
    config,
    log: silentLogger(),
    runtime,
    installId: 'unit',
    credential: credential ?? { kind: 'api-key', apiKey: 'sk-unit-secret' },
    packageRoot: path.resolve('.'),
    agentEnv: { CLAUDE_CODE_MAX_RETRIES: '0' },
    stopGraceMs: 200,
    readyTimeoutMs: 1000,
  });
}

function request(events: AgentEvent[], overrides: Partial<AgentStartRequest> = {}): AgentStartRequest {
  return {
    runId: `run-${Math.random().toString(36).slice(2)}`,
    group,
    chat: { channel: 'fake', chatId: 'family' },
    prompt: 'hello',
    batchId: 'b1',
    sessionId: null,
    onEvent: (event) => events.push(event),
    ...overrides,
  };
}

beforeEach(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'warren-runner-'));
  prepareDataDir(dataDir);
  store = openStore(':memory:');
  group = registerGroup(
    store,
    dataDir,
    {
      folder: 'family',
      name: 'Family',
      chat: { channel: 'fake', chatId: 'family' },
      isDirect: false,
      trigger: 'always',
    },
    1,
  );
  audits = [];
  runtime = new FakeRuntime();
  runner = makeRunner();
});

afterEach(async () => {
  await runner.close();
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('container runner', () => {
  it('starts a hardened container with the prompt in place, no secret in its env, and relays the answer', async () => {
    const events: AgentEvent[] = [];
    const session = await runner.start(request(events));
    const container = runtime.containers[0] as FakeContainer;
    await eventually(() => events.length > 0, 2000, 'turn-end');
    expect(events[0]).toMatchObject({
      type: 'turn-end',
      batchIds: ['b1'],
      result: 'echo: hello',
      sessionId: 'sess-1',
    });
    const spec = container.spec;
    expect(spec.installId).toBe('unit');
    expect(spec.groupFolder).toBe('family');
    expect(spec.user).toEqual(process.getuid?.() === 0 ? { uid: 1000, gid: 1000 } : expect.anything());
    expect(JSON.stringify(spec.env)).not.toContain('sk-unit-secret');
    expect(spec.env).toMatchObject({
      WARREN_GROUP_FOLDER: 'family',
      WARREN_CHAT: 'fake:family',
      CLAUDE_CODE_MAX_RETRIES: '0',
    });
    expect(spec.mounts).toContainEqual(
      expect.objectContaining({ containerPath: '/workspace/ipc/input', isReadOnly: true }),
    );
    expect(spec.mounts).toContainEqual(
      expect.objectContaining({ containerPath: '/run/warren', isReadOnly: true }),
    );
    expect(statSync(path.join(dataDir, 'sockets', 'family', 'api.sock')).isSocket()).toBe(true);
    expect(runtime.orphanCalls).toEqual(['unit']);

    expect(session.sendFollowUp('again', 'b2')).toBe(true);
    await eventually(() => events.length > 1, 2000, 'second turn-end');
    expect(container.prompts).toEqual(['hello', 'again']);

    await session.stop('test over');
    expect(await session.exited).toEqual({ status: 'exited', reason: 'stopped: test over' });
    expect(session.sendFollowUp('late', 'b3')).toBe(false);
    // The socket is gone with the run.
    expect(() => statSync(path.join(dataDir, 'sockets', 'family', 'api.sock'))).toThrow();
  });

  it('gives agents the configured CPUs, or what the engine has when that is fewer (a 1-CPU engine VM)', async () => {
    await runner.close();
    runtime.engineCpus = 8;
    runner = makeRunner({ WARREN_AGENT_CPUS: '2' });
    const first = await runner.start(request([]));
    expect(runtime.containers[0]?.spec.limits.cpus).toBe(2);
    await first.stop('next');
    await runner.close();
    runtime.engineCpus = 1;
    runner = makeRunner({ WARREN_AGENT_CPUS: '2' });
    await runner.start(request([]));
    expect(runtime.containers[1]?.spec.limits.cpus).toBe(1);
  });

  it('mounts an extra folder the allowlist allows, read-only, and audits one it refuses', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'warren-extra-'));
    const allowed = path.join(root, 'docs');
    const secret = path.join(root, '.ssh');
    mkdirSync(allowed);
    mkdirSync(secret);
    const allowlistPath = path.join(mkdtempSync(path.join(tmpdir(), 'warren-allow-')), 'allowlist.json');
    writeFileSync(allowlistPath, JSON.stringify({ allowedRoots: [{ path: root, allowReadWrite: false }] }));
    await runner.close();
    runner = makeRunner({ WARREN_MOUNT_ALLOWLIST: allowlistPath });
    store.groups.setExtraMounts(group.id, [
      { hostPath: allowed, containerName: 'docs', isReadOnly: false },
      { hostPath: secret, containerName: 'keys' },
    ]);
    const session = await runner.start(request([]));
    const spec = (runtime.containers[0] as FakeContainer).spec;
    expect(spec.mounts).toContainEqual(
      expect.objectContaining({ containerPath: '/workspace/extra/docs', isReadOnly: true }),
    );
    expect(spec.mounts.some((mount) => mount.containerPath === '/workspace/extra/keys')).toBe(false);
    expect(
      audits.filter((entry) => entry.action === 'extra-mount' && entry.decision === 'deny').length,
    ).toBeGreaterThanOrEqual(2);
    await session.stop('done');
  });

  it('mounts no extra folder when the allowlist file is missing (fail closed)', async () => {
    await runner.close();
    runner = makeRunner({ WARREN_MOUNT_ALLOWLIST: path.join(dataDir, 'no-such-allowlist.json') });
    store.groups.setExtraMounts(group.id, [{ hostPath: tmpdir(), containerName: 'tmp' }]);
    const session = await runner.start(request([]));
    const spec = (runtime.containers[0] as FakeContainer).spec;
    expect(spec.mounts.some((mount) => mount.containerPath.startsWith('/workspace/extra'))).toBe(false);
    expect(audits).toContainEqual(expect.objectContaining({ action: 'extra-mount', decision: 'deny' }));
    await session.stop('done');
  });

  it('reports a container killed from outside as a crash with a human reason', async () => {
    const session = await runner.start(request([]));
    (runtime.containers[0] as FakeContainer).end({ exitCode: 137, reason: 'exited' });
    expect(await session.exited).toEqual({ status: 'crashed', reason: 'killed (exit 137)' });
  });

  it('reports the hard timeout and OOM as crashes', async () => {
    const first = await runner.start(request([]));
    (runtime.containers[0] as FakeContainer).end({ exitCode: 137, reason: 'timeout' });
    // The ceiling is not tried again: a hung agent would hold its group for another full ceiling.
    expect(await first.exited).toEqual({
      status: 'crashed',
      reason: 'ran longer than the 30 min limit (not tried again; ask again to retry)',
      isRetryable: false,
    });
    const second = await runner.start(request([]));
    (runtime.containers[1] as FakeContainer).end({ exitCode: 137, reason: 'oom' });
    expect(await second.exited).toEqual({ status: 'crashed', reason: 'ran out of memory (limit 1024 MB)' });
  });

  it('stops a run whose group is over its disk quota, and starts none until it is under again', async () => {
    runtime.measuredBytes = 5000 * 1024 * 1024;
    const first = await runner.start(request([]));
    // Measured beside the first start, as the agent's user with the group's folders read-only, no network.
    expect(await first.exited).toEqual({
      status: 'crashed',
      reason: expect.stringMatching(
        /use 4.9 GiB, over its disk quota of 4.0 GiB.*warren groups quota family/,
      ),
      isRetryable: false,
    });
    const job = runtime.jobs[0] as ContainerSpec;
    expect(job.mounts.every((mount) => mount.isReadOnly)).toBe(true);
    expect(job.mounts.map((mount) => path.basename(path.dirname(mount.hostPath))).sort()).toEqual([
      'groups',
      'ipc',
      'sessions',
    ]);
    expect(job.user).toEqual(expect.objectContaining({ uid: expect.any(Number) }));
    await expect(runner.start(request([]))).rejects.toThrow(/over its disk quota/);
    runtime.measuredBytes = 1024;
    const third = await runner.start(request([]));
    await third.stop('done');
  });

  it('treats an idle exit after the runner said goodbye as a normal exit', async () => {
    const session = await runner.start(request([]));
    const container = runtime.containers[0] as FakeContainer;
    container.write({ type: 'exit', reason: 'idle' });
    const outputDir = path.join(container.ipcDir, 'output');
    await eventually(() => readdirSync(outputDir).length === 0, 3000, 'the exit event to be read');
    expect(session.sendFollowUp('too late', 'b9')).toBe(false);
    container.end({ exitCode: 0, reason: 'exited' });
    expect(await session.exited).toEqual({ status: 'exited', reason: 'idle' });
  });

  it('rejects start with a clear message when the image is missing', async () => {
    runtime.startFailure = { exitCode: 125, reason: 'start-failed', detail: 'Unable to find image' };
    runtime.hasAgentImage = false;
    await expect(runner.start(request([]))).rejects.toThrow(/warren image build/);
    // Nothing is left behind: the next start may serve the group again.
    expect(() => statSync(path.join(dataDir, 'sockets', 'family', 'api.sock'))).toThrow();
  });

  it('rejects start when no credential is configured', async () => {
    const bare = createContainerRunner({
      store,
      audit: () => {},
      now: Date.now,
      config: loadConfig({ env: { WARREN_DATA_DIR: dataDir }, cwd: dataDir }),
      log: silentLogger(),
      runtime,
      installId: 'unit',
      credential: null,
      packageRoot: path.resolve('.'),
    });
    await expect(bare.start(request([]))).rejects.toThrow(/no ANTHROPIC_API_KEY.*warren doctor/);
    await bare.close();
  });

  it('refuses agent env that could carry a secret', () => {
    expect(() =>
      createContainerRunner({
        store,
        audit: () => {},
        now: Date.now,
        config: loadConfig({ env: { WARREN_DATA_DIR: dataDir }, cwd: dataDir }),
        log: silentLogger(),
        runtime,
        installId: 'unit',
        credential: null,
        packageRoot: path.resolve('.'),
        agentEnv: { ANTHROPIC_API_KEY: 'x' },
      }),
    ).toThrow(/looks like a credential/);
  });

  it('rejects start when the container ends before it is ready', async () => {
    runtime.behaviour = { isReady: false, isAutoReply: false };
    const starting = runner.start(request([]));
    await eventually(() => runtime.containers.length === 1, 2000, 'container');
    (runtime.containers[0] as FakeContainer).end({ exitCode: 2, reason: 'exited' });
    await expect(starting).rejects.toThrow(/ended before it was ready/);
  });

  it('tells the chat once when the budget is used up, and marks the failed turns as not worth retrying', async () => {
    await runner.close();
    runner = makeRunner({ WARREN_GROUP_DAILY_BUDGET: '1', WARREN_TIMEZONE: 'UTC' });
    const now = Date.now();
    store.usage.record({
      groupFolder: 'family',
      at: now,
      day: new Date(now).toISOString().slice(0, 10),
      model: null,
      inputTokens: 60,
      outputTokens: 40,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      cost: 1,
    });
    runtime.behaviour = { isReady: true, isAutoReply: false, isCallingModel: true };
    const events: AgentEvent[] = [];
    const session = await runner.start(request(events));
    await eventually(() => events.some((event) => event.type === 'turn-end'), 3000, 'first turn-end');
    session.sendFollowUp('again', 'b2');
    await eventually(() => events.filter((event) => event.type === 'turn-end').length === 2, 3000, 'second');
    expect(events.filter((event) => event.type === 'agent-notice')).toEqual([
      {
        type: 'agent-notice',
        id: expect.stringMatching(/^budget-refused:family \d{4}-\d\d-\d\d$/),
        text: expect.stringMatching(/daily budget of 1\.00 USD/),
      },
    ]);
    expect(events.filter((event) => event.type === 'turn-end')).toEqual([
      expect.objectContaining({ batchIds: ['b1'], isError: true, isRetryable: false, isTold: true }),
      expect.objectContaining({ batchIds: ['b2'], isError: true, isRetryable: false, isTold: true }),
    ]);
    expect(audits.filter((entry) => entry.action === 'model-api')).toHaveLength(2);
    expect(audits[0]).toMatchObject({
      groupFolder: 'family',
      decision: 'deny',
      detail: { reason: expect.stringMatching(/^budget:/) },
    });
  });

  it('gives up on a container that never says it is ready, and stops it', async () => {
    runtime.behaviour = { isReady: false, isAutoReply: false };
    await expect(runner.start(request([]))).rejects.toThrow(/did not become ready within 1 s/);
    expect(() => statSync(path.join(dataDir, 'sockets', 'family', 'api.sock'))).toThrow();
  });
});
