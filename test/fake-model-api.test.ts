import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeModelApi, parseSseEvents, startFakeModelApi } from './fake-model-api.js';

const KEY = 'sk-test-fake';
let api: FakeModelApi | undefined;

interface MessageBody {
  content: Array<{ type: string; text?: string }>;
  stop_reason: string;
}

afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function start(options: Parameters<typeof startFakeModelApi>[0] = {}): Promise<FakeModelApi> {
  api = await startFakeModelApi(options);
  return api;
}

function postMessages(
  url: string,
  body: Record<string, unknown>,
  key: string | null = KEY,
): Promise<Response> {
  return fetch(`${url}/v1/messages?beta=true`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      ...(key === null ? {} : { 'x-api-key': key }),
    },
    body: JSON.stringify({
      model: 'claude-test',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
      ...body,
    }),
  });
}

describe('fake model API', () => {
  it('answers a non-streamed request with a JSON message saying ok and default usage', async () => {
    const fake = await start();
    const response = await postMessages(fake.url, {});
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      id: 'msg_fake_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-test',
      content: [{ type: 'text', text: 'ok' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: 10,
        output_tokens: 5,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
      },
    });
  });

  it('streams a text reply as the real API does', async () => {
    const fake = await start();
    fake.script({ text: 'hello there world', usage: { input_tokens: 42, output_tokens: 7 } });
    const response = await postMessages(fake.url, { stream: true });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSseEvents(await response.text());
    for (const { event, data } of events) expect(data).toMatchObject({ type: event });
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'ping',
      'content_block_start',
      'content_block_delta',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[0]?.data).toEqual({
      type: 'message_start',
      message: {
        id: 'msg_fake_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-test',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: 42,
          output_tokens: 1,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
      },
    });
    const text = events
      .map((e) => e.data as { delta?: { type: string; text?: string } })
      .filter((data) => data.delta?.type === 'text_delta')
      .map((data) => data.delta?.text)
      .join('');
    expect(text).toBe('hello there world');
    expect(events[7]?.data).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 7 },
    });
  });

  it('streams a tool call with input_json_delta pieces that rebuild the input', async () => {
    const fake = await start();
    const input = { chatId: 'c1', text: 'a long enough message to be split into several pieces' };
    fake.script({ toolUse: { name: 'mcp__warren__send_message', input, id: 'toolu_1' } });
    const events = parseSseEvents(await (await postMessages(fake.url, { stream: true })).text());
    const blockStart = events.find((e) => e.event === 'content_block_start')?.data;
    expect(blockStart).toEqual({
      type: 'content_block_start',
      index: 0,
      content_block: { type: 'tool_use', id: 'toolu_1', name: 'mcp__warren__send_message', input: {} },
    });
    const pieces = events
      .map((e) => e.data as { delta?: { type: string; partial_json?: string } })
      .filter((data) => data.delta?.type === 'input_json_delta')
      .map((data) => data.delta?.partial_json ?? '');
    expect(pieces.length).toBeGreaterThan(1);
    expect(JSON.parse(pieces.join(''))).toEqual(input);
    const delta = events.find((e) => e.event === 'message_delta')?.data;
    expect(delta).toMatchObject({ delta: { stop_reason: 'tool_use' } });
  });

  it('answers a tool call without streaming as a tool_use block', async () => {
    const fake = await start();
    fake.script({ text: 'let me', toolUse: { name: 'Bash', input: { command: 'ls' } } });
    const message = (await (await postMessages(fake.url, {})).json()) as MessageBody;
    expect(message.content).toEqual([
      { type: 'text', text: 'let me' },
      { type: 'tool_use', id: 'toolu_fake_1', name: 'Bash', input: { command: 'ls' } },
    ]);
    expect(message.stop_reason).toBe('tool_use');
  });

  it('uses scripted replies in order, then the default', async () => {
    const fake = await start();
    fake.script({ text: 'one' }, (request) => ({
      text: `two for ${(request.body as { model: string }).model}`,
    }));
    const texts: string[] = [];
    const nextText = async () =>
      ((await (await postMessages(fake.url, {})).json()) as MessageBody).content[0]?.text;
    for (let i = 0; i < 3; i++) texts.push(String(await nextText()));
    fake.setDefault({ text: 'changed' });
    texts.push(String(await nextText()));
    expect(texts).toEqual(['one', 'two for claude-test', 'ok', 'changed']);
  });

  it('answers a scripted error with its status and the Anthropic error shape', async () => {
    const fake = await start();
    fake.script({ error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } });
    const response = await postMessages(fake.url, { stream: true });
    expect(response.status).toBe(529);
    expect(await response.json()).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
  });

  it('waits delayMs before answering', async () => {
    const fake = await start();
    fake.script({ delayMs: 150 });
    const started = Date.now();
    await (await postMessages(fake.url, {})).json();
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('with an expected key, refuses a missing or wrong key and accepts x-api-key or Bearer', async () => {
    const fake = await start({ expectedApiKey: KEY });
    const missing = await postMessages(fake.url, {}, null);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    expect((await postMessages(fake.url, {}, 'sk-wrong')).status).toBe(401);
    expect((await postMessages(fake.url, {}, KEY)).status).toBe(200);
    const bearer = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(bearer.status).toBe(200);
    const both = await fetch(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-other', 'x-api-key': KEY },
      body: '{}',
    });
    expect(both.status).toBe(401);
  });

  it('records every request with method, path, query, headers and parsed body', async () => {
    const fake = await start();
    await fetch(`${fake.url}/api/hello`, { method: 'HEAD' });
    await postMessages(fake.url, { stream: false });
    const counted = await fetch(`${fake.url}/v1/messages/count_tokens`, {
      method: 'POST',
      body: '{"messages":[]}',
    });
    expect(await counted.json()).toEqual({ input_tokens: 4 });
    const other = await fetch(`${fake.url}/v1/models`);
    expect(other.status).toBe(200);
    expect(await other.json()).toEqual({});

    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'HEAD /api/hello',
      'POST /v1/messages',
      'POST /v1/messages/count_tokens',
      'GET /v1/models',
    ]);
    const message = await fake.waitForRequest(2);
    expect(message.url).toBe('/v1/messages?beta=true');
    expect(message.headers['anthropic-version']).toBe('2023-06-01');
    expect(message.body).toMatchObject({ model: 'claude-test', stream: false });
  });

  it('waitForRequest resolves when the request arrives and rejects after its timeout', async () => {
    const fake = await start();
    const waiting = fake.waitForRequest(1, 2000);
    void postMessages(fake.url, {});
    expect((await waiting).path).toBe('/v1/messages');
    await expect(fake.waitForRequest(2, 50)).rejects.toThrow(/request 2 did not arrive/);
  });

  it('listens on a unix socket', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'warren-fake-'));
    try {
      const socketPath = path.join(directory, 'api.sock');
      const fake = await start({ listen: { socketPath } });
      expect(fake.url).toBe('http://localhost');
      expect(fake.socketPath).toBe(socketPath);
      fake.script({ text: 'over the socket' });
      const body = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          {
            socketPath,
            path: '/v1/messages',
            method: 'POST',
            headers: { 'content-type': 'application/json' },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
            });
            res.on('end', () => resolve(text));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', messages: [] }));
      });
      expect((JSON.parse(body) as MessageBody).content).toEqual([{ type: 'text', text: 'over the socket' }]);
    } finally {
      await api?.close();
      api = undefined;
      await rm(directory, { recursive: true, force: true });
    }
  });
});
