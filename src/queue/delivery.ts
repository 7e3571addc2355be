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
  /** Tries per item before it is marked failed (and shown by `warren status`). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

const BATCH_SIZE = 50;

/** A file item's path is a host-only copy made for this send (ipc.ts): once the item is settled it goes. */
function forgetStagedFile(item: OutboxItem): void {
  if (item.filePath !== null) rmSync(item.filePath, { force: true });
}

export function createDelivery(deps: DeliveryDeps) {
  const log = deps.log.child({ module: 'delivery' });
  let timer: NodeJS.Timeout | null = null;
  let pass: Promise<void> | null = null;
  let isAgainNeeded = false;
  let isStopped = true;

  async function sendOne(item: OutboxItem): Promise<SendResult> {
    const channel = deps.channels.get(item.channel);
    if (!channel)
      return { status: 'failed', reason: `channel '${item.channel}' is not enabled`, isRetryable: true };
    try {
      if (item.filePath !== null) {
        if (!channel.sendFile) {
          return {
            status: 'failed',
            reason: `channel '${item.channel}' cannot send files`,
            isRetryable: false,
          };
        }
        return await channel.sendFile(item.chatId, item.filePath, item.text || undefined);
      }
      return await channel.send({
        chatId: item.chatId,
        text: item.text,
        idempotencyKey: item.idempotencyKey,
      });
    } catch (error) {
      // Adapters should return 'failed'; a throw is a bug in the adapter, but it must not lose the message.
      return { status: 'failed', reason: `adapter threw: ${(error as Error).message}`, isRetryable: true };
    }
  }

  async function runPass(): Promise<void> {
    for (;;) {
      const items = deps.store.outbox.claimDue(deps.now(), BATCH_SIZE);
      if (items.length === 0) break;
      for (const item of items) {
        if (isStopped) {
          // Shutting down: what was claimed but not yet sent goes back untouched.
          deps.store.outbox.markRetry(
            item.id,
            item.lastError ?? 'not sent before shutdown',
            item.nextAttemptAt,
          );
          continue;
        }
        const result = await sendOne(item);
        if (result.status === 'sent') {
          deps.store.outbox.markSent(item.id, deps.now());
          forgetStagedFile(item);
          log.debug({ id: item.id, channel: item.channel }, 'delivered');
          continue;
        }
        const fields = { id: item.id, channel: item.channel, attempts: item.attempts, reason: result.reason };
        if (!result.isRetryable || item.attempts >= deps.maxAttempts) {
          deps.store.outbox.markFailed(item.id, result.reason);
          forgetStagedFile(item);
          log.error(fields, 'delivery failed for good');
          continue;
        }
        const delay = backoffMs(item.attempts, { baseMs: deps.baseDelayMs, maxMs: deps.maxDelayMs });
        const nextAt = deps.now() + delay;
        deps.store.outbox.markRetry(item.id, result.reason, nextAt);
        log.warn({ ...fields, retryInMs: delay }, 'delivery failed; will retry');
      }
      if (isStopped) break;
    }
  }

  /** Arms one timer for the earliest future attempt: delivery never polls. */
  function arm(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    if (isStopped) return;
    const due = deps.store.outbox.nextDueAt();
    if (due === null) return;
    timer = setTimeout(kick, Math.max(0, due - deps.now()));
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
      const released = deps.store.outbox.releaseSending();
      if (released > 0) log.warn({ released }, 'retrying sends interrupted by the last shutdown');
      kick();
    },
    /** New items were queued. */
    kick,
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
