// The group queue: at most one agent per group, a global cap, follow-ups to running agents, retries, eviction.
import type { Logger } from './log.js';
import { formatPrompt } from './prompt.js';
import type { BatchFailure, Store } from './store.js';
import {
  type AgentEvent,
  type AgentExit,
  type AgentRunner,
  type AgentSession,
  AgentStartError,
  type ChatAddress,
} from './types.js';

export interface GroupQueueDeps {
  store: Store;
  runner: AgentRunner;
  log: Logger;
  now(): number;
  newId(): string;
  maxConcurrent: number;
  maxAttempts: number;
  retryBaseMs: number;
  contextLimit: number;
  timezone: string;
  /** Something was queued in the outbox. Must not throw. */
  onOutbox(): void;
  /** The agent started or stopped working on a chat's messages (typing indicators). Must not throw. */
  onBusy?(chat: ChatAddress, isBusy: boolean): void;
}

type SlotState = 'starting' | 'busy' | 'idle' | 'stopping';

interface Slot {
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
}

export interface QueueSnapshot {
  running: Array<{
    groupId: number;
    folder: string;
    state: SlotState;
    startedAt: number;
    lastActiveAt: number;
  }>;
  waiting: number[];
}

const MAX_BACKOFF_MS = 5 * 60_000;

