// Reads token usage out of a Messages API response (SSE stream or JSON body) as its bytes pass by, unchanged.
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { z } from 'zod';
import { parseJson } from '../protocol/read.js';
import type { UsageEntry } from '../store/store.js';

/** model: the one the response names, or null. */
type MessageUsage = Omit<UsageEntry, 'groupFolder' | 'at' | 'day' | 'runId' | 'cost'> & {
  webSearches: number;
};

export interface UsageMeter {
  /** Feeds the next piece of the response body; never throws. */
  push(chunk: Buffer): void;
  /** Usage seen so far (a cut-off stream gives what it had reached); null when the response carried none. */
  result(): MessageUsage | null;
}

/** An SSE event (its unfinished line and data lines so far) or JSON body past this is not metered, not held. */
const MAX_BUFFERED_CHARS = 16 * 1024 * 1024;

const tokenCount = z.number().int().nonnegative().nullish();
const usageSchema = z.object({
  input_tokens: tokenCount,
  output_tokens: tokenCount,
  cache_read_input_tokens: tokenCount,
  cache_creation_input_tokens: tokenCount,
  server_tool_use: z.object({ web_search_requests: tokenCount }).nullish().catch(undefined),
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
  const decoder = new StringDecoder('utf8');
  let counts: Omit<MessageUsage, 'model'> | null = null;
  let model: string | null = null;
  // Counts are cumulative (message_delta repeats and raises message_start's): a later value replaces, not adds.
  const apply = (message: { model?: string; usage?: WireUsage }): void => {
    if (message.model !== undefined) model = message.model;
    const wire = message.usage;
    if (!wire) return;
    counts = {
      inputTokens: wire.input_tokens ?? counts?.inputTokens ?? 0,
      outputTokens: wire.output_tokens ?? counts?.outputTokens ?? 0,
      cacheReadTokens: wire.cache_read_input_tokens ?? counts?.cacheReadTokens ?? 0,
      cacheWriteTokens: wire.cache_creation_input_tokens ?? counts?.cacheWriteTokens ?? 0,
      webSearches: wire.server_tool_use?.web_search_requests ?? counts?.webSearches ?? 0,
    };
  };
  const result = (): MessageUsage | null => (counts ? { ...counts, model } : null);

  if (!contentType?.toLowerCase().includes('text/event-stream')) {
    let body: string | null = ''; // null once past the cap
    return {
      push(chunk) {
        if (body === null) return;
        body += decoder.write(chunk);
        if (body.length > MAX_BUFFERED_CHARS) body = null;
      },
      result() {
        const parsed = messageSchema.safeParse(body === null ? null : parseJson(body + decoder.end()));
        if (parsed.success) apply(parsed.data);
        return result();
      },
    };
  }

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
      if (parsed.success) apply(parsed.data.type === 'message_start' ? parsed.data.message : parsed.data);
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
    result,
  };
}
