// What a group run's agent events leave behind: replies and notices in the outbox, chat message batches completed
// or retried with backoff (or given up, with word to the chat), and task runs settled with the scheduler.

import { backoffMs } from '../backoff.js';
import type { Logger } from '../log.js';
import type { ChatAddress } from '../store/records.js';
import type { BatchFailure, Store } from '../store/store.js';
import type { AgentEvent, AgentSession, TaskRunOutcome, TaskWorkSource } from '../types.js';

export interface RunOutcomeDeps {
  store: Store;
  now(): number;
  maxAttempts: number;
  retryBaseMs: number;
  /** Something was queued in the outbox. Must not throw. */
  onOutbox(): void;
  /** The agent started or stopped working on a chat's messages (typing indicators). Must not throw. */
  onBusy?(chat: ChatAddress, isBusy: boolean): void;
  /** Settles task runs; without it there are none. */
  tasks?: Pick<TaskWorkSource, 'settle'>;
  /** The queue's logger: these lines are the queue's. */
  log: Logger;
  /** Wakes the queue when a retry comes due. */
  armWake(at: number | null): void;
  /** Some of the slot's batches closed: the queue goes idle, stops a task-only agent, lets waiting work in. */
  afterBatchesClosed(slot: Slot): void;
}

/** One group's live agent run, as the queue keeps it (group-queue.ts changes it; this module reads and settles). */
export type SlotState = 'starting' | 'busy' | 'idle' | 'stopping';

export interface Slot {
  groupId: number;
  folder: string;
  runId: string;
  chat: ChatAddress;
  state: SlotState;
  session: AgentSession | null;
  /** Batches handed to the agent that it has not finished. */
  openBatches: Set<string>;
  lastActiveAt: number;
  startedAt: number;
  /** Work arrived that this run could not take (another chat, or the agent was starting or stopping). */
  hasMoreWork: boolean;
  /** The open batches that are task runs (the rest are chat message batches). */
  taskBatches: Set<string>;
  /** A fresh session for one isolated task run: nothing joins it, its session id is not kept. */
  isIsolated: boolean;
  /** Started for a task and nothing else has happened: stop it once idle instead of keeping it warm. */
  isStopWhenIdle: boolean;
}

const MAX_BACKOFF_MS = 5 * 60_000;

