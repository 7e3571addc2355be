// A loopback fake of the Anthropic Messages API (JSON and SSE): replies scripted per test, every request recorded.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Token counts as the real API reports them (snake_case, as on the wire). */
export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
}

export const DEFAULT_FAKE_USAGE: FakeUsage = {
  input_tokens: 10,
  output_tokens: 5,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
};

/**
 * One scripted answer to POST /v1/messages. `error` wins over content; otherwise the message holds a text block
 * (when `text` is set), then a tool_use block (when `toolUse` is set); with neither it says 'ok'.
 */
export interface FakeReplySpec {
  text?: string;
  /** The name is echoed as given: the SDK prefixes MCP tools itself (`mcp__<server>__<tool>`). */
  toolUse?: { name: string; input: unknown; id?: string };
  error?: { status: number; type: string; message: string };
  /** Wait this long before answering at all. */
  delayMs?: number;
  /** Wait this long between SSE events, so a test can watch a stream arrive piece by piece. */
  eventDelayMs?: number;
  /** Merged over DEFAULT_FAKE_USAGE. In a stream, message_start carries output_tokens ≤ 1 and message_delta the total. */
  usage?: Partial<FakeUsage>;
  /** Defaults to the model the request named. */
  model?: string;
  /** Fixed message id, for byte-for-byte comparisons; defaults to msg_fake_<n>. */
  messageId?: string;
}

export type FakeReply = FakeReplySpec | ((request: FakeRequest) => FakeReplySpec | Promise<FakeReplySpec>);

export interface FakeRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/messages'. */
  path: string;
  /** The request target as received, query included, e.g. '/v1/messages?beta=true'. */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body, or null when there was none or it was not JSON. */
  body: unknown;
  rawBody: string;
  /** Set when the client went away before the response was complete. */
  isAborted: boolean;
}

export interface FakeModelApiOptions {
  /** When set, a request must carry this key as `x-api-key` or `authorization: Bearer`, and no other key, or gets 401. */
  expectedApiKey?: string;
  /** TCP on 127.0.0.1 (port 0, the default, picks a free one) or a unix socket path. */
  listen?: { port?: number } | { socketPath: string };
}

export interface FakeModelApi {
  /** http://127.0.0.1:PORT on TCP; http://localhost on a unix socket (connect through socketPath). */
  readonly url: string;
  readonly socketPath: string | null;
  /** Every request received, in order, including refused ones. */
  readonly requests: readonly FakeRequest[];
  /** Queues replies; each POST /v1/messages takes the next one, then the default. */
  script(...replies: FakeReply[]): void;
  /** The reply used when nothing is scripted (initially { text: 'ok' }). */
  setDefault(reply: FakeReply): void;
  /** Resolves with the count-th request (1-based) once it has arrived; rejects after timeoutMs (default 5000). */
  waitForRequest(count: number, timeoutMs?: number): Promise<FakeRequest>;
  close(): Promise<void>;
}

type SseEvent = [name: string, data: Record<string, unknown>];

