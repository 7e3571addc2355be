// One run's life: host files in, prompts to the model loop, turn-end events out, and when to exit.
import { randomUUID } from 'node:crypto';
import {
  CONTAINER_PATHS,
  IPC_PROTOCOL_VERSION,
  MAX_MESSAGE_CHARS,
  MAX_SHORT_CHARS,
  type OutputFile,
  type RunSettings,
  type TaskFile,
} from '../../src/protocol/ipc.js';
import type { AgentLoop, LoopEnd, LoopTurn } from './agent-loop.js';
import type { HostRequests } from './host-requests.js';
import { createInputWatcher } from './input-watcher.js';
import type { OutputWriter } from './ipc-files.js';
import type { Log } from './log.js';
import { type PreCheckRunner, type RunningPreCheck, runPreCheck } from './pre-check.js';
import { createPromptQueue } from './prompt-queue.js';

export type RunnerExit = { reason: 'idle' | 'stop' | 'signal' } | { reason: 'error'; error: string };

export interface RunnerDeps {
  settings: Pick<RunSettings, 'sessionId' | 'idleTimeoutMs'>;
  loop: AgentLoop;
  output: OutputWriter;
  requests: HostRequests;
  inputDirectory: string;
  log: Log;
  fallbackScanMs?: number;
  /** After an idle exit starts, how long the loop may take to end by itself before it is closed. */
  closeGraceMs?: number;
  /** Warnings found while starting, sent to the host as log events right after ready. */
  notices?: string[];
  /** Runs task pre-checks (default: bash in the group folder). */
  runPreCheck?: PreCheckRunner;
  /** Where pre-checks run. Default: the group folder. */
  workDirectory?: string;
}

export interface Runner {
  /** Resolves (never rejects) once the run is over and its last events are written. */
  readonly done: Promise<RunnerExit>;
  /** Ends the run now: a stop file or a signal. Safe to call more than once. */
  stop(reason: 'stop' | 'signal', detail?: string): void;
}

/** How long the runner waits for a closed loop to return before it gives up on it. */
const LOOP_EXIT_DEADLINE_MS = 3_000;

