// Reads token usage out of a Messages API response (SSE stream or JSON body) as its bytes pass by, unchanged.
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { z } from 'zod';

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

const streamEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('message_start'),
    message: z.object({ model: z.string().optional(), usage: usageSchema.optional() }),
  }),
  z.object({ type: z.literal('message_delta'), usage: usageSchema.optional() }),
]);

const jsonMessageSchema = z.object({ model: z.string().optional(), usage: usageSchema });

/** Picks the parser by the response's content type: SSE for text/event-stream, a JSON body otherwise. */
export function createUsageMeter(contentType: string | undefined): UsageMeter {
  return contentType?.toLowerCase().includes('text/event-stream') ? createSseMeter() : createJsonMeter();
}

class UsageTotals {
  private isSeen = false;
  private readonly usage: MessageUsage = {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    model: null,
  };

  /**
   * Counts are cumulative (message_delta repeats and raises what message_start said), so a later value
   * replaces an earlier one; nothing is summed.
   */
  apply(wire: WireUsage | undefined, model?: string): void {
    if (model !== undefined) this.usage.model = model;
    if (!wire) return;
    this.isSeen = true;
    if (wire.input_tokens != null) this.usage.inputTokens = wire.input_tokens;
    if (wire.output_tokens != null) this.usage.outputTokens = wire.output_tokens;
    if (wire.cache_read_input_tokens != null) this.usage.cacheReadTokens = wire.cache_read_input_tokens;
    if (wire.cache_creation_input_tokens != null)
      this.usage.cacheWriteTokens = wire.cache_creation_input_tokens;
  }

  result(): MessageUsage | null {
    return this.isSeen ? { ...this.usage } : null;
  }
}

function createSseMeter(): UsageMeter {
  const decoder = new StringDecoder('utf8');
  const totals = new UsageTotals();
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
  let body = '';
  let isTooLarge = false;
  return {
    push(chunk) {
      if (isTooLarge) return;
      body += decoder.write(chunk);
      if (body.length > MAX_BUFFERED_CHARS) {
        isTooLarge = true;
        body = '';
      }
    },
    result() {
      if (isTooLarge) return null;
      const parsed = jsonMessageSchema.safeParse(parseJson(body + decoder.end()));
      if (!parsed.success) return null;
      const totals = new UsageTotals();
      totals.apply(parsed.data.usage, parsed.data.model);
      return totals.result();
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
