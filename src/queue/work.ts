// Work: the one way the group queue claims, hands back, retries and settles what an agent does, chat message
// batches and scheduled task runs alike. Every claim and every settlement is one transaction in the store, and a
// turn's reply is queued in the same transaction as its work is marked done: nothing lost, nothing repeated.
import { backoffMs } from '../backoff.js';
import type { Logger } from '../log.js';
import { type ChatAddress, isSameChat } from '../store/records.js';
import type { NewOutboxItem, Store, Task, TaskRun } from '../store/store.js';
import type { AgentEvent, PreCheck } from '../types.js';
import { formatInstant, formatPrompt, formatTaskPrompt } from './prompt.js';

/** One piece of work handed to an agent, known to the agent by its batch id. */
export interface Work {
  batchId: string;
  kind: 'messages' | 'task';
  chat: ChatAddress;
  prompt: string;
  preCheck: PreCheck | null;
  /** Needs a fresh session: it never joins a running agent, and its session is never stored as the group's. */
  isIsolated: boolean;
  size: number;
}

export type WorkOutcome =
  | { status: 'succeeded'; result: string | null }
  | { status: 'skipped'; detail: string | null }
  | { status: 'failed'; error: string; isRetryable: boolean; isTold?: boolean };

/** A recurring task whose runs fail this many times in a row (after retries) is paused, and the chat is told. */
export const PAUSE_AFTER_FAILURES = 3;
/** Message retries wait at most this long. */
const MAX_MESSAGE_BACKOFF_MS = 5 * 60_000;
/** What task_runs keeps of a result; the whole reply went to the chat. */
const RESULT_SUMMARY_CHARS = 500;

export interface WorkDeps {
  store: Store;
  log: Logger;
  now(): number;
  newId(): string;
  /** Untriggered messages a batch may carry before its trigger. */
  contextLimit: number;
  timezone: string;
  /** Attempts per message batch and per task slot (the first run plus retries). */
  maxAttempts: number;
  retryBaseMs: number;
  /** Something was queued in the outbox. Must not throw. */
  onOutbox(): void;
  /** A task run ended (its task may be due again, a retry was queued): the scheduler looks again. Must not throw. */
  onTaskChange(): void;
}

type Tokens = { inputTokens: number; outputTokens: number } | undefined;

