// A task's pre-check: a short script run here, in the group's container, that decides whether the model is needed.
import { spawn } from 'node:child_process';
import { z } from 'zod';
import {
  MAX_PRE_CHECK_DATA_CHARS,
  MAX_PRE_CHECK_OUTPUT_BYTES,
  MAX_SHORT_CHARS,
} from '../../src/protocol/ipc.js';

export type PreCheckResult =
  /** Wake the model; data (JSON text) goes along with the prompt. */
  | { outcome: 'run'; data: string | null }
  | { outcome: 'skip'; detail: string }
  | { outcome: 'error'; detail: string };

export interface RunningPreCheck {
  /** Never rejects. */
  readonly result: Promise<PreCheckResult>;
  /** Kills the script (and what it started). */
  kill(): void;
}

export type PreCheckRunner = (
  check: { script: string; timeoutMs: number },
  options: { cwd: string },
) => RunningPreCheck;

/** The decision is the last line the script prints. */
const decisionSchema = z.object({ run: z.boolean(), data: z.unknown().optional() });
const STDERR_TAIL_CHARS = 300;
const EXPECTED = 'the last line of output must be JSON: {"run": false} or {"run": true, "data": …}';

/** Judges a finished script: exit code first, then the JSON decision on its last line. */
export function decide(exitCode: number | null, stdout: string, stderr: string): PreCheckResult {
  const tail = stderr.trim().slice(-STDERR_TAIL_CHARS);
  if (exitCode !== 0) {
    return { outcome: 'error', detail: cut(`exited with code ${exitCode}${tail ? `: ${tail}` : ''}`) };
  }
  const last = stdout.trim().split('\n').at(-1)?.trim() ?? '';
  let value: unknown;
  try {
    value = JSON.parse(last);
  } catch {
    return { outcome: 'error', detail: cut(`${EXPECTED}; got ${JSON.stringify(last.slice(0, 200))}`) };
  }
  const parsed = decisionSchema.safeParse(value);
  if (!parsed.success) return { outcome: 'error', detail: cut(`${EXPECTED}; got ${last.slice(0, 200)}`) };
  if (!parsed.data.run) return { outcome: 'skip', detail: 'the pre-check found nothing to do' };
  if (parsed.data.data === undefined) return { outcome: 'run', data: null };
  const data = JSON.stringify(parsed.data.data);
  if (data.length > MAX_PRE_CHECK_DATA_CHARS) {
    return {
      outcome: 'error',
      detail: `its data is ${data.length} characters; at most ${MAX_PRE_CHECK_DATA_CHARS}`,
    };
  }
  return { outcome: 'run', data };
}

/**
 * Runs the script with bash in its own process group, so a timeout kills everything it started. A shell is the
 * point here: the script is the agent's, and it runs in the same sandbox as the agent's own Bash tool.
 */
export const runPreCheck: PreCheckRunner = (check, options) => {
  let stdout = '';
  let stderr = '';
  let failure: string | null = null;
  const child = spawn('bash', ['-c', check.script], {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const kill = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const timer = setTimeout(() => {
    failure ??= `timed out after ${Math.round(check.timeoutMs / 1000)} s`;
    kill();
  }, check.timeoutMs);
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    if (Buffer.byteLength(stdout) > MAX_PRE_CHECK_OUTPUT_BYTES) {
      failure ??= `printed more than ${MAX_PRE_CHECK_OUTPUT_BYTES} bytes`;
      stdout = '';
      kill();
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4096);
  });
  const result = new Promise<PreCheckResult>((resolve) => {
    child.on('error', (error) => {
      failure ??= `could not run: ${error.message}`;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(failure ? { outcome: 'error', detail: cut(failure) } : decide(code, stdout, stderr));
    });
  });
  return {
    result,
    kill() {
      failure ??= 'stopped: the run is ending';
      kill();
    },
  };
};

function cut(text: string): string {
  return text.length <= MAX_SHORT_CHARS ? text : `${text.slice(0, MAX_SHORT_CHARS - 1)}…`;
}
