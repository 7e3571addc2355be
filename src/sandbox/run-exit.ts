// A run's container in the host's words: why it ended (what the chat and the queue are told), why it could not
// start (in words that say what to do), and the agent runner's log lines.
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { parseJson } from '../protocol/read.js';
import type { AgentExit } from '../types.js';
import type { RunnerExitReason } from './ipc.js';
import type { ContainerExit, ContainerRuntime } from './runtimes/index.js';

/** The agent runner writes JSON log lines (pino-like) on stderr. */
const runnerLogLineSchema = z.looseObject({ level: z.number(), msg: z.string() });

export async function explainStartFailure(runtime: ContainerRuntime, image: string, exit: ContainerExit) {
  const availability = await runtime.checkAvailable();
  if (!availability.ok) return `${availability.reason}; ${availability.fix}`;
  if (!(await runtime.hasImage(image))) {
    return `the agent image ${image} is missing: run \`warren image build\``;
  }
  return `the container engine could not start the agent: ${exit.detail ?? `exit ${exit.exitCode}`}`;
}

export function describeExit(
  config: Pick<Config, 'agentMaxRunMinutes' | 'agentMemoryMb'>,
  exit: ContainerExit,
  runnerExit: RunnerExitReason | null,
  stopReason: string | null,
  limitReason: string | null = null,
): AgentExit {
  const code = exit.exitCode ?? 'unknown';
  const isRunnerError = runnerExit?.reason === 'error';
  const stopped = stopReason !== null ? `stopped: ${stopReason}` : null;
  if (limitReason !== null) return { status: 'crashed', reason: limitReason, isRetryable: false };
  switch (exit.reason) {
    case 'timeout':
      // Not retried: a hung agent would hold its group for the full ceiling again, and again.
      return {
        status: 'crashed',
        reason: `ran longer than the ${config.agentMaxRunMinutes} min limit (not tried again; ask again to retry)`,
        isRetryable: false,
      };
    case 'oom':
      return { status: 'crashed', reason: `ran out of memory (limit ${config.agentMemoryMb} MB)` };
    case 'start-failed':
      return { status: 'crashed', reason: `could not start: ${exit.detail ?? 'unknown'}` };
    case 'killed':
      if (stopped && !isRunnerError) return { status: 'exited', reason: stopped };
      return { status: 'crashed', reason: `killed (exit ${code})` };
    case 'exited':
      if (isRunnerError)
        return { status: 'crashed', reason: `agent error: ${runnerExit.error ?? 'unknown'}` };
      if (runnerExit && code === 0) {
        return { status: 'exited', reason: (runnerExit.reason === 'stop' && stopped) || runnerExit.reason };
      }
      if (code === 137) return { status: 'crashed', reason: 'killed (exit 137)' };
      if (code === 143) return { status: 'crashed', reason: 'terminated (exit 143)' };
      return { status: 'crashed', reason: `exited unexpectedly (exit ${code})` };
  }
}

export function forwardRunnerLog(log: Logger, line: string) {
  if (line.trim() === '') return;
  const parsed = runnerLogLineSchema.safeParse(parseJson(line));
  if (!parsed.success) return log.debug({ line: line.slice(0, 2000) }, 'agent output');
  const fields = { agent: parsed.data };
  if (parsed.data.level >= 50) log.error(fields, 'agent runner error');
  else if (parsed.data.level >= 40) log.warn(fields, 'agent runner warning');
  else log.debug(fields, 'agent runner');
}
