// The group queue: at most one agent per group, a global cap, follow-ups to running agents, idle eviction. It
// owns the state of every live run (its slot); what is claimed, retried and settled is work.ts's.
import type { Logger } from '../log.js';
import { type ChatAddress, isSameChat } from '../store/records.js';
import type { Store } from '../store/store.js';
import {
  type AgentEvent,
  type AgentExit,
  type AgentRunner,
  type AgentSession,
  AgentStartError,
} from '../types.js';
import type { Slot } from './slot.js';
import type { Work, WorkQueue } from './work.js';
import { effectOf } from './work.js';

export interface GroupQueueDeps {
  store: Store;
  work: WorkQueue;
  runner: AgentRunner;
  log: Logger;
  now(): number;
  newId(): string;
  maxConcurrent: number;
  /** The agent started or stopped working on a chat's messages (typing indicators). Must not throw. */
  onBusy?(chat: ChatAddress, isBusy: boolean): void;
}

const STOPPED_BY_OWNER = { status: 'skipped', detail: 'stopped by the owner' } as const;

export function createGroupQueue(deps: GroupQueueDeps) {
  const { work } = deps;
  const log = deps.log.child({ module: 'group-queue' });
  const slots = new Map<number, Slot>();
  const waiting: number[] = [];
  let wakeTimer: NodeJS.Timeout | null = null;
  let wakeAt: number | null = null;
  let isShuttingDown = false;
  /** The owner's emergency stop (in the store, so the CLI can pull it too): nothing starts while it holds. */
  const isHeld = () => deps.store.emergencyStop.get() !== null;
  let wasHeld = isHeld();

  /** Enqueues every group with work due, and arms one timer for the earliest future retry: the queue never polls. */
  function pump(): void {
    if (isShuttingDown) return;
    const due = work.due();
    for (const groupId of due.groupIds) enqueue(groupId);
    const at = due.nextDueAt;
    if (at === null || (wakeAt !== null && wakeAt <= at)) return;
    if (wakeTimer) clearTimeout(wakeTimer);
    wakeAt = at;
    const wake = () => {
      wakeAt = null;
      pump();
    };
    wakeTimer = setTimeout(wake, Math.max(0, at - deps.now())).unref();
  }

  /** Asks a run to end; what it leaves unfinished is handed back (releaseIfCutShort). */
  function stopSlot(slot: Slot, reason: string): void {
    slot.state = 'stopping';
    void slot.session?.stop(reason);
  }

  /** An agent started only for task runs stops once it is idle, rather than holding a place for nothing. */
  function stopIfDone(slot: Slot): void {
    if (slot.state !== 'idle' || !slot.isStopWhenIdle || !slot.session) return;
    stopSlot(slot, slot.isIsolated ? 'isolated task run finished' : 'task run finished');
  }

  /** Lets in what waited for this slot: work it could not take is queued again once it is idle or gone. */
  function handOver(slot: Slot): void {
    if (!slot.hasMoreWork) return;
    slot.hasMoreWork = false;
    enqueue(slot.groupId);
  }

  /**
   * Stopping is not failing. What a run the host ended (shutdown, eviction, other work, emergency stop) left undone:
   * chat messages go back untouched (no attempt, no notice); a task run stays open and ends as interrupted at the
   * next start or when the stop is lifted (told, not repeated: it may have acted half-way). The owner's stop button
   * ends the turn unanswered, never retried. True when the work was taken care of here, so it is not failed.
   */
  function releaseIfCutShort(slot: Slot, item: Work): boolean {
    if (slot.isStoppedByOwner) work.settle([item], STOPPED_BY_OWNER);
    else if (!isShuttingDown && slot.state !== 'stopping') return false;
    else if (item.kind === 'messages') work.release(item);
    return slot.isStoppedByOwner || item.kind === 'messages' || isShuttingDown || isHeld();
  }

  function handleEvent(slot: Slot, event: AgentEvent): void {
    try {
      slot.lastActiveAt = deps.now();
      const effect = effectOf(event, slot);
      if (effect.type === 'send') work.send(effect.item);
      else if (effect.type === 'busy') deps.onBusy?.(slot.chat, true); // the model is on it now
      if (effect.type !== 'close') return;
      // Work ended: settle it, go idle, hand over what waited, let waiting groups in.
      if (effect.sessionId) deps.store.groups.setSession(slot.groupId, effect.sessionId, deps.now());
      if (effect.isKeptWarm) slot.isStopWhenIdle = false;
      for (const item of effect.works) slot.open.delete(item.batchId);
      const isFailed = effect.outcome.status === 'failed';
      work.settle(
        isFailed ? effect.works.filter((item) => !releaseIfCutShort(slot, item)) : effect.works,
        effect.outcome,
        effect.reply,
      );
      if (slot.open.size === 0 && slot.state === 'busy') {
        slot.state = 'idle';
        deps.onBusy?.(slot.chat, false);
      }
      stopIfDone(slot);
      handOver(slot);
      drainWaiting();
      // A failure may have queued a retry for later: arm the wake. New work wakes the queue by itself.
      if (effect.outcome.status === 'failed') pump();
    } catch (error) {
      log.error({ err: error, group: slot.folder, event: event.type }, 'failed to handle agent event');
    }
  }

  function handleExit(slot: Slot, exit: AgentExit, failure?: { reason: string; isRetryable: boolean }): void {
    slots.delete(slot.groupId);
    deps.store.runs.end(slot.runId, `${exit.status}: ${exit.reason}`, deps.now());
    log.info({ group: slot.folder, runId: slot.runId, ...exit }, 'agent exited');
    if (slot.open.size > 0) deps.onBusy?.(slot.chat, false);
    const crash = exit.status === 'crashed' ? `the agent stopped unexpectedly: ${exit.reason}` : null;
    const error = failure?.reason ?? crash ?? 'the agent exited before answering';
    const isRetryable = failure?.isRetryable ?? !(exit.status === 'crashed' && exit.isRetryable === false);
    for (const item of [...slot.open.values()]) {
      if (!releaseIfCutShort(slot, item)) work.settle([item], { status: 'failed', error, isRetryable });
    }
    slot.open.clear();
    if (isShuttingDown) return;
    drainWaiting();
    pump();
  }

  async function startRun(groupId: number): Promise<void> {
    const group = deps.store.groups.byId(groupId);
    const runId = deps.newId();
    const first = group && work.claim(groupId, runId);
    if (!group || !first) return;
    const isTask = first.kind === 'task';
    const slot: Slot = {
      groupId,
      folder: group.folder,
      runId,
      chat: first.chat,
      state: 'starting',
      session: null,
      open: new Map([[first.batchId, first]]),
      lastActiveAt: deps.now(),
      hasMoreWork: false,
      isIsolated: first.isIsolated,
      isStopWhenIdle: isTask,
    };
    slots.set(groupId, slot);
    deps.store.runs.start(runId, groupId, deps.now());
    // A pre-check may find nothing to do: no typing indicator until it says the model is needed.
    if (!first.preCheck) deps.onBusy?.(first.chat, true);
    log.info({ group: group.folder, runId, size: first.size, isTask }, 'starting agent');
    let session: AgentSession;
    try {
      session = await deps.runner.start({
        runId,
        group,
        chat: first.chat,
        prompt: first.prompt,
        batchId: first.batchId,
        preCheck: first.preCheck ?? undefined,
        sessionId: first.isIsolated ? null : deps.store.groups.session(groupId),
        onEvent: (event) => handleEvent(slot, event),
      });
    } catch (error) {
      log.error({ err: error, group: group.folder }, 'agent failed to start');
      const reason = (error as Error).message;
      const isRetryable = !(error instanceof AgentStartError && !error.isRetryable);
      const failure = { reason: `could not start the agent: ${reason}`, isRetryable };
      handleExit(slot, { status: 'crashed', reason: `could not start: ${reason}` }, failure);
      return;
    }
    slot.session = session;
    if (slot.state === 'starting') {
      slot.state = slot.open.size > 0 ? 'busy' : 'idle';
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
    handOver(slot);
  }

  // Hands waiting work to the running agent while it may join (same chat, neither side isolated). False when
  // work waits that this agent cannot take.
  function offerFollowUps(slot: Slot): boolean {
    for (;;) {
      if (!slot.session || (slot.state !== 'busy' && slot.state !== 'idle')) return false;
      const next = work.next(slot.groupId);
      if (!next) return true;
      if (next.isIsolated || slot.isIsolated || !isSameChat(next.chat, slot.chat)) return false;
      const item = work.claim(slot.groupId, slot.runId, slot.chat);
      if (!item) return true;
      if (!slot.session.sendFollowUp(item.prompt, item.batchId, { preCheck: item.preCheck ?? undefined })) {
        work.release(item); // the agent is closing: the next run takes it
        return false;
      }
      slot.open.set(item.batchId, item);
      if (slot.state === 'idle' && !item.preCheck) deps.onBusy?.(slot.chat, true);
      slot.state = 'busy';
      if (item.kind === 'messages') slot.isStopWhenIdle = false;
      slot.lastActiveAt = deps.now();
      log.debug(
        { group: slot.folder, batchId: item.batchId, kind: item.kind },
        'work handed to running agent',
      );
    }
  }

  /** Lets waiting groups in while there is room, and stops the least recently active idle agents for the rest. */
  function drainWaiting(): void {
    if (isShuttingDown || isHeld()) return;
    while (waiting.length > 0 && slots.size < deps.maxConcurrent) {
      const groupId = waiting.shift() as number;
      if (!slots.has(groupId)) void startRun(groupId);
    }
    const live = [...slots.values()];
    const idle = live.filter((slot) => slot.state === 'idle').sort((a, b) => a.lastActiveAt - b.lastActiveAt);
    const needed = waiting.length - live.filter((slot) => slot.state === 'stopping').length;
    for (const slot of idle.slice(0, Math.max(0, needed))) {
      if (!slot.session) continue;
      log.info({ group: slot.folder }, 'stopping idle agent to make room');
      stopSlot(slot, 'evicted to make room for another group');
    }
  }

  function enqueue(groupId: number): void {
    if (isShuttingDown || isHeld()) return;
    const slot = slots.get(groupId);
    if (slot && !offerFollowUps(slot)) {
      slot.hasMoreWork = true;
      // An idle agent steps aside for work it cannot take: another chat of this group, or an isolated task.
      if (slot.state === 'idle' && slot.session) stopSlot(slot, 'other work of this group is waiting');
    }
    if (slot) return;
    if (slots.size < deps.maxConcurrent) {
      void startRun(groupId);
      return;
    }
    if (!waiting.includes(groupId)) waiting.push(groupId);
    drainWaiting();
  }

  return {
    enqueue,
    /** After a (re)start: what a dead host left claimed is recovered, and all due work is queued. */
    resume(): void {
      work.recover();
      pump();
    },
    /**
     * Brings the live runs in line with the owner's decisions (admin chat, or the CLI's signal): under an emergency
     * stop every agent stops and nothing starts; else the agent of a removed group stops (by folder too: SQLite may
     * reuse a removed group's id). A lifted stop lets held work go on; task runs it cut short end as interrupted.
     */
    sync(): void {
      const isStopped = isHeld();
      for (const slot of slots.values()) {
        if (slot.state === 'stopping') continue;
        if (!isStopped && deps.store.groups.byId(slot.groupId)?.folder === slot.folder) continue;
        log.info({ group: slot.folder, isStopped }, 'stopping an agent the owner stopped or removed');
        stopSlot(slot, isStopped ? 'the owner pulled the emergency stop' : 'the group was removed');
      }
      if (isStopped) waiting.length = 0;
      else if (wasHeld) work.recover();
      wasHeld = isStopped;
      pump();
    },
    /** The owner's stop button: the group's agent stops now and the turn under way ends unanswered. */
    stopTurn(groupId: number): boolean {
      const slot = slots.get(groupId);
      if (!slot?.session || slot.state === 'stopping') return false;
      log.info({ group: slot.folder }, 'the owner stopped the agent');
      slot.isStoppedByOwner = true;
      stopSlot(slot, 'stopped by the owner');
      return true;
    },
    /** Who runs and who waits, for the bench and tests. */
    snapshot() {
      const running = [...slots.values()].map(({ groupId, folder, state }) => ({ groupId, folder, state }));
      return { running, waiting: [...waiting] };
    },
    /** Stops taking work and stops every agent; unfinished work stays in the store for the next start. */
    async shutdown(): Promise<void> {
      isShuttingDown = true;
      if (wakeTimer) clearTimeout(wakeTimer);
      // stop() resolves once the agent has exited.
      await Promise.all([...slots.values()].map((slot) => slot.session?.stop('Warren is shutting down')));
    },
  };
}

export type GroupQueue = ReturnType<typeof createGroupQueue>;