export function createRunOutcomes(deps: RunOutcomeDeps) {
  const { log, armWake, afterBatchesClosed } = deps;
  const retryDelayMs = (attempt: number) =>
    backoffMs(attempt, { baseMs: deps.retryBaseMs, maxMs: MAX_BACKOFF_MS });

  function notify(chat: ChatAddress, key: string, text: string): void {
    deps.store.outbox.enqueue(
      { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind: 'notice' },
      deps.now(),
    );
    deps.onOutbox();
  }

  /** Ends one open batch that is a task run; the scheduler records it and decides about retries. */
  function settleTask(slot: Slot, batchId: string, outcome: TaskRunOutcome): void {
    slot.openBatches.delete(batchId);
    slot.taskBatches.delete(batchId);
    deps.tasks?.settle(batchId, outcome);
  }

  function reportFailure(slot: Slot, batchId: string, reason: string, isRetryable = true): void {
    const failure: BatchFailure | null = deps.store.messages.failBatch(batchId, reason, {
      maxAttempts: isRetryable ? deps.maxAttempts : 0,
      backoffMs: retryDelayMs,
      now: deps.now(),
    });
    if (!failure) return;
    if (failure.outcome === 'retry') {
      log.warn(
        { group: slot.folder, batchId, attempt: failure.attempt, reason },
        'agent run failed; will retry',
      );
      const seconds = Math.max(1, Math.round((failure.retryAt - deps.now()) / 1000));
      notify(
        failure.chat,
        `notice:${batchId}:retry`,
        `⚠️ Something went wrong while answering (${reason}). Trying again in ${seconds}s ` +
          `(attempt ${failure.attempt + 1} of ${deps.maxAttempts}).`,
      );
      armWake(failure.retryAt);
    } else {
      log.error({ group: slot.folder, batchId, attempts: failure.attempts, reason }, 'giving up on messages');
      notify(
        failure.chat,
        `notice:${batchId}:failed`,
        failure.attempts > 1
          ? `❌ Sorry, I could not answer after ${failure.attempts} attempts (${reason}). Please try again later.`
          : `❌ Sorry, I could not answer (${reason}).`,
      );
    }
  }

  function handleEvent(slot: Slot, event: AgentEvent): void {
    try {
      slot.lastActiveAt = deps.now();
      const key = `${slot.runId}:${event.id}`;
      if (event.type === 'agent-message' || event.type === 'agent-file') {
        deps.store.outbox.enqueue(
          {
            idempotencyKey: key,
            channel: event.chat.channel,
            chatId: event.chat.chatId,
            text: event.type === 'agent-file' ? event.caption : event.text,
            kind: 'reply',
            filePath: event.type === 'agent-file' ? event.path : null,
          },
          deps.now(),
        );
        deps.onOutbox();
        return;
      }
      if (event.type === 'agent-notice') {
        notify(slot.chat, key, event.text);
        return;
      }
      if (event.type === 'pre-check') {
        if (!slot.taskBatches.has(event.batchId) || !slot.openBatches.has(event.batchId)) return;
        if (event.outcome === 'run') {
          deps.onBusy?.(slot.chat, true); // the model is on it now
          return;
        }
        // No turn-end follows a skipped or failed check: the batch ends here, without any model call.
        settleTask(
          slot,
          event.batchId,
          event.outcome === 'skip'
            ? { status: 'skipped', detail: event.detail ?? null }
            : {
                status: 'failed',
                error: `pre-check failed: ${event.detail ?? 'unknown error'}`,
                isRetryable: true,
              },
        );
        afterBatchesClosed(slot);
        return;
      }
      // An isolated run's session is its own: the group's stored conversation stays as it was.
      if (event.sessionId && !slot.isIsolated)
        deps.store.sessions.set(slot.groupId, event.sessionId, deps.now());
      const finished = event.batchIds.filter((batchId) => slot.openBatches.has(batchId));
      const finishedTasks = finished.filter((batchId) => slot.taskBatches.has(batchId));
      const finishedMessages = finished.filter((batchId) => !slot.taskBatches.has(batchId));
      for (const batchId of finishedMessages) slot.openBatches.delete(batchId);
      if (event.isError) {
        const reason = event.error ?? 'the agent reported an error';
        for (const batchId of finishedMessages)
          reportFailure(slot, batchId, reason, event.isRetryable !== false);
        for (const batchId of finishedTasks) {
          settleTask(slot, batchId, {
            status: 'failed',
            error: reason,
            isRetryable: event.isRetryable !== false,
          });
        }
      } else {
        const reply = event.result?.trim()
          ? {
              idempotencyKey: key,
              channel: slot.chat.channel,
              chatId: slot.chat.chatId,
              text: event.result,
              kind: 'reply' as const,
              now: deps.now(),
            }
          : null;
        // One reply for the turn, written with the batches' and task runs' completion in one transaction.
        deps.store.transaction(() => {
          deps.store.messages.completeBatches(finishedMessages, reply);
          for (const batchId of finishedTasks) {
            settleTask(slot, batchId, { status: 'succeeded', result: event.result });
          }
        });
        if (reply) deps.onOutbox();
        if (!slot.isIsolated && finished.length > 0) slot.isStopWhenIdle = false;
      }
      afterBatchesClosed(slot);
    } catch (error) {
      log.error({ err: error, group: slot.folder, event: event.type }, 'failed to handle agent event');
    }
  }

  return { handleEvent, settleTask, reportFailure };
}
