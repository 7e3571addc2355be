// The real `warren start` in a child process (from the TypeScript sources, through tsx), for tests and the soak that
// kill it: started until it says it is running, killed with SIGKILL as a crash would.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const CLI = path.resolve(import.meta.dirname, '..', '..', 'src', 'cli.ts');

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