export function startRunner(deps: RunnerDeps): Runner {
  const { loop, log, requests } = deps;
  const queue = createPromptQueue();
  /** Pre-checks under way, by batch: the run is not idle while one runs. */
  const checks = new Map<string, RunningPreCheck>();
  let exit: RunnerExit | null = null;
  let idleTimer: NodeJS.Timeout | undefined;
  let sessionId = deps.settings.sessionId;
  let giveUpOnLoop: () => void = () => {};
  const loopGivenUp = new Promise<LoopEnd>((resolve) => {
    giveUpOnLoop = () => resolve({ status: 'failed', error: 'the model loop did not end after close' });
  });

  const writeEvent = (file: OutputFile): Promise<void> =>
    deps.output.write(file).then(
      () => {},
      (error: unknown) => log.error({ err: error, type: file.type }, 'cannot write output file'),
    );

  const watcher = createInputWatcher({
    directory: deps.inputDirectory,
    log,
    ...(deps.fallbackScanMs === undefined ? {} : { fallbackScanMs: deps.fallbackScanMs }),
    onFile(file, name) {
      switch (file.type) {
        case 'prompt':
          if (!queue.push(file.batchId, file.text)) return;
          log.info({ batchId: file.batchId, file: name }, 'prompt received');
          armIdleTimer();
          return;
        case 'task':
          startCheck(file, name);
          return;
        case 'stop':
          log.info({ reason: file.reason }, 'stop requested');
          finish({ reason: 'stop' });
          return;
        case 'response':
          if (!requests.resolve(file)) log.warn({ id: file.id }, 'response for no waiting request');
          return;
      }
    },
    onInvalid(name, error) {
      log.warn({ file: name, error }, 'invalid input file skipped');
      void writeEvent({
        type: 'log',
        level: 'warn',
        message: `invalid input file ${name} skipped: ${error}`,
      });
    },
  });

  /** Runs a task's pre-check; only when it says so does the prompt go to the model (no model call otherwise). */
  function startCheck(file: TaskFile, name: string): void {
    if (exit || checks.has(file.batchId)) return;
    log.info({ batchId: file.batchId, file: name }, 'task pre-check started');
    const running = (deps.runPreCheck ?? runPreCheck)(file.preCheck, {
      cwd: deps.workDirectory ?? CONTAINER_PATHS.group,
    });
    checks.set(file.batchId, running);
    void running.result.then(async (result) => {
      checks.delete(file.batchId);
      // The run is ending: the host sees the batch unanswered and decides.
      if (exit) return;
      const detail = result.outcome === 'run' ? undefined : result.detail;
      log.info({ batchId: file.batchId, outcome: result.outcome, detail }, 'task pre-check done');
      await writeEvent({
        type: 'pre-check',
        batchId: file.batchId,
        outcome: result.outcome,
        ...(detail === undefined ? {} : { detail }),
      });
      if (result.outcome === 'run') queue.push(file.batchId, withCheckData(file.text, result.data));
      armIdleTimer();
    });
  }

  function armIdleTimer(): void {
    clearTimeout(idleTimer);
    if (exit) return;
    idleTimer = setTimeout(() => void onIdle(), deps.settings.idleTimeoutMs);
  }

  async function onIdle(): Promise<void> {
    // A prompt may have landed without a watch event: look once more before leaving.
    await watcher.scan();
    if (exit) return;
    if (queue.hasWork() || requests.pendingCount() > 0 || checks.size > 0) {
      armIdleTimer();
      return;
    }
    log.info({ idleTimeoutMs: deps.settings.idleTimeoutMs }, 'idle, exiting');
    finish({ reason: 'idle' });
  }

  function finish(next: RunnerExit): void {
    if (exit) return;
    exit = next;
    clearTimeout(idleTimer);
    watcher.close();
    queue.close();
    requests.cancelAll('the run is ending');
    for (const check of checks.values()) check.kill();
    // Idle: the prompt stream has ended, so the loop can finish its session cleanly; stop and signals are now.
    const graceMs = next.reason === 'idle' ? (deps.closeGraceMs ?? 2_000) : 0;
    const closeTimer = setTimeout(() => loop.close(), graceMs);
    const giveUpTimer = setTimeout(giveUpOnLoop, graceMs + LOOP_EXIT_DEADLINE_MS);
    closeTimer.unref();
    giveUpTimer.unref();
  }

  function onTurnEnd(turn: LoopTurn): void {
    if (turn.sessionId) sessionId = turn.sessionId;
    const batchIds = queue.settle(turn.promptUuids);
    const error = turn.error ?? (turn.isError ? turn.result : undefined);
    void writeEvent({
      type: 'turn-end',
      id: randomUUID(),
      batchIds,
      result: turn.isError ? null : toReplyText(turn.result),
      sessionId,
      isError: turn.isError,
      ...(error ? { error: truncate(error, MAX_SHORT_CHARS) } : {}),
    });
    log.info({ batchIds, isError: turn.isError, sessionId }, 'turn ended');
    armIdleTimer();
  }

  async function run(): Promise<RunnerExit> {
    await writeEvent({ type: 'ready', protocolVersion: IPC_PROTOCOL_VERSION });
    for (const notice of deps.notices ?? []) {
      log.warn({ notice }, 'startup notice');
      await writeEvent({ type: 'log', level: 'warn', message: truncate(notice, MAX_SHORT_CHARS) });
    }
    await watcher.start();
    armIdleTimer();
    let resumeSessionId = sessionId;
    let end: LoopEnd;
    while (true) {
      end = await Promise.race([
        loop.run({ prompts: queue.stream(), resumeSessionId, onTurnEnd }),
        loopGivenUp,
      ]);
      if (end.status !== 'resume-failed' || resumeSessionId === null || exit) break;
      // The stored session is unusable (missing, corrupt): start a fresh one once, with the same prompts.
      log.warn(
        { sessionId: resumeSessionId, error: end.error },
        'cannot resume session, starting a fresh one',
      );
      await writeEvent({
        type: 'log',
        level: 'warn',
        message: truncate(
          `session ${resumeSessionId} could not be resumed (${end.error}); started a fresh one`,
          MAX_SHORT_CHARS,
        ),
      });
      queue.requeueUnanswered();
      resumeSessionId = null;
      sessionId = null;
    }
    if (!exit) {
      finish({
        reason: 'error',
        error: end.status === 'ended' ? 'the model loop ended by itself' : end.error,
      });
    }
    const final = exit ?? { reason: 'error', error: 'unreachable' };
    const unanswered = queue.unanswered();
    if (unanswered.length > 0) {
      await writeEvent({
        type: 'turn-end',
        id: randomUUID(),
        batchIds: unanswered.map((prompt) => prompt.batchId),
        result: null,
        sessionId,
        isError: true,
        error: truncate(
          `the run ended (${final.reason}) before these prompts were answered`,
          MAX_SHORT_CHARS,
        ),
      });
    }
    await writeEvent({
      type: 'exit',
      reason: final.reason,
      ...(final.reason === 'error' ? { error: truncate(final.error, MAX_SHORT_CHARS) } : {}),
    });
    return final;
  }

  const done = run().catch((error: unknown): RunnerExit => {
    log.error({ err: error }, 'runner failed');
    return { reason: 'error', error: String(error) };
  });

  return {
    done,
    stop(reason, detail) {
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
  if (result === null) return null;
  const text = result.replace(/<internal>[\s\S]*?(<\/internal>|$)/g, '').trim();
  return text === '' ? null : truncate(text, MAX_MESSAGE_CHARS);
}

/** The task prompt with what its pre-check handed over, escaped so the data cannot forge structure. */
export function withCheckData(text: string, data: string | null): string {
  if (data === null) return text;
  const escaped = data.replace(/[&<>]/g, (char) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt' }[char]};`);
  return `${text}\n<pre_check_data>\n${escaped}\n</pre_check_data>\nThe task's pre-check found this (JSON).`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
