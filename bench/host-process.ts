// Driver side of the measured host: compiles it to plain JS, runs it as a child process, talks to it, reads /proc.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type HostEvent,
  type HostOrder,
  type HostStats,
  hostEventSchema,
  type Received,
} from './protocol.js';

type Reply = Extract<HostEvent, { type: 'reply' }>;
type Listener = (event: HostEvent) => void;

/**
 * Compiles bench/host.ts and what it imports to JavaScript, as `npm run build` does for `warren start`: the host
 * then runs on plain node, without tsx's loader thread (about 40 MB of RSS that production does not have).
 * Returns the path of host.js.
 */
export async function compileHost(packageRoot: string, outDir: string): Promise<string> {
  const tsc = path.join(packageRoot, 'node_modules', '.bin', 'tsc');
  // Only emits (types are checked by `npm run check`); files named on the command line ignore tsconfig.json.
  const args = [
    ...['--outDir', outDir, '--rootDir', packageRoot, '--noCheck', '--skipLibCheck'],
    ...['--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2023'],
    ...['--types', 'node', '--esModuleInterop', '--resolveJsonModule', '--verbatimModuleSyntax'],
    path.join(packageRoot, 'bench', 'host.ts'),
  ];
  const result = await run(tsc, args, packageRoot);
  const hostJs = path.join(outDir, 'bench', 'host.js');
  if (result.code !== 0) throw new Error(`compiling the bench host failed:\n${result.output}`);
  // ESM like the repository, and packages resolved from the repository's node_modules.
  writeFileSync(path.join(outDir, 'package.json'), '{"type":"module"}\n');
  symlinkSync(path.join(packageRoot, 'node_modules'), path.join(outDir, 'node_modules'));
  return hostJs;
}

function run(command: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', (error) => resolve({ code: null, output: String(error) }));
    child.on('close', (code) => resolve({ code, output }));
  });
}

export interface BenchHost {
  readonly pid: number;
  readonly installId: string;
  readonly dataDir: string;
  readonly logFile: string;
  order(order: HostOrder, timeoutMs?: number): Promise<Reply>;
  send(messages: Array<{ chatId: string; text: string }>): Promise<Received[]>;
  stats(): Promise<HostStats>;
  /** Every event the host reports (timestamps), until the returned function is called. */
  listen(listener: Listener): () => void;
  /** Stops the host as SIGTERM would (agents stopped, store closed) and waits for the process to end. */
  shutdown(): Promise<void>;
  /** SIGKILL, for failures. */
  kill(): void;
}

export interface StartHostOptions {
  hostJs: string;
  packageRoot: string;
  /** The host's data directory and log file go under this folder. */
  workDir: string;
  name: string;
  modelUrl: string;
  apiKey: string;
  agentImage: string;
  /** More WARREN_* settings; everything not set here keeps Warren's default. */
  env?: Record<string, string>;
  /** Node flags for the host process (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

const STARTUP_TIMEOUT_MS = 60_000;

export async function startBenchHost(options: StartHostOptions): Promise<BenchHost> {
  const installId = `bench-${randomBytes(4).toString('hex')}`;
  const dataDir = path.join(options.workDir, options.name);
  mkdirSync(dataDir, { recursive: true });
  const logFile = path.join(options.workDir, `${options.name}.log`);
  const logFd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), options.hostJs], {
    cwd: dataDir,
    // Only what the host needs: PATH/HOME for the engine CLI, and its settings. The key is the fake's.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      ...(process.env.DOCKER_HOST ? { DOCKER_HOST: process.env.DOCKER_HOST } : {}),
      WARREN_DATA_DIR: dataDir,
      ANTHROPIC_BASE_URL: options.modelUrl,
      WARREN_LOCAL_CHAT: 'false',
      WARREN_TIMEZONE: 'UTC',
      WARREN_LOG_LEVEL: 'info',
      WARREN_AGENT_IMAGE: options.agentImage,
      ...options.env,
      BENCH_API_KEY: options.apiKey,
      BENCH_INSTALL_ID: installId,
      BENCH_PACKAGE_ROOT: options.packageRoot,
    },
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  const listeners = new Set<Listener>();
  const waiting = new Map<number, (reply: Reply) => void>();
  let nextId = 1;
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      exitCode = code;
      for (const resolveReply of waiting.values()) {
        resolveReply({ type: 'reply', id: -1, ok: false, error: `host exited (${code})` });
      }
      resolve();
    });
  });

  child.on('message', (raw) => {
    const parsed = hostEventSchema.safeParse(raw);
    if (!parsed.success) return;
    const event = parsed.data;
    if (event.type === 'reply') {
      waiting.get(event.id)?.(event);
      waiting.delete(event.id);
    }
    for (const listener of listeners) listener(event);
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`host ${options.name} did not start; see ${logFile}`)),
      STARTUP_TIMEOUT_MS,
    );
    const onEvent: Listener = (event) => {
      if (event.type !== 'started') return;
      clearTimeout(timer);
      listeners.delete(onEvent);
      resolve();
    };
    listeners.add(onEvent);
    void exited.then(() => {
      clearTimeout(timer);
      reject(
        new Error(
          `host ${options.name} exited (${exitCode}) while starting; see ${logFile}:\n${tail(logFile)}`,
        ),
      );
    });
  });

  const pid = child.pid;
  if (pid === undefined) throw new Error('host process has no pid');

  const order = (command: HostOrder, timeoutMs = 120_000): Promise<Reply> => {
    const id = nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`host ${options.name}: '${command.type}' got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.ok) resolve(reply);
        else reject(new Error(`host ${options.name}: '${command.type}' failed: ${reply.error}`));
      });
      child.send({ ...command, id });
    });
  };

  return {
    pid,
    installId,
    dataDir,
    logFile,
    order,
    async send(messages) {
      const reply = await order({ type: 'send', messages });
      return reply.received ?? [];
    },
    async stats() {
      const reply = await order({ type: 'stats' });
      if (!reply.stats) throw new Error('stats reply without stats');
      return reply.stats;
    },
    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async shutdown() {
      if (exitCode !== undefined) return;
      await order({ type: 'shutdown' }, 60_000).catch(() => child.kill('SIGKILL'));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      if (exitCode === undefined) child.kill('SIGKILL');
    },
  };
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
