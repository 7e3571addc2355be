// Prompts waiting for the agent: an async stream the model loop pulls from, and which of them are still unanswered.
import { randomUUID } from 'node:crypto';

/** uuid: our id for the prompt in the model loop (the SDK echoes it back on the result that answered it). */
export type QueuedPrompt = { uuid: string; batchId: string; text: string };

export function createPromptQueue() {
  let waiting: QueuedPrompt[] = [];
  let handedOut: QueuedPrompt[] = [];
  let isClosed = false;
  let generation = 0;
  let wake = () => {};

  async function* streamFor(mine: number): AsyncGenerator<QueuedPrompt> {
    while (!isClosed && mine === generation) {
      const next = waiting.shift();
      if (next) {
        handedOut.push(next);
        yield next;
      } else {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
  }

  return {
    /** Adds a prompt. Returns false (and drops it) once the queue is closed. */
    push(batchId: string, text: string): boolean {
      if (isClosed) return false;
      waiting.push({ uuid: randomUUID(), batchId, text });
      wake();
      return true;
    },
    /** A stream of prompts in push order that waits for more until close(). A new stream ends the previous one. */
    stream(): AsyncIterable<QueuedPrompt> {
      generation += 1;
      wake();
      return streamFor(generation);
    },
    /**
     * A turn ended: returns the batchIds it answered and forgets them. answeredUuids lists the prompts the loop
     * says the turn consumed; null (loop cannot tell) means every prompt the stream has handed out so far.
     */
    settle(answeredUuids: readonly string[] | null): string[] {
      const isAnswered = (prompt: QueuedPrompt) => answeredUuids?.includes(prompt.uuid) ?? true;
      const answered = handedOut.filter(isAnswered);
      handedOut = handedOut.filter((prompt) => !isAnswered(prompt));
      return answered.map((prompt) => prompt.batchId);
    },
    /** Puts handed-out but unanswered prompts back at the front, for a fresh loop to take again. */
    requeueUnanswered(): void {
      waiting = [...handedOut, ...waiting];
      handedOut = [];
      wake();
    },
    hasWork: (): boolean => waiting.length > 0 || handedOut.length > 0,
    /** Every prompt not yet answered, handed out first, in order. */
    unanswered: (): QueuedPrompt[] => [...handedOut, ...waiting],
    /** Ends the stream (also a waiting one) and refuses new prompts. Safe to call more than once. */
    close(): void {
      isClosed = true;
      wake();
    },
  };
}