export function createWork(deps: WorkDeps) {
  const { store, log } = deps;
  const notice = (chat: ChatAddress, key: string, text: string, kind: 'notice' | 'reply' = 'notice') => {
    return { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind, now: deps.now() };
  };
  const label = (task: Task) => `“${task.name}” (${task.id})`;
  /** A once-task ends with its run, whatever the outcome. */
  const isOnceLive = (task: Task) => task.schedule.kind === 'once' && task.status === 'active';

  /** The group's due task run that waited longest, started for agentRunId. */
  function claimTask(groupId: number, agentRunId: string, onlyFor?: ChatAddress): Work | null {
    const batchId = deps.newId();
    for (;;) {
      const queued = store.tasks.nextQueued(groupId, deps.now());
      if (!queued) return null;
      const { run, task } = queued;
      const isIsolated = task.contextMode === 'isolated';
      if (onlyFor && (isIsolated || !isSameChat(task.chat, onlyFor))) return null;
      if (!store.tasks.start(run.id, batchId, agentRunId, deps.now())) continue; // cancelled meanwhile
      log.info({ task: task.id, group: task.groupFolder, run: run.id, agentRunId }, 'task run started');
      const prompt = formatTaskPrompt(task, run);
      return { batchId, kind: 'task', chat: task.chat, prompt, preCheck: task.preCheck, isIsolated, size: 1 };
    }
  }

  /** A failed message batch: again after backoff, or given up with word to the chat. */
  function failMessages(work: Work, failed: Extract<WorkOutcome, { status: 'failed' }>): void {
    const { error: reason, isRetryable, isTold } = failed;
    const failure = store.messages.failBatch(work.batchId, reason, {
      maxAttempts: isRetryable ? deps.maxAttempts : 0,
      backoffMs: (attempt) => backoffMs(attempt, { baseMs: deps.retryBaseMs, maxMs: MAX_MESSAGE_BACKOFF_MS }),
      now: deps.now(),
    });
    if (!failure || (isTold && failure.outcome !== 'retry')) return; // isTold: the chat heard why (a spent budget)
    let text: string;
    if (failure.outcome === 'retry') {
      log.warn({ batchId: work.batchId, attempt: failure.attempt, reason }, 'agent run failed; will retry');
      const seconds = Math.max(1, Math.round((failure.retryAt - deps.now()) / 1000));
      text =
        `⚠️ Something went wrong while answering (${reason}). Trying again in ${seconds}s ` +
        `(attempt ${failure.attempt + 1} of ${deps.maxAttempts}).`;
    } else {
      log.error({ batchId: work.batchId, attempts: failure.attempts, reason }, 'giving up on messages');
      text =
        failure.attempts > 1
          ? `❌ Sorry, I could not answer after ${failure.attempts} attempts (${reason}). Please try again later.`
          : `❌ Sorry, I could not answer (${reason}).`;
    }
    store.outbox.enqueue(notice(failure.chat, `notice:${work.batchId}:${failure.outcome}`, text), deps.now());
  }

  /** A failed task run: its slot again after a longer backoff, or reported; repeated failures pause the task. */
  function failTask(task: Task, run: TaskRun, error: string, isRetryable: boolean, tokens: Tokens): void {
    const now = deps.now();
    if (isRetryable && run.attempt < deps.maxAttempts && task.status === 'active') {
      // Task retries wait longer than message retries: 30× the base delay, doubling (1 min, 2 min by default).
      const retryAt = now + backoffMs(run.attempt, { baseMs: deps.retryBaseMs * 30, maxMs: 30 * 60_000 });
      store.tasks.finishRun(run.id, { tokens, status: 'failed', error }, null, now);
      store.tasks.queueRetry(run, retryAt, now);
      log.warn({ task: task.id, attempt: run.attempt, retryAt, error }, 'task run failed; will retry');
      return;
    }
    const failures = task.consecutiveFailures + 1;
    const isPausing =
      task.status === 'active' && task.schedule.kind !== 'once' && failures >= PAUSE_AFTER_FAILURES;
    const attempts = run.attempt > 1 ? ` after ${run.attempt} attempts` : '';
    const next = task.status === 'active' ? task.nextRunAt : null;
    const text = isPausing
      ? `⏸️ Scheduled task ${label(task)} failed ${failures} times in a row, so I paused it. Last error: ${error}. ` +
        `Ask me to resume it, or run \`warren tasks resume ${task.id}\`.`
      : `⚠️ Scheduled task ${label(task)} failed${attempts}: ${error}.` +
        (next === null ? '' : ` Next run: ${formatInstant(next, task.schedule.timezone)}.`);
    const told = task.status === 'cancelled' ? null : notice(task.chat, `task-run:${run.id}:failed`, text);
    store.tasks.finishRun(run.id, { tokens, status: 'failed', error }, told, now);
    const ending = isPausing
      ? { status: 'paused' as const, statusReason: `paused after ${failures} failed runs: ${error}` }
      : isOnceLive(task)
        ? { status: 'done' as const, statusReason: error }
        : {};
    store.tasks.update(task.id, { consecutiveFailures: failures, ...ending }, now);
    log.warn({ task: task.id, attempts: run.attempt, failures, isPausing, error }, 'task run failed');
  }

  // A task's own bookkeeping failing (say, a timezone gone from the system) must not undo the turn's reply and its
  // messages: it runs in a savepoint of its own. The run stays open and ends as interrupted at the next start.
  function settleTask(work: Work, outcome: WorkOutcome): void {
    const run = store.tasks.runByBatch(work.batchId);
    const task = run?.status === 'running' ? store.tasks.byId(run.taskId) : null;
    if (!run || !task) return;
    const { agentRunId, startedAt } = run;
    const now = deps.now();
    const tokens =
      agentRunId && startedAt !== null ? store.usage.ofRun(agentRunId, startedAt, now) : undefined;
    if (outcome.status === 'failed') {
      failTask(task, run, outcome.error, outcome.isRetryable, tokens);
      return;
    }
    const result =
      outcome.status === 'succeeded'
        ? (outcome.result?.slice(0, RESULT_SUMMARY_CHARS) ?? '(no reply)')
        : (outcome.detail ?? 'the pre-check found nothing to do');
    store.tasks.finishRun(run.id, { tokens, status: outcome.status, result }, null, now);
    const status = isOnceLive(task) ? 'done' : undefined;
    store.tasks.update(task.id, { consecutiveFailures: 0, status }, now);
    log.info(
      { task: task.id, run: run.id, status: outcome.status, ms: now - (startedAt ?? now), ...tokens },
      'task run finished',
    );
  }

  return {
    /** Groups with work due now (messages first by age, then task runs), and when the next retry comes due. */
    due(): { groupIds: number[]; nextDueAt: number | null } {
      const messages = store.messages.work(deps.now());
      const groupIds = [...new Set([...messages.dueGroupIds, ...store.tasks.dueGroupIds(deps.now())])];
      // Message and task retries come due through this one wake; the scheduler only claims new slots.
      const times = [messages.nextDueAt, store.tasks.nextDueAt(deps.now())].filter((at) => at !== null);
      return { groupIds, nextDueAt: times.length > 0 ? Math.min(...times) : null };
    },

    /** What the group's next claim would be for: chat messages first (people are waiting), then a task run. */
    next(groupId: number): { chat: ChatAddress; isIsolated: boolean } | null {
      const chat = store.messages.nextChat(groupId, deps.now());
      if (chat) return { chat, isIsolated: false };
      const queued = store.tasks.nextQueued(groupId, deps.now());
      return queued ? { chat: queued.task.chat, isIsolated: queued.task.contextMode === 'isolated' } : null;
    },

    // Claims the group's next work for agent run agentRunId. With onlyFor (a running agent's chat), only work that
    // may join that agent: that chat's messages, or a task run of that chat that is not isolated.
    claim(groupId: number, agentRunId: string, onlyFor?: ChatAddress): Work | null {
      const chat = store.messages.nextChat(groupId, deps.now());
      if (!chat) return claimTask(groupId, agentRunId, onlyFor);
      if (onlyFor && !isSameChat(chat, onlyFor)) return null;
      const batchId = deps.newId();
      const batch = store.messages.claimBatch(groupId, batchId, deps.contextLimit, deps.now());
      if (!batch) return null;
      const prompt = formatPrompt(batch.messages, deps.timezone);
      const size = batch.messages.length;
      return { batchId, kind: 'messages', chat: batch.chat, prompt, preCheck: null, isIsolated: false, size };
    },

    /** The agent could not take the work after all: it waits again, the attempt not counted. */
    release(work: Work): void {
      if (work.kind === 'messages') store.messages.unclaim(work.batchId);
      else store.tasks.release(work.batchId);
    },

    /** Settles a turn's work: done with its one reply (if any), or each piece retried or reported. Never throws. */
    settle(works: Work[], outcome: WorkOutcome, reply?: { key: string; chat: ChatAddress }): void {
      try {
        const result = outcome.status === 'succeeded' ? outcome.result : null;
        const item = reply && result?.trim() ? notice(reply.chat, reply.key, result, 'reply') : null;
        store.transaction(() => {
          const messageIds = works.filter((work) => work.kind === 'messages').map((work) => work.batchId);
          if (outcome.status !== 'failed') store.messages.completeBatches(messageIds, item);
          for (const work of works) {
            if (work.kind === 'messages') {
              if (outcome.status === 'failed') failMessages(work, outcome);
              continue;
            }
            try {
              store.transaction(() => settleTask(work, outcome)); // its own savepoint: see settleTask
            } catch (error) {
              log.error({ err: error, batchId: work.batchId }, 'failed to settle a task run');
            }
          }
        });
      } catch (error) {
        log.error({ err: error, batches: works.map((work) => work.batchId) }, 'failed to settle work');
      }
      deps.onOutbox();
      if (works.some((work) => work.kind === 'task')) deps.onTaskChange();
    },

    /** Queues what an agent sends on its own (a message, a file, a notice): idempotent by key. */
    send(item: NewOutboxItem): void {
      store.outbox.enqueue(item, deps.now());
      deps.onOutbox();
    },

    // After a (re)start: processing messages are pending again; running task runs end as interrupted (never
    // repeated by themselves), and their chats are told.
    recover(): void {
      const now = deps.now();
      const released = store.messages.releaseProcessing();
      const closed = store.runs.closeAll('host restarted', now);
      const reason = 'Warren stopped while this run was under way';
      const interrupted = store.tasks.interruptRunning(reason, now);
      for (const run of interrupted) {
        const task = store.tasks.byId(run.taskId);
        if (!task || task.status === 'cancelled') continue;
        store.transaction(() => {
          const text =
            `⚠️ Scheduled task ${label(task)} was interrupted: ${reason}. It is not repeated by itself; ` +
            `\`warren tasks run-now ${task.id}\` runs it again.`;
          store.outbox.enqueue(notice(task.chat, `task-run:${run.id}:interrupted`, text), now);
          if (isOnceLive(task))
            store.tasks.update(task.id, { status: 'done', statusReason: 'interrupted' }, now);
        });
      }
      if (released + closed + interrupted.length > 0) {
        const ids = interrupted.map((run) => run.id);
        log.warn({ released, closed, interrupted: ids }, 'resumed work left by the previous run');
        deps.onOutbox();
      }
    },
  };
}

