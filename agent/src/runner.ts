// One run's life: host files in, prompts to the model loop, turn-end events out, and when to exit.
import { randomUUID } from 'node:crypto';
import {
  CONTAINER_PATHS,
  IPC_PROTOCOL_VERSION,
  MAX_MESSAGE_CHARS,
  type OutputFile,
  type RunSettings,
  type TaskFile,
} from '../../src/protocol/ipc.js';
import type { AgentLoop, LoopEnd, LoopTurn } from './agent-loop.js';
import type { HostRequests } from './host-requests.js';
import { createInputWatcher, type OutputWriter, plainError, truncate } from './ipc-files.js';
import type { Log } from './log.js';
import { type RunningPreCheck, runPreCheck, withCheckData } from './pre-check.js';
import { createPromptQueue } from './prompt-queue.js';

type RunnerExit = { reason: 'idle' | 'stop' | 'signal' } | { reason: 'error'; error: string };

/** After an idle exit starts, how long the loop may take to end by itself before it is closed. */
const CLOSE_GRACE_MS = 2_000;
/** How long the runner waits for a closed loop to return before it gives up on it. */
const LOOP_EXIT_DEADLINE_MS = 3_000;

export function startRunner(deps: {
  settings: Pick<RunSettings, 'sessionId' | 'idleTimeoutMs'>;
  loop: AgentLoop;
  output: OutputWriter;
  requests: HostRequests;
  inputDirectory: string;
  log: Log;
  fallbackScanMs?: number;
  /** Warnings found while starting, sent to the host as log events right after ready. */
  notices?: string[];
  /** Where pre-checks run. Default: the group folder. */
  workDirectory?: string;
}) {
  const { loop, log, requests } = deps;
  const queue = createPromptQueue();
  /** Pre-checks under way, by batch: the run is not idle while one runs. */
  const checks = new Map<string, RunningPreCheck>();
  let exit: RunnerExit | null = null;
  let idleTimer: NodeJS.Timeout | undefined;
  let sessionId = deps.settings.sessionId;
  let giveUpOnLoop = () => {};
  const loopGivenUp = new Promise<LoopEnd>((resolve) => {
    giveUpOnLoop = () => resolve({ status: 'failed', error: 'the model loop did not end after close' });
  });

  const writeEvent = (file: OutputFile): Promise<void> =>
    deps.output.write(file).then(
      () => {},
      (error: unknown) => log.error({ err: error, type: file.type }, 'cannot write output file'),
    );
  /** A warning for the runner's log, and for the host's as a log event (`text`). */
  const warn = (fields: Record<string, unknown>, message: string, text: string): Promise<void> => {
    log.warn(fields, message);
    return writeEvent({ type: 'log', level: 'warn', message: truncate(text) });
  };

  const watcher = createInputWatcher({
    directory: deps.inputDirectory,
    log,
    fallbackScanMs: deps.fallbackScanMs,
    onFile(file, name) {
      if (file.type === 'prompt' && queue.push(file.batchId, file.text)) {
        log.info({ batchId: file.batchId, file: name }, 'prompt received');
        armIdleTimer();
      } else if (file.type === 'task') {
        startCheck(file, name);
      } else if (file.type === 'stop') {
        log.info({ reason: file.reason }, 'stop requested');
        finish({ reason: 'stop' });
      } else if (file.type === 'response' && !requests.resolve(file)) {
        log.warn({ id: file.id }, 'response for no waiting request');
      }
    },
    onInvalid(name, error) {
      void warn(
        { file: name, error },
        'invalid input file skipped',
        `invalid input file ${name} skipped: ${error}`,
      );
    },
  });

  /** Runs a task's pre-check; only when it says so does the prompt go to the model (no model call otherwise). */
  function startCheck(file: TaskFile, name: string): void {
    if (exit || checks.has(file.batchId)) return;
    log.info({ batchId: file.batchId, file: name }, 'task pre-check started');
    const running = runPreCheck(file.preCheck, { cwd: deps.workDirectory ?? CONTAINER_PATHS.group });
    checks.set(file.batchId, running);
    void running.result.then(async (result) => {
      checks.delete(file.batchId);
      // The run is ending: the host sees the batch unanswered and decides.
      if (exit) return;
      const detail = result.outcome === 'run' ? {} : { detail: result.detail };
      log.info({ batchId: file.batchId, outcome: result.outcome, ...detail }, 'task pre-check done');
      await writeEvent({ type: 'pre-check', batchId: file.batchId, outcome: result.outcome, ...detail });
      if (result.outcome === 'run') queue.push(file.batchId, withCheckData(file.text, result.data));
      armIdleTimer();
    });
  }

  function armIdleTimer(): void {
    clearTimeout(idleTimer);
    if (!exit) idleTimer = setTimeout(() => void onIdle(), deps.settings.idleTimeoutMs);
  }

  async function onIdle(): Promise<void> {
    // A prompt may have landed without a watch event: look once more before leaving.
    await watcher.scan();
    if (exit) return;
    if (queue.hasWork() || requests.pendingCount() > 0 || checks.size > 0) return armIdleTimer();
    log.info({ idleTimeoutMs: deps.settings.idleTimeoutMs }, 'idle, exiting');
    finish({ reason: 'idle' });
  }

  function finish(next: RunnerExit): RunnerExit {
    if (exit) return exit;
    exit = next;
    clearTimeout(idleTimer);
    watcher.close();
    queue.close();
    requests.cancelAll('the run is ending');
    for (const check of checks.values()) check.kill();
    // Idle: the prompt stream has ended, so the loop can finish its session cleanly; stop and signals are now.
    const graceMs = next.reason === 'idle' ? CLOSE_GRACE_MS : 0;
    setTimeout(() => loop.close(), graceMs).unref();
    setTimeout(giveUpOnLoop, graceMs + LOOP_EXIT_DEADLINE_MS).unref();
    return next;
  }

  /** The turn-end for these batches: the reply, or (isError) what went wrong. */
  const writeTurnEnd = (batchIds: string[], result: string | null, isError: boolean) =>
    writeEvent({
      type: 'turn-end',
      id: randomUUID(),
      batchIds,
      result: isError ? null : toReplyText(result),
      sessionId,
      isError,
      ...(isError && result ? { error: truncate(plainError(result)) } : {}),
    });

  function onTurnEnd(turn: LoopTurn): void {
    sessionId = turn.sessionId ?? sessionId;
    const batchIds = queue.settle(turn.promptUuids);
    void writeTurnEnd(batchIds, turn.result, turn.isError);
    log.info({ batchIds, isError: turn.isError, sessionId }, 'turn ended');
    armIdleTimer();
  }

  const runLoop = (resumeSessionId: string | null) =>
    Promise.race([loop.run({ prompts: queue.stream(), resumeSessionId, onTurnEnd }), loopGivenUp]);

  async function run(): Promise<RunnerExit> {
    await writeEvent({ type: 'ready', protocolVersion: IPC_PROTOCOL_VERSION });
    for (const notice of deps.notices ?? []) await warn({ notice }, 'startup notice', notice);
    await watcher.start();
    armIdleTimer();
    const resume = deps.settings.sessionId;
    let end = await runLoop(resume);
    if (end.status === 'resume-failed' && resume !== null && !exit) {
      // The stored session is unusable (missing, corrupt): start a fresh one once, with the same prompts.
      const { error } = end;
      const text = `session ${resume} could not be resumed (${error}); started a fresh one`;
      await warn({ sessionId: resume, error }, 'cannot resume session, starting a fresh one', text);
      queue.requeueUnanswered();
      sessionId = null;
      end = await runLoop(null);
    }
    // A stop or signal that ended the loop stays the reason: finish() keeps the first.
    const error = end.status === 'ended' ? 'the model loop ended by itself' : end.error;
    const final = finish({ reason: 'error', error: truncate(error) });
    const unanswered = queue.unanswered().map((prompt) => prompt.batchId);
    const why = `the run ended (${final.reason}) before these prompts were answered`;
    if (unanswered.length > 0) await writeTurnEnd(unanswered, why, true);
    await writeEvent({ type: 'exit', ...final });
    return final;
  }

  const done = run().catch((error: unknown): RunnerExit => {
    log.error({ err: error }, 'runner failed');
    return { reason: 'error', error: String(error) };
  });
  return {
    /** Resolves (never rejects) once the run is over and its last events are written. */
    done,
    /** Ends the run now: a stop file or a signal. Safe to call more than once. */
    stop(reason: 'stop' | 'signal', detail?: string): void {
      if (!exit) log.info({ reason, detail }, 'stopping');
      finish({ reason });
    },
  };
}

/**
 * The text to deliver for a turn: `<internal>…</internal>` parts (the agent's notes to itself) removed,
 * trimmed, capped. null when nothing is left, i.e. the agent chose to stay silent.
 */
export function toReplyText(result: string | null): string | null {
  const text = result?.replace(/<internal>[\s\S]*?(<\/internal>|$)/g, '').trim();
  return text ? truncate(text, MAX_MESSAGE_CHARS) : null;
}
