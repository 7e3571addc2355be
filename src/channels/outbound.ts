// What adapters share on the way out: replies sent in parts that a retry never repeats, and typing that lasts.
import type { Logger } from '../log.js';
import type { SendResult } from '../types.js';

/** Which parts of split replies were sent. The host's is durable (store); tests may use memoryLedger(). */
export interface SentPartsLedger {
  /** The part was sent before, with the channel's id for it (null when it gave none); undefined otherwise. */
  get(partKey: string): { externalId: string | null } | undefined;
  record(partKey: string, externalId: string | null): void;
}

export function memoryLedger(): SentPartsLedger {
  const sent = new Map<string, string | null>();
  return {
    get: (partKey) => (sent.has(partKey) ? { externalId: sent.get(partKey) ?? null } : undefined),
    record: (partKey, externalId) => {
      sent.set(partKey, externalId);
    },
  };
}

/**
 * Sends the parts of one outbox item in order. Part n is keyed `key#n` and recorded once sent, so when a
 * later part fails and the outbox retries the item, the parts that arrived are not sent again.
 */
export async function sendInParts(input: {
  idempotencyKey: string;
  parts: string[];
  ledger: SentPartsLedger;
  sendPart(part: string, partKey: string): Promise<SendResult>;
}): Promise<SendResult> {
  let firstId: string | undefined;
  for (const [index, part] of input.parts.entries()) {
    const partKey = `${input.idempotencyKey}#${index + 1}`;
    const previous = input.ledger.get(partKey);
    if (previous) {
      firstId ??= previous.externalId ?? undefined;
      continue;
    }
    const result = await input.sendPart(part, partKey);
    if (result.status === 'failed') {
      const where = input.parts.length > 1 ? `part ${index + 1} of ${input.parts.length}: ` : '';
      return { ...result, reason: `${where}${result.reason}` };
    }
    input.ledger.record(partKey, result.externalId ?? null);
    firstId ??= result.externalId;
  }
  return firstId === undefined ? { status: 'sent' } : { status: 'sent', externalId: firstId };
}

export interface TypingKeeper {
  set(chatId: string, isTyping: boolean): Promise<void>;
  stopAll(): void;
}

/**
 * Services show "typing…" for a few seconds per request; the host says it once per turn. This repeats the
 * request every intervalMs until told to stop, and at most maxMs, so a stuck turn does not type forever.
 */
export function createTypingKeeper(options: {
  intervalMs: number;
  maxMs: number;
  log: Logger;
  send(chatId: string, isTyping: boolean): Promise<void>;
}): TypingKeeper {
  const timers = new Map<string, NodeJS.Timeout>();
  const stop = (chatId: string) => {
    const timer = timers.get(chatId);
    if (timer) clearInterval(timer);
    timers.delete(chatId);
  };
  const sendQuietly = (chatId: string, isTyping: boolean) =>
    options.send(chatId, isTyping).catch((error: unknown) => {
      options.log.debug({ err: error, chatId }, 'typing indicator failed');
    });
  return {
    async set(chatId, isTyping) {
      if (!isTyping) {
        const wasTyping = timers.has(chatId);
        stop(chatId);
        if (wasTyping) await sendQuietly(chatId, false);
        return;
      }
      if (timers.has(chatId)) return;
      const startedAt = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - startedAt >= options.maxMs) stop(chatId);
        else void sendQuietly(chatId, true);
      }, options.intervalMs);
      timer.unref();
      timers.set(chatId, timer);
      await sendQuietly(chatId, true);
    },
    stopAll() {
      for (const chatId of [...timers.keys()]) stop(chatId);
    },
  };
}