export type WorkQueue = ReturnType<typeof createWork>;

// What an agent's event means for its run, as data: the group queue applies it (it alone changes a run's state).
export type EventEffect =
  | { type: 'none' }
  | { type: 'busy' } // a pre-check said the model is needed: the typing indicator goes on
  | { type: 'send'; item: NewOutboxItem } // a message, a file or a notice the agent sends on its own
  | ({ type: 'close'; works: Work[]; outcome: WorkOutcome; isKeptWarm: boolean } & TurnEnd);
/** reply: the turn's one answer; sessionId: to keep as the group's. isKeptWarm: the person may answer back. */
type TurnEnd = { reply?: { key: string; chat: ChatAddress }; sessionId?: string };

export type RunView = { runId: string; chat: ChatAddress; open: Map<string, Work>; isIsolated: boolean };

export function effectOf(event: AgentEvent, run: RunView): EventEffect {
  // Keyed by the event: a repeated event cannot send its message or the turn's reply twice.
  const key = `${run.runId}:${event.id}`;
  if (event.type === 'agent-message' || event.type === 'agent-file' || event.type === 'agent-notice') {
    const chat = event.type === 'agent-notice' ? run.chat : event.chat;
    const isFile = event.type === 'agent-file';
    return {
      type: 'send',
      item: {
        idempotencyKey: key,
        channel: chat.channel,
        chatId: chat.chatId,
        text: isFile ? event.caption : event.text,
        kind: event.type === 'agent-notice' ? 'notice' : 'reply',
        filePath: isFile ? event.path : null,
      },
    };
  }
  if (event.type === 'pre-check') {
    const item = run.open.get(event.batchId);
    if (item?.kind !== 'task') return { type: 'none' };
    if (event.outcome === 'run') return { type: 'busy' };
    // No turn-end follows a skipped or failed check: the run ends here, without any model call.
    const error = `pre-check failed: ${event.detail ?? 'unknown error'}`;
    const outcome: WorkOutcome =
      event.outcome === 'skip'
        ? { status: 'skipped', detail: event.detail ?? null }
        : { status: 'failed', error, isRetryable: true };
    return { type: 'close', works: [item], outcome, isKeptWarm: false };
  }
  const works = event.batchIds.flatMap((batchId) => run.open.get(batchId) ?? []);
  // An isolated run's session is its own: the group's stored conversation stays as it was.
  const session = event.sessionId && !run.isIsolated ? { sessionId: event.sessionId } : {};
  if (event.isError) {
    // Each piece is retried or reported on its own; no reply goes out for the turn.
    const error = event.error ?? 'the agent reported an error';
    const { isRetryable = true, isTold } = event;
    const outcome: WorkOutcome = { status: 'failed', error, isRetryable, isTold };
    return { type: 'close', works, outcome, ...session, isKeptWarm: false };
  }
  // The model answered in the group's own conversation: the person may reply, so the agent stays warm.
  const isKeptWarm = !run.isIsolated && works.length > 0;
  const outcome: WorkOutcome = { status: 'succeeded', result: event.result };
  return { type: 'close', works, outcome, reply: { key, chat: run.chat }, ...session, isKeptWarm };
}
