// The group queue: at most one agent per group, a global cap, follow-ups to running agents, eviction.
// Work is chat message batches (from the store) and scheduled task runs (from the scheduler, a TaskWorkSource).
// What a run's agent events leave behind (replies, retries, settled task runs) is run-outcomes.ts's.
import type { Logger } from '../log.js';
import type { ChatAddress } from '../store/records.js';
import type { Store } from '../store/store.js';
import {
  type AgentExit,
  type AgentRunner,
  type AgentSession,
  AgentStartError,
  type PreCheck,
  type TaskWorkSource,
} from '../types.js';
import { formatPrompt } from './prompt.js';
import { createRunOutcomes, type Slot, type SlotState } from './run-outcomes.js';

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
  /** Scheduled task runs; without it the queue serves chat messages only. */
  tasks?: TaskWorkSource;
}

/** What a new run starts with. */
interface FirstWork {
  chat: ChatAddress;
  prompt: string;
  preCheck: PreCheck | null;
  isTask: boolean;
  isIsolated: boolean;
  size: number;
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

export function createGroupQueue(deps: GroupQueueDeps) {
  const log = deps.log.child({ module: 'group-queue' });
  const slots = new Map<number, Slot>();
  const waiting: number[] = [];
  let wakeTimer: NodeJS.Timeout | null = null;
  let wakeAt: number | null = null;
  let isShuttingDown = false;

  const sameChat = (a: ChatAddress, b: ChatAddress) => a.channel === b.channel && a.chatId === b.chatId;
  const { handleEvent, settleTask, reportFailure } = createRunOutcomes({
    ...deps,
    log,
    armWake,
    afterBatchesClosed,
  });

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
    for (const groupId of deps.tasks?.dueGroupIds(deps.now()) ?? []) enqueue(groupId);
    armWake(work.nextDueAt);
  }

  /** An agent started only for task runs stops once it is idle, rather than holding a place for nothing. */
  function stopIfDone(slot: Slot): void {
    if (slot.state !== 'idle' || !slot.isStopWhenIdle || !slot.session) return;
    slot.state = 'stopping';
    void slot.session.stop(slot.isIsolated ? 'isolated task run finished' : 'task run finished');
  }