export async function startFakeModelApi(options: FakeModelApiOptions = {}): Promise<FakeModelApi> {
  const requests: FakeRequest[] = [];
  const queue: FakeReply[] = [];
  let defaultReply: FakeReply = { text: 'ok' };
  let messageCount = 0;
  const waiters = new Set<() => void>();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent)
        sendJson(res, 500, errorBody('api_error', `fake model API failed: ${String(error)}`));
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const target = req.url ?? '/';
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      path: new URL(target, 'http://fake.invalid').pathname,
      url: target,
      headers: req.headers,
      body: parseJson(rawBody),
      rawBody,
      isAborted: false,
    };
    res.on('close', () => {
      if (!res.writableFinished) request.isAborted = true;
    });
    requests.push(request);
    for (const waiter of waiters) waiter();

    if (options.expectedApiKey !== undefined && !isAuthorized(req.headers, options.expectedApiKey)) {
      sendJson(res, 401, errorBody('authentication_error', 'invalid x-api-key'));
      return;
    }
    if (request.method === 'POST' && request.path === '/v1/messages') {
      await answerMessages(request, res);
      return;
    }
    if (request.method === 'POST' && request.path === '/v1/messages/count_tokens') {
      // Deterministic stand-in for a tokenizer: about four characters a token.
      sendJson(res, 200, { input_tokens: Math.max(1, Math.ceil(rawBody.length / 4)) });
      return;
    }
    sendJson(res, 200, {});
  }

  async function answerMessages(request: FakeRequest, res: http.ServerResponse): Promise<void> {
    messageCount += 1;
    const next = queue.shift() ?? defaultReply;
    const spec = typeof next === 'function' ? await next(request) : next;
    if (spec.delayMs) await sleep(spec.delayMs);
    if (res.destroyed) return;
    if (spec.error) {
      sendJson(res, spec.error.status, errorBody(spec.error.type, spec.error.message));
      return;
    }
    const body = isRecord(request.body) ? request.body : {};
    const model = spec.model ?? (typeof body.model === 'string' ? body.model : 'claude-fake');
    const message = buildMessage(spec, model, spec.messageId ?? `msg_fake_${messageCount}`, messageCount);
    if (body.stream !== true) {
      sendJson(res, 200, message);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'request-id': `req_fake_${messageCount}`,
    });
    for (const [name, data] of streamEvents(message)) {
      if (res.destroyed) return;
      res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      if (spec.eventDelayMs) await sleep(spec.eventDelayMs);
    }
    res.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const listen = options.listen ?? {};
    if ('socketPath' in listen) server.listen(listen.socketPath, resolve);
    else server.listen(listen.port ?? 0, '127.0.0.1', resolve);
  });
  const listen = options.listen ?? {};
  const socketPath = 'socketPath' in listen ? listen.socketPath : null;
  const url = socketPath ? 'http://localhost' : `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    socketPath,
    requests,
    script(...replies) {
      queue.push(...replies);
    },
    setDefault(reply) {
      defaultReply = reply;
    },
    waitForRequest(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const request = requests[count - 1];
          if (!request) return false;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(request);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `fake model API: request ${count} did not arrive within ${timeoutMs} ms (got ${requests.length})`,
            ),
          );
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

interface FakeMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: Array<Record<string, unknown>>;
  stop_reason: 'end_turn' | 'tool_use';
  stop_sequence: null;
  usage: FakeUsage;
}

function buildMessage(spec: FakeReplySpec, model: string, id: string, count: number): FakeMessage {
  const content: Array<Record<string, unknown>> = [];
  if (spec.text !== undefined || spec.toolUse === undefined)
    content.push({ type: 'text', text: spec.text ?? 'ok' });
  if (spec.toolUse) {
    content.push({
      type: 'tool_use',
      id: spec.toolUse.id ?? `toolu_fake_${count}`,
      name: spec.toolUse.name,
      input: spec.toolUse.input ?? {},
    });
  }
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: spec.toolUse ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { ...DEFAULT_FAKE_USAGE, ...spec.usage },
  };
}

/** The event sequence the real API streams for a finished message. */
function streamEvents(message: FakeMessage): SseEvent[] {
  const { usage } = message;
  const events: SseEvent[] = [
    [
      'message_start',
      {
        type: 'message_start',
        message: {
          ...message,
          content: [],
          stop_reason: null,
          usage: { ...usage, output_tokens: Math.min(1, usage.output_tokens) },
        },
      },
    ],
    ['ping', { type: 'ping' }],
  ];
  message.content.forEach((block, index) => {
    if (block.type === 'text') {
      events.push([
        'content_block_start',
        { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
      ]);
      for (const piece of String(block.text).match(/\S+\s*|\s+/g) ?? []) {
        events.push([
          'content_block_delta',
          { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } },
        ]);
      }
    } else {
      events.push([
        'content_block_start',
        { type: 'content_block_start', index, content_block: { ...block, input: {} } },
      ]);
      const json = JSON.stringify(block.input);
      for (let start = 0; start < json.length; start += 12) {
        events.push([
          'content_block_delta',
          {
            type: 'content_block_delta',
            index,
            delta: { type: 'input_json_delta', partial_json: json.slice(start, start + 12) },
          },
        ]);
      }
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  events.push(
    [
      'message_delta',
      {
        type: 'message_delta',
        delta: { stop_reason: message.stop_reason, stop_sequence: null },
        usage: { output_tokens: usage.output_tokens },
      },
    ],
    ['message_stop', { type: 'message_stop' }],
  );
  return events;
}

/** Accepts the key in either header the SDKs use; any other key presented alongside it is a failure. */
function isAuthorized(headers: http.IncomingHttpHeaders, expected: string): boolean {
  const presented: string[] = [];
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string') presented.push(apiKey);
  const authorization = headers.authorization;
  if (typeof authorization === 'string') presented.push(authorization.replace(/^Bearer\s+/i, ''));
  return presented.length > 0 && presented.every((key) => key === expected);
}

function errorBody(type: string, message: string): Record<string, unknown> {
  return { type: 'error', error: { type, message } };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Splits an SSE body into its events (JSON data parsed), for assertions in tests. */
export function parseSseEvents(text: string): Array<{ event: string; data: unknown }> {
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      return { event, data: parseJson(data.join('\n')) };
    });
}