export function createGroupQueue(deps: GroupQueueDeps) {
  const log = deps.log.child({ module: 'group-queue' });
  const slots = new Map<number, Slot>();
  const waiting: number[] = [];
  let wakeTimer: NodeJS.Timeout | null = null;
  let wakeAt: number | null = null;
  let isShuttingDown = false;

  const sameChat = (a: ChatAddress, b: ChatAddress) => a.channel === b.channel && a.chatId === b.chatId;
  const backoffMs = (attempt: number) => Math.min(deps.retryBaseMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);

  function notify(chat: ChatAddress, key: string, text: string): void {
    deps.store.outbox.enqueue(
      { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind: 'notice' },
      deps.now(),
    );
    deps.onOutbox();
  }

  /** Arms one timer for the earliest future retry: the queue never polls. */
  function armWake(at: number | null): void {
    if (at === null || isShuttingDown) return;
    if (wakeAt !== null && wakeAt <= at) return;
    if (wakeTimer) clearTimeout(wakeTimer);
    wakeAt = at;
    wakeTimer = setTimeout(
      () => {
        wakeTimer = null;
        wakeAt = null;
        pump();
      },
      Math.max(0, at - deps.now()),
    );
    wakeTimer.unref();
  }

  /** Looks at the store for due work and enqueues every group that has some. */
  function pump(): void {
    if (isShuttingDown) return;
    const work = deps.store.messages.work(deps.now());
    for (const groupId of work.dueGroupIds) enqueue(groupId);
    armWake(work.nextDueAt);
  }

  function reportFailure(slot: Slot, batchId: string, reason: string, isRetryable = true): void {
    const failure: BatchFailure | null = deps.store.messages.failBatch(batchId, reason, {
      maxAttempts: isRetryable ? deps.maxAttempts : 0,
      backoffMs,
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
      if (event.type === 'agent-message') {
        deps.store.outbox.enqueue(
          {
            idempotencyKey: key,
            channel: event.chat.channel,
            chatId: event.chat.chatId,
            text: event.text,
            kind: 'reply',
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
      if (event.sessionId) deps.store.sessions.set(slot.groupId, event.sessionId, deps.now());
      const finished = event.batchIds.filter((batchId) => slot.openBatches.has(batchId));
      for (const batchId of finished) slot.openBatches.delete(batchId);
      if (event.isError) {
        const reason = event.error ?? 'the agent reported an error';
        for (const batchId of finished) reportFailure(slot, batchId, reason, event.isRetryable !== false);
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
        deps.store.messages.completeBatches(finished, reply);
        if (reply) deps.onOutbox();
      }
      if (slot.openBatches.size === 0 && slot.state === 'busy') {
        slot.state = 'idle';
        deps.onBusy?.(slot.chat, false);
        log.debug({ group: slot.folder }, 'agent idle');
      }
      if (slot.hasMoreWork) {
        slot.hasMoreWork = false;
        enqueue(slot.groupId);
      }
      drainWaiting();
    } catch (error) {
      log.error({ err: error, group: slot.folder, event: event.type }, 'failed to handle agent event');
    }
  }

  function handleExit(slot: Slot, exit: AgentExit, failure?: { reason: string; isRetryable: boolean }): void {
    slots.delete(slot.groupId);
    deps.store.runs.end(slot.runId, `${exit.status}: ${exit.reason}`, deps.now());
    log.info({ group: slot.folder, runId: slot.runId, ...exit }, 'agent exited');
    if (slot.openBatches.size > 0) deps.onBusy?.(slot.chat, false);
    // On shutdown, open batches stay 'processing' in the store and are released on the next start.
    if (!isShuttingDown) {
      const reason =
        failure?.reason ??
        (exit.status === 'crashed'
          ? `the agent stopped unexpectedly: ${exit.reason}`
          : 'the agent exited before answering');
      for (const batchId of slot.openBatches)
        reportFailure(slot, batchId, reason, failure?.isRetryable ?? true);
    }
    slot.openBatches.clear();
    if (isShuttingDown) return;
    drainWaiting();
    pump();
  }

  async function startRun(groupId: number): Promise<void> {
    const group = deps.store.groups.byId(groupId);
    if (!group) return;
    const batchId = deps.newId();
    const batch = deps.store.messages.claimBatch(groupId, batchId, deps.contextLimit, deps.now());
    if (!batch) return;
    const runId = deps.newId();
    const slot: Slot = {
      groupId,
      folder: group.folder,
      runId,
      chat: batch.chat,
      state: 'starting',
      session: null,
      openBatches: new Set([batchId]),
      lastActiveAt: deps.now(),
      startedAt: deps.now(),
      hasMoreWork: false,
    };
    slots.set(groupId, slot);
    deps.store.runs.start(runId, groupId, deps.now());
    deps.onBusy?.(batch.chat, true);
    log.info({ group: group.folder, runId, messages: batch.messages.length }, 'starting agent');
    let session: AgentSession;
    try {
      session = await deps.runner.start({
        runId,
        group,
        chat: batch.chat,
        prompt: formatPrompt(batch.messages, deps.timezone),
        batchId,
        sessionId: deps.store.sessions.get(groupId),
        onEvent: (event) => handleEvent(slot, event),
      });
    } catch (error) {
      log.error({ err: error, group: group.folder }, 'agent failed to start');
      const isRetryable = !(error instanceof AgentStartError && !error.isRetryable);
      handleExit(
        slot,
        { status: 'crashed', reason: `could not start: ${(error as Error).message}` },
        { reason: `could not start the agent: ${(error as Error).message}`, isRetryable },
      );
      return;
    }
    slot.session = session;
    if (slot.state === 'starting') slot.state = slot.openBatches.size > 0 ? 'busy' : 'idle';
    void session.exited.then((exit) => handleExit(slot, exit));
    if (slot.state === 'stopping' || isShuttingDown) {
      void session.stop('no longer needed');
      return;
    }
    if (slot.hasMoreWork) {
      slot.hasMoreWork = false;
      enqueue(groupId);
    }
  }

  /** Hands new work to the group's running agent if it can take it. Returns false when it cannot. */
  function offerFollowUp(slot: Slot): boolean {
    if (!slot.session || (slot.state !== 'busy' && slot.state !== 'idle')) return false;
    const chat = deps.store.messages.nextChat(slot.groupId, deps.now());
    if (!chat) return true; // nothing due: nothing to hand over
    if (!sameChat(chat, slot.chat)) return false; // one run serves one chat
    const batchId = deps.newId();
    const batch = deps.store.messages.claimBatch(slot.groupId, batchId, deps.contextLimit, deps.now());
    if (!batch) return true;
    if (!slot.session.sendFollowUp(formatPrompt(batch.messages, deps.timezone), batchId)) {
      deps.store.messages.unclaim(batchId); // the agent is closing: the next run takes these
      return false;
    }
    slot.openBatches.add(batchId);
    if (slot.state === 'idle') deps.onBusy?.(slot.chat, true);
    slot.state = 'busy';
    slot.lastActiveAt = deps.now();
    log.debug({ group: slot.folder, batchId }, 'follow-up handed to running agent');
    return true;
  }

  /** Frees a place for a waiting group by stopping the least recently active idle agent. */
  function evictIdle(): boolean {
    let oldest: Slot | null = null;
    for (const slot of slots.values()) {
      if (slot.state === 'idle' && (!oldest || slot.lastActiveAt < oldest.lastActiveAt)) oldest = slot;
    }
    if (!oldest?.session) return false;
    oldest.state = 'stopping';
    log.info({ group: oldest.folder }, 'stopping idle agent to make room');
    void oldest.session.stop('evicted to make room for another group');
    return true;
  }

  function drainWaiting(): void {
    if (isShuttingDown) return;
    while (waiting.length > 0 && slots.size < deps.maxConcurrent) {
      const groupId = waiting.shift() as number;
      if (!slots.has(groupId)) void startRun(groupId);
    }
    const stopping = [...slots.values()].filter((slot) => slot.state === 'stopping').length;
    for (let needed = waiting.length - stopping; needed > 0; needed--) if (!evictIdle()) break;
  }

  function enqueue(groupId: number): void {
    if (isShuttingDown) return;
    const slot = slots.get(groupId);
    if (slot) {
      if (!offerFollowUp(slot)) {
        slot.hasMoreWork = true;
        // An idle agent serving another chat of this group steps aside for the waiting chat.
        if (slot.state === 'idle' && slot.session) {
          slot.state = 'stopping';
          void slot.session.stop('another chat of this group has work');
        }
      }
      return;
    }
    if (slots.size < deps.maxConcurrent) {
      void startRun(groupId);
      return;
    }
    if (!waiting.includes(groupId)) waiting.push(groupId);
    drainWaiting();
  }

  return {
    enqueue,
    /** After a (re)start: messages a dead host left in processing are pending again, and all due work is queued. */
    resume(): void {
      const released = deps.store.messages.releaseProcessing();
      const closed = deps.store.runs.closeAll('host restarted', deps.now());
      if (released > 0 || closed > 0) log.info({ released, closed }, 'resumed work left by the previous run');
      pump();
    },
    snapshot(): QueueSnapshot {
      return {
        running: [...slots.values()].map((slot) => ({
          groupId: slot.groupId,
          folder: slot.folder,
          state: slot.state,
          startedAt: slot.startedAt,
          lastActiveAt: slot.lastActiveAt,
        })),
        waiting: [...waiting],
      };
    },
    /** Stops taking work and stops every agent; unfinished messages stay in the store for the next start. */
    async shutdown(): Promise<void> {
      isShuttingDown = true;
      if (wakeTimer) clearTimeout(wakeTimer);
      await Promise.all(
        [...slots.values()].map(async (slot) => {
          await slot.session?.stop('Warren is shutting down');
          if (slot.session) await slot.session.exited;
        }),
      );
    },
  };
}

export type GroupQueue = ReturnType<typeof createGroupQueue>;
