// Reads token usage out of a Messages API response (SSE stream or JSON body) as its bytes pass by, unchanged.
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { z } from 'zod';
import { parseJson } from '../protocol/read.js';

export interface MessageUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** The model the response names, or null when it named none. */
  model: string | null;
}

export interface UsageMeter {
  /** Feeds the next piece of the response body; never throws. */
  push(chunk: Buffer): void;
  /** Usage seen so far (a cut-off stream gives what it had reached); null when the response carried none. */
  result(): MessageUsage | null;
}

/**
 * An SSE event (its unfinished line plus the data lines so far) or a JSON body larger than this is not metered
 * rather than held in memory.
 */
const MAX_BUFFERED_CHARS = 16 * 1024 * 1024;

const tokenCount = z.number().int().nonnegative().nullish();
const usageSchema = z.object({
  input_tokens: tokenCount,
  output_tokens: tokenCount,
  cache_read_input_tokens: tokenCount,
  cache_creation_input_tokens: tokenCount,
});
type WireUsage = z.infer<typeof usageSchema>;

/** A JSON body, or what message_start carries in a stream. */
const messageSchema = z.object({ model: z.string().optional(), usage: usageSchema.optional() });
const streamEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_start'), message: messageSchema }),
  z.object({ type: z.literal('message_delta'), usage: usageSchema.optional() }),
]);

/** Picks the parser by the response's content type: SSE for text/event-stream, a JSON body otherwise. */
export function createUsageMeter(contentType: string | undefined): UsageMeter {
  return contentType?.toLowerCase().includes('text/event-stream') ? createSseMeter() : createJsonMeter();
}

/**
 * Usage as the response reports it. Counts are cumulative (message_delta repeats and raises what message_start
 * said), so a later value replaces an earlier one; nothing is summed.
 */
function createTotals() {
  let counts: Omit<MessageUsage, 'model'> | null = null;
  let model: string | null = null;
  return {
    apply(wire: WireUsage | undefined, named?: string): void {
      if (named !== undefined) model = named;
      if (!wire) return;
      counts = {
        inputTokens: wire.input_tokens ?? counts?.inputTokens ?? 0,
        outputTokens: wire.output_tokens ?? counts?.outputTokens ?? 0,
        cacheReadTokens: wire.cache_read_input_tokens ?? counts?.cacheReadTokens ?? 0,
        cacheWriteTokens: wire.cache_creation_input_tokens ?? counts?.cacheWriteTokens ?? 0,
      };
    },
    result: (): MessageUsage | null => (counts ? { ...counts, model } : null),
  };
}

function createSseMeter(): UsageMeter {
  const decoder = new StringDecoder('utf8');
  const totals = createTotals();
  let isSkippingLine = false;
  const parser = createParser({
    // The parser drops what it holds past the cap and refuses more until reset(): the rest of the line that broke
    // the cap is skipped here, then parsing starts afresh, so one oversized event costs only itself.
    maxBufferSize: MAX_BUFFERED_CHARS,
    onError(error) {
      if (error.type === 'max-buffer-size-exceeded') isSkippingLine = true;
    },
    // event:, id:, retry: and comments do not matter: the JSON's own `type` says what an event is.
    onEvent({ data }) {
      // Only message_start and message_delta carry usage; skip parsing the many content deltas.
      if (!data.includes('"message_start"') && !data.includes('"message_delta"')) return;
      const parsed = streamEventSchema.safeParse(parseJson(data));
      if (!parsed.success) return;
      if (parsed.data.type === 'message_start')
        totals.apply(parsed.data.message.usage, parsed.data.message.model);
      else totals.apply(parsed.data.usage);
    },
  });

  return {
    push(chunk) {
      let text = decoder.write(chunk);
      if (isSkippingLine) {
        const lineEnd = text.search(/[\r\n]/);
        if (lineEnd === -1) return;
        text = text.slice(lineEnd + 1);
        isSkippingLine = false;
        parser.reset();
      }
      parser.feed(text);
    },
    result: () => totals.result(),
  };
}

function createJsonMeter(): UsageMeter {
  const decoder = new StringDecoder('utf8');
  /** null once the body grew past the cap. */
  let body: string | null = '';
  return {
    push(chunk) {
      if (body === null) return;
      body += decoder.write(chunk);
      if (body.length > MAX_BUFFERED_CHARS) body = null;
    },
    result() {
      if (body === null) return null;
      const parsed = messageSchema.safeParse(parseJson(body + decoder.end()));
      if (!parsed.success) return null;
      const totals = createTotals();
      totals.apply(parsed.data.usage, parsed.data.model);
      return totals.result();
    },
  };
}