  /** After batches closed: go idle, stop a task-only agent, hand over what waited, let waiting groups in. */
  function afterBatchesClosed(slot: Slot): void {
    if (slot.openBatches.size === 0 && slot.state === 'busy') {
      slot.state = 'idle';
      deps.onBusy?.(slot.chat, false);
      log.debug({ group: slot.folder }, 'agent idle');
    }
    stopIfDone(slot);
    if (slot.hasMoreWork) {
      slot.hasMoreWork = false;
      enqueue(slot.groupId);
    }
    drainWaiting();
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
      const isRetryable = failure?.isRetryable ?? !(exit.status === 'crashed' && exit.isRetryable === false);
      for (const batchId of [...slot.openBatches]) {
        if (slot.taskBatches.has(batchId))
          settleTask(slot, batchId, { status: 'failed', error: reason, isRetryable });
        else reportFailure(slot, batchId, reason, isRetryable);
      }
    }
    // Task runs left running on shutdown are ended as interrupted by the scheduler at the next start.
    slot.openBatches.clear();
    slot.taskBatches.clear();
    if (isShuttingDown) return;
    drainWaiting();
    pump();
  }

  /** Claims what a new run of the group starts with: chat messages first (people are waiting), then a task run. */
  function claimFirstWork(groupId: number, runId: string, batchId: string): FirstWork | null {
    const batch = deps.store.messages.claimBatch(groupId, batchId, deps.contextLimit, deps.now());
    if (batch) {
      const prompt = formatPrompt(batch.messages, deps.timezone);
      return {
        chat: batch.chat,
        prompt,
        preCheck: null,
        isTask: false,
        isIsolated: false,
        size: batch.messages.length,
      };
    }
    // A run cancelled between next() and take() is skipped; the loop ends when nothing is queued.
    for (
      let queued = deps.tasks?.next(groupId, deps.now());
      queued;
      queued = deps.tasks?.next(groupId, deps.now())
    ) {
      const started = deps.tasks?.take(queued, runId, batchId, deps.now());
      if (started)
        return { ...started, chat: queued.chat, isTask: true, isIsolated: queued.isIsolated, size: 1 };
    }
    return null;
  }

  async function startRun(groupId: number): Promise<void> {
    const group = deps.store.groups.byId(groupId);
    if (!group) return;
    const batchId = deps.newId();
    const runId = deps.newId();
    const work = claimFirstWork(groupId, runId, batchId);
    if (!work) return;
    const slot: Slot = {
      groupId,
      folder: group.folder,
      runId,
      chat: work.chat,
      state: 'starting',
      session: null,
      openBatches: new Set([batchId]),
      lastActiveAt: deps.now(),
      startedAt: deps.now(),
      hasMoreWork: false,
      taskBatches: new Set(work.isTask ? [batchId] : []),
      isIsolated: work.isIsolated,
      isStopWhenIdle: work.isTask,
    };
    slots.set(groupId, slot);
    deps.store.runs.start(runId, groupId, deps.now());
    // A pre-check may find nothing to do: no typing indicator until it says the model is needed.
    if (!work.preCheck) deps.onBusy?.(work.chat, true);
    log.info({ group: group.folder, runId, size: work.size, isTask: work.isTask }, 'starting agent');
    let session: AgentSession;
    try {
      session = await deps.runner.start({
        runId,
        group,
        chat: work.chat,
        prompt: work.prompt,
        batchId,
        ...(work.preCheck ? { preCheck: work.preCheck } : {}),
        sessionId: work.isIsolated ? null : deps.store.sessions.get(groupId),
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
    if (slot.state === 'starting') {
      slot.state = slot.openBatches.size > 0 ? 'busy' : 'idle';
      // Everything was answered while the agent was starting: the typing indicator goes off too.
      if (slot.state === 'idle') deps.onBusy?.(slot.chat, false);
    }
    void session.exited.then((exit) => handleExit(slot, exit));
    if (slot.state === 'stopping' || isShuttingDown) {
      void session.stop('no longer needed');
      return;
    }
    // Its task may have ended while the agent was starting (a quick pre-check that skipped).
    stopIfDone(slot);
    if (slot.hasMoreWork) {
      slot.hasMoreWork = false;
      enqueue(groupId);
    }
  }

  /** Hands new work to the group's running agent if it can take it. Returns false when it cannot. */
  function offerFollowUp(slot: Slot): boolean {
    if (!slot.session || (slot.state !== 'busy' && slot.state !== 'idle')) return false;
    const chat = deps.store.messages.nextChat(slot.groupId, deps.now());
    if (!chat) return offerTask(slot);
    if (!sameChat(chat, slot.chat) || slot.isIsolated) return false; // one run serves one chat (and session)
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
    slot.isStopWhenIdle = false;
    slot.lastActiveAt = deps.now();
    log.debug({ group: slot.folder, batchId }, 'follow-up handed to running agent');
    return offerTask(slot);
  }

  /**
   * Hands a due task run to the running agent when it may join: 'group' context, same chat, and an agent that is
   * not itself an isolated run. Returns false when a task waits that this agent cannot take.
   */
  function offerTask(slot: Slot): boolean {
    const queued = deps.tasks?.next(slot.groupId, deps.now());
    if (!queued || !slot.session) return true;
    if (queued.isIsolated || slot.isIsolated || !sameChat(queued.chat, slot.chat)) return false;
    const batchId = deps.newId();
    const started = deps.tasks?.take(queued, slot.runId, batchId, deps.now());
    if (!started) return true;
    const options = started.preCheck ? { preCheck: started.preCheck } : {};
    if (!slot.session.sendFollowUp(started.prompt, batchId, options)) {
      deps.tasks?.release(batchId); // the agent is closing: the next run takes it
      return false;
    }
    slot.openBatches.add(batchId);
    slot.taskBatches.add(batchId);
    if (slot.state === 'idle' && !started.preCheck) deps.onBusy?.(slot.chat, true);
    slot.state = 'busy';
    slot.lastActiveAt = deps.now();
    log.debug({ group: slot.folder, batchId }, 'task run handed to running agent');
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
        // An idle agent steps aside for work it cannot take: another chat of this group, or an isolated task.
        if (slot.state === 'idle' && slot.session) {
          slot.state = 'stopping';
          void slot.session.stop('other work of this group is waiting');
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
