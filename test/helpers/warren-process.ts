// The real `warren start` in a child process (from the TypeScript sources, through tsx), for tests and the soak that
// kill it: started until it says it is running, killed with SIGKILL as a crash would.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const CLI = path.resolve(import.meta.dirname, '..', '..', 'src', 'cli.ts');

/**
 * The environment of a real host wired to the loopback fakes (the model API, the Telegram Bot API) with no local
 * chat and the watched disk quota (no root needed); `extra` adds or overrides settings.
 */
export function fakeServicesEnv(options: {
  dataDir: string;
  apiKey: string;
  modelUrl: string;
  telegram: { token: string; url: string };
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: options.dataDir,
    WARREN_DATA_DIR: options.dataDir,
    WARREN_LOG_LEVEL: 'warn',
    ANTHROPIC_API_KEY: options.apiKey,
    ANTHROPIC_BASE_URL: options.modelUrl,
    WARREN_TELEGRAM_BOT_TOKEN: options.telegram.token,
    WARREN_TELEGRAM_API_ROOT: options.telegram.url,
    WARREN_LOCAL_CHAT: 'false',
    WARREN_DISK_QUOTA_MODE: 'watched',
    WARREN_MIN_FREE_DISK_MB: '0',
    WARREN_AGENT_MEMORY_MB: '768',
    ...options.extra,
  };
}

/** Resolves with the process once it printed "Warren is running"; rejects with its output if it exits first. */
export async function startWarrenProcess(options: {
  env: Record<string, string>;
  cwd: string;
  timeoutMs?: number;
}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, 'start'], {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let isRunning = false;
  // Read to the end (a full pipe would block the host's writes), kept only until it runs.
  const collect = (chunk: Buffer) => {
    if (!isRunning) output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (!output.includes('Warren is running')) {
    if (child.exitCode !== null) throw new Error(`warren start exited ${child.exitCode}: ${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`warren start did not say it is running: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  isRunning = true;
  return child;
}

/** SIGKILL, and resolves once the process is gone. */
export async function killWarrenProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGKILL');
  await closed;
}
