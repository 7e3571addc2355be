// What an agent's event means for its run, as data: the group queue applies it (it alone changes a run's state).
import type { ChatAddress } from '../store/records.js';
import type { NewOutboxItem } from '../store/store.js';
import type { AgentEvent } from '../types.js';
import type { Work, WorkOutcome } from './work.js';

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
    const outcome: WorkOutcome = { status: 'failed', error, isRetryable: event.isRetryable !== false };
    return { type: 'close', works, outcome, ...session, isKeptWarm: false };
  }
  // The model answered in the group's own conversation: the person may reply, so the agent stays warm.
  const isKeptWarm = !run.isIsolated && works.length > 0;
  const outcome: WorkOutcome = { status: 'succeeded', result: event.result };
  return { type: 'close', works, outcome, reply: { key, chat: run.chat }, ...session, isKeptWarm };
}
