import { describe, expect, it } from 'vitest';
import { createUsageMeter } from './sse-usage.js';

function sse(events: Array<Record<string, unknown>>, newline = '\n'): string {
  return events
    .map((data) => `event: ${String(data.type)}${newline}data: ${JSON.stringify(data)}${newline}${newline}`)
    .join('');
}

const START = {
  type: 'message_start',
  message: {
    id: 'msg_1',
    model: 'claude-test',
    content: [],
    usage: {
      input_tokens: 100,
      output_tokens: 1,
      cache_read_input_tokens: 20,
      cache_creation_input_tokens: 3,
    },
  },
};
const DELTA_TEXT = {
  type: 'content_block_delta',
  index: 0,
  delta: { type: 'text_delta', text: 'héllo 🐇 "usage"' },
};
const END = { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 42 } };

function feedInPieces(contentType: string, text: string, size: number) {
  const meter = createUsageMeter(contentType);
  const bytes = Buffer.from(text, 'utf8');
  for (let start = 0; start < bytes.length; start += size) meter.push(bytes.subarray(start, start + size));
  return meter.result();
}

describe('usage meter', () => {
  it('reads usage from a stream cut into arbitrary pieces, even inside multi-byte characters', () => {
    const text = sse([START, { type: 'ping' }, DELTA_TEXT, END, { type: 'message_stop' }]);
    for (const size of [1, 3, 7, 64, 100_000]) {
      expect(feedInPieces('text/event-stream; charset=utf-8', text, size)).toEqual({
        inputTokens: 100,
        outputTokens: 42,
        cacheReadTokens: 20,
        cacheWriteTokens: 3,
        webSearches: 0,
        model: 'claude-test',
      });
    }
  });

  it('reads a stream with CRLF line endings', () => {
    expect(feedInPieces('text/event-stream', sse([START, END], '\r\n'), 5)).toMatchObject({
      inputTokens: 100,
      outputTokens: 42,
    });
  });

  it('takes the last cumulative counts when message_delta repeats input and cache tokens', () => {
    const delta = {
      type: 'message_delta',
      usage: {
        input_tokens: 110,
        output_tokens: 50,
        cache_read_input_tokens: 25,
        cache_creation_input_tokens: null,
      },
    };
    expect(feedInPieces('text/event-stream', sse([START, END, delta]), 1000)).toEqual({
      inputTokens: 110,
      outputTokens: 50,
      cacheReadTokens: 25,
      cacheWriteTokens: 3,
      webSearches: 0,
      model: 'claude-test',
    });
  });

  it('gives what a cut-off stream had reached', () => {
    const text = `${sse([START, DELTA_TEXT])}event: message_delta\ndata: {"type":"message_delta","usa`;
    expect(feedInPieces('text/event-stream', text, 10)).toMatchObject({ inputTokens: 100, outputTokens: 1 });
  });

  it('gives null for a stream without usage and ignores malformed events', () => {
    const text =
      'data: not json\n\ndata: {"type":"message_start"}\n\nevent: error\ndata: {"type":"error"}\n\n';
    expect(feedInPieces('text/event-stream', text, 4)).toBeNull();
  });

  it('skips an event too large to hold and goes on metering after it', () => {
    const pad = 'x'.repeat(17 * 1024 * 1024);
    const huge = `data: {"type":"message_delta","usage":{"input_tokens":999},"pad":"${pad}"}\n\n`;
    const later = { type: 'message_delta', usage: { output_tokens: 50 } };
    const text = `${sse([START, END])}${huge}${sse([later])}`;
    expect(feedInPieces('text/event-stream', text, 64 * 1024)).toMatchObject({
      inputTokens: 100,
      outputTokens: 50,
    });
  });

  it('reads usage from a JSON message body', () => {
    const body = JSON.stringify({
      model: 'claude-json',
      content: [],
      usage: { input_tokens: 5, output_tokens: 6 },
    });
    expect(feedInPieces('application/json', body, 3)).toEqual({
      inputTokens: 5,
      outputTokens: 6,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      webSearches: 0,
      model: 'claude-json',
    });
  });

  it('counts the web searches the server ran, and ignores a malformed count', () => {
    const usage = { input_tokens: 5, output_tokens: 6, server_tool_use: { web_search_requests: 4 } };
    const body = JSON.stringify({ model: 'claude-json', content: [], usage });
    expect(feedInPieces('application/json', body, 5)).toMatchObject({ webSearches: 4, outputTokens: 6 });
    const forged = { ...usage, server_tool_use: { web_search_requests: -3 } };
    expect(feedInPieces('application/json', JSON.stringify({ usage: forged }), 5)).toMatchObject({
      webSearches: 0,
      outputTokens: 6,
    });
  });

  it('gives null for a JSON error or a truncated JSON body', () => {
    expect(feedInPieces('application/json', '{"type":"error","error":{"type":"x"}}', 8)).toBeNull();
    expect(feedInPieces('application/json', '{"usage":{"input_tokens":5', 8)).toBeNull();
  });
});
