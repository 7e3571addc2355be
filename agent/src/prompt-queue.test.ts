import { describe, expect, it } from 'vitest';
import { createPromptQueue, type QueuedPrompt } from './prompt-queue.js';

async function take(iterator: AsyncIterator<QueuedPrompt>): Promise<QueuedPrompt> {
  const next = await iterator.next();
  if (next.done) throw new Error('stream ended');
  return next.value;
}

describe('prompt queue', () => {
  it('streams prompts in push order and waits for follow-ups', async () => {
    const queue = createPromptQueue();
    const stream = queue.stream()[Symbol.asyncIterator]();
    queue.push('b1', 'one');
    expect((await take(stream)).batchId).toBe('b1');
    const pending = take(stream);
    queue.push('b2', 'two');
    expect((await pending).batchId).toBe('b2');
  });

  it('settles only the prompts a turn says it consumed', async () => {
    const queue = createPromptQueue();
    const stream = queue.stream()[Symbol.asyncIterator]();
    queue.push('b1', 'one');
    queue.push('b2', 'two');
    const first = await take(stream);
    await take(stream);
    expect(queue.settle([first.uuid])).toEqual(['b1']);
    expect(queue.unanswered().map((prompt) => prompt.batchId)).toEqual(['b2']);
    expect(queue.hasWork()).toBe(true);
  });

  it('settles every handed-out prompt when the loop cannot tell', async () => {
    const queue = createPromptQueue();
    const stream = queue.stream()[Symbol.asyncIterator]();
    queue.push('b1', 'one');
    queue.push('b2', 'two');
    queue.push('b3', 'three');
    await take(stream);
    await take(stream);
    expect(queue.settle(null)).toEqual(['b1', 'b2']);
    expect(queue.unanswered().map((prompt) => prompt.batchId)).toEqual(['b3']);
  });

  it('gives unanswered prompts again, first, to a new stream', async () => {
    const queue = createPromptQueue();
    const first = queue.stream()[Symbol.asyncIterator]();
    queue.push('b1', 'one');
    const handedOut = await take(first);
    queue.push('b2', 'two');
    queue.requeueUnanswered();
    const second = queue.stream()[Symbol.asyncIterator]();
    expect(await take(second)).toEqual(handedOut);
    expect((await take(second)).batchId).toBe('b2');
    expect((await first.next()).done).toBe(true);
  });

  it('close ends a waiting stream and refuses new prompts', async () => {
    const queue = createPromptQueue();
    const stream = queue.stream()[Symbol.asyncIterator]();
    const pending = stream.next();
    queue.close();
    expect((await pending).done).toBe(true);
    expect(queue.push('b1', 'one')).toBe(false);
    expect(queue.hasWork()).toBe(false);
  });
});
