// A task's pre-check: a short script run here, in the group's container, that decides whether the model is needed.
import { spawn } from 'node:child_process';
import { z } from 'zod';
import { MAX_PRE_CHECK_DATA_CHARS, MAX_PRE_CHECK_OUTPUT_BYTES } from '../../src/protocol/ipc.js';
import { truncate } from './ipc-files.js';

/** 'run': wake the model, data (JSON text) going along with the prompt. */
type PreCheckResult = { outcome: 'run'; data: string | null } | { outcome: 'skip' | 'error'; detail: string };

export type RunningPreCheck = ReturnType<typeof runPreCheck>;

/** The decision is the last line the script prints. */
const decisionSchema = z.object({ run: z.boolean(), data: z.unknown().optional() });
const STDERR_TAIL_CHARS = 300;
const EXPECTED = 'the last line of output must be JSON: {"run": false} or {"run": true, "data": …}';

/** Judges a finished script: exit code first, then the JSON decision on its last line. */
export function decide(exitCode: number | null, stdout: string, stderr: string): PreCheckResult {
  const tail = stderr.trim().slice(-STDERR_TAIL_CHARS);
  if (exitCode !== 0) {
    return { outcome: 'error', detail: truncate(`exited with code ${exitCode}${tail ? `: ${tail}` : ''}`) };
  }
  const last = stdout.trim().split('\n').at(-1)?.trim() ?? '';
  let decision: z.infer<typeof decisionSchema>;
  try {
    decision = decisionSchema.parse(JSON.parse(last));
  } catch {
    return { outcome: 'error', detail: truncate(`${EXPECTED}; got ${JSON.stringify(last.slice(0, 200))}`) };
  }
  if (!decision.run) return { outcome: 'skip', detail: 'the pre-check found nothing to do' };
  if (decision.data === undefined) return { outcome: 'run', data: null };
  const data = JSON.stringify(decision.data);
  if (data.length <= MAX_PRE_CHECK_DATA_CHARS) return { outcome: 'run', data };
  return {
    outcome: 'error',
    detail: `its data is ${data.length} characters; at most ${MAX_PRE_CHECK_DATA_CHARS}`,
  };
}

/**
 * Runs the script with bash in its own process group, so a timeout kills everything it started. A shell is the
 * point here: the script is the agent's, and it runs in the same sandbox as the agent's own Bash tool.
 */
export function runPreCheck(check: { script: string; timeoutMs: number }, options: { cwd: string }) {
  let stdout = '';
  let stderr = '';
  let failure: string | null = null;
  const child = spawn('bash', ['-c', check.script], {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  /** Ends the script (and what it started) for this reason, unless it already failed for another. */
  const fail = (reason: string) => {
    failure ??= reason;
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const seconds = Math.round(check.timeoutMs / 1000);
  const timer = setTimeout(() => fail(`timed out after ${seconds} s`), check.timeoutMs);
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    if (Buffer.byteLength(stdout) > MAX_PRE_CHECK_OUTPUT_BYTES) {
      stdout = '';
      fail(`printed more than ${MAX_PRE_CHECK_OUTPUT_BYTES} bytes`);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4096);
  });
  child.on('error', (error) => fail(`could not run: ${error.message}`));
  const result = new Promise<PreCheckResult>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(failure ? { outcome: 'error', detail: truncate(failure) } : decide(code, stdout, stderr));
    });
  });
  // result never rejects.
  return { result, kill: () => fail('stopped: the run is ending') };
}

/** The task prompt with what its pre-check handed over, escaped so the data cannot forge structure. */
export function withCheckData(text: string, data: string | null): string {
  if (data === null) return text;
  const escaped = data.replace(/[&<>]/g, (char) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt' }[char]};`);
  return `${text}\n<pre_check_data>\n${escaped}\n</pre_check_data>\nThe task's pre-check found this (JSON).`;
}
