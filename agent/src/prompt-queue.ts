// Prompts waiting for the agent: an async stream the model loop pulls from, and which of them are still unanswered.
import { randomUUID } from 'node:crypto';

export interface QueuedPrompt {
  /** Our id for this prompt in the model loop (the SDK echoes it back on the result that answered it). */
  uuid: string;
  batchId: string;
  text: string;
}

export interface PromptQueue {
  /** Adds a prompt. Returns false (and drops it) once the queue is closed. */
  push(batchId: string, text: string): boolean;
  /**
   * A stream of prompts for one model loop, in push order; it waits for more until the queue closes.
   * Starting a new stream ends the previous one.
   */
  stream(): AsyncIterable<QueuedPrompt>;
  /**
   * A turn ended: returns the batchIds it answered and forgets them. answeredUuids lists the prompts the loop
   * says the turn consumed; null (loop cannot tell) means every prompt the stream has handed out so far.
   */
  settle(answeredUuids: readonly string[] | null): string[];
  /** Puts handed-out but unanswered prompts back at the front, for a fresh loop to take again. */
  requeueUnanswered(): void;
  /** True while any prompt is waiting or handed out but unanswered. */
  hasWork(): boolean;
  /** Every prompt not yet answered, handed out first, in order. */
  unanswered(): QueuedPrompt[];
  /** Ends the stream (also a waiting one) and refuses new prompts. Safe to call more than once. */
  close(): void;
  readonly isClosed: boolean;
}

export function createPromptQueue(): PromptQueue {
  let waiting: QueuedPrompt[] = [];
  let handedOut: QueuedPrompt[] = [];
  let isClosed = false;
  let streamGeneration = 0;
  let wake: (() => void) | null = null;

  const notify = () => {
    const resolve = wake;
    wake = null;
    resolve?.();
  };

  async function* streamFor(generation: number): AsyncGenerator<QueuedPrompt> {
    while (true) {
      if (isClosed || generation !== streamGeneration) return;
      const next = waiting.shift();
      if (next) {
        handedOut.push(next);
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  }

  return {
    push(batchId, text) {
      if (isClosed) return false;
      waiting.push({ uuid: randomUUID(), batchId, text });
      notify();
      return true;
    },
    stream() {
      streamGeneration += 1;
      notify();
      return streamFor(streamGeneration);
    },
    settle(answeredUuids) {
      const isAnswered = (prompt: QueuedPrompt) =>
        answeredUuids === null || answeredUuids.includes(prompt.uuid);
      const answered = handedOut.filter(isAnswered);
      handedOut = handedOut.filter((prompt) => !isAnswered(prompt));
      return answered.map((prompt) => prompt.batchId);
    },
    requeueUnanswered() {
      waiting = [...handedOut, ...waiting];
      handedOut = [];
      notify();
    },
    hasWork() {
      return waiting.length > 0 || handedOut.length > 0;
    },
    unanswered() {
      return [...handedOut, ...waiting];
    },
    close() {
      isClosed = true;
      notify();
    },
    get isClosed() {
      return isClosed;
    },
  };
}
