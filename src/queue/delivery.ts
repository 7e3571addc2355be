// Delivery: drains the durable outbox into channels, in order per chat, with retries and backoff.
import { rmSync } from 'node:fs';
import { backoffMs } from '../backoff.js';
import type { Logger } from '../log.js';
import type { OutboxItem, Store } from '../store/store.js';
import type { Channel, SendResult } from '../types.js';

export interface DeliveryDeps {
  store: Store;
  channels: ReadonlyMap<string, Channel>;
  log: Logger;
  now(): number;
  /** How long a reply is retried before it is given up (marked failed, shown by `warren status`, owner told). */
  giveUpMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A reply was given up. Must not throw. */
  onGiveUp?(item: OutboxItem, reason: string): void;
}

const BATCH_SIZE = 50;
const failed = (reason: string, isRetryable: boolean): SendResult => ({
  status: 'failed',
  reason,
  isRetryable,
});

/** A file item's path is a host-only copy made for this send (ipc.ts): once the item is settled it goes. */
function forgetStagedFile(item: OutboxItem): void {
  if (item.filePath !== null) rmSync(item.filePath, { force: true });
}

export function createDelivery(deps: DeliveryDeps) {
  const log = deps.log.child({ module: 'delivery' });
  const { outbox } = deps.store;
  let timer: NodeJS.Timeout | null = null;
  let pass: Promise<void> | null = null;
  let isAgainNeeded = false;
  let isStopped = true;
  /** Enabled channels not connected (at start, or dropped): their items wait, burning no tries, until they are. */
  const waiting = new Set(deps.channels.keys());

  async function sendOne(item: OutboxItem): Promise<SendResult> {
    const { chatId, text, idempotencyKey, filePath } = item;
    const thread = item.threadId === null ? {} : { threadId: item.threadId };
    const channel = deps.channels.get(item.channel);
    if (!channel) return failed(`channel '${item.channel}' is not enabled`, true);
    try {
      if (filePath === null) return await channel.send({ chatId, text, idempotencyKey, ...thread });
      if (!channel.sendFile) return failed(`channel '${item.channel}' cannot send files`, false);
      return await channel.sendFile(chatId, filePath, text || undefined);
    } catch (error) {
      // Adapters should return 'failed'; a throw is a bug in the adapter, but it must not lose the message.
      return failed(`adapter threw: ${(error as Error).message}`, true);
    }
  }

  async function runPass(): Promise<void> {
    for (;;) {
      const items = outbox.claimDue(deps.now(), BATCH_SIZE, [...waiting]);
      if (items.length === 0) break;
      for (const item of items) {
        if (isStopped) {
          // Shutting down: what was claimed but not yet sent goes back untouched.
          outbox.markRetry(item.id, item.lastError ?? 'not sent before shutdown', item.nextAttemptAt);
          continue;
        }
        const result = await sendOne(item);
        if (result.status === 'sent') {
          outbox.markSent(item.id, deps.now());
          forgetStagedFile(item);
          log.debug({ id: item.id, channel: item.channel }, 'delivered');
          continue;
        }
        const fields = { id: item.id, channel: item.channel, attempts: item.attempts, reason: result.reason };
        if (result.isRetryable && deps.now() - item.createdAt < deps.giveUpMs) {
          const delay = backoffMs(item.attempts, { baseMs: deps.baseDelayMs, maxMs: deps.maxDelayMs });
          outbox.markRetry(item.id, result.reason, deps.now() + delay);
          log.warn({ ...fields, retryInMs: delay }, 'delivery failed; will retry');
        } else {
          outbox.markFailed(item.id, result.reason);
          forgetStagedFile(item);
          log.error(fields, 'delivery failed for good');
          deps.onGiveUp?.(item, result.reason);
        }
      }
      if (isStopped) break;
    }
  }

  /** Arms one timer for the earliest future attempt: delivery never polls. */
  function arm(): void {
    if (timer) clearTimeout(timer);
    const due = isStopped ? null : outbox.nextDueAt([...waiting]);
    timer = due === null ? null : setTimeout(kick, Math.max(0, due - deps.now()));
  }

  function kick(): void {
    if (isStopped) return;
    if (pass) {
      isAgainNeeded = true;
      return;
    }
    pass = runPass()
      .catch((error: unknown) => log.error({ err: error }, 'delivery pass failed'))
      .finally(() => {
        pass = null;
        if (isAgainNeeded && !isStopped) {
          isAgainNeeded = false;
          kick();
        } else arm();
      });
  }

  return {
    /** Starts delivering; items a previous host left mid-send are tried again. */
    start(): void {
      isStopped = false;
      const released = outbox.releaseSending();
      if (released > 0) log.warn({ released }, 'retrying sends interrupted by the last shutdown');
      kick();
    },
    /** New items were queued. */
    kick,
    /** A channel connected (its waiting items go out now, in order) or dropped (they wait for it). */
    setConnected(channel: string, isConnected: boolean): void {
      if (!deps.channels.has(channel) || isConnected !== waiting.has(channel)) return;
      if (isConnected) waiting.delete(channel);
      else waiting.add(channel);
      kick();
    },
    /** Stops; a send under way finishes, everything else stays pending for the next start. */
    async stop(): Promise<void> {
      isStopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await pass;
    },
    /** Resolves when no pass is running (tests). */
    async idle(): Promise<void> {
      while (pass) await pass;
    },
  };
}

export type Delivery = ReturnType<typeof createDelivery>;
