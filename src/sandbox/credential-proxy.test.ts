import { link, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type FakeModelApi,
  type FakeReplySpec,
  parseSseEvents,
  startFakeModelApi,
} from '../../test/fake-model-api.js';
import { silentLogger } from '../log.js';
import type { CallBound } from '../prices.js';
import {
  type BudgetDecision,
  type CredentialProxy,
  type CredentialProxyOptions,
  createCredentialProxy,
  type ProxyRefusal,
  type UsageRecord,
} from './credential-proxy.js';

const REAL_KEY = 'sk-ant-real-host-key';
const NOW = 1_700_000_000_000;
const MESSAGE = { model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };

let directory: string;
let fake: FakeModelApi;
let proxy: CredentialProxy | undefined;
let usage: UsageRecord[];
let refusals: ProxyRefusal[];
let budget: BudgetDecision;
let releases: string[];

beforeEach(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'warren-proxy-'));
  fake = await startFakeModelApi({ expectedApiKey: REAL_KEY });
  usage = [];
  refusals = [];
  releases = [];
  budget = {
    decision: 'allow',
    release: () => releases.push(`released after ${usage.length} usage records`),
  };
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await fake.close();
  await rm(directory, { recursive: true, force: true });
});

async function startProxy(
  overrides: Partial<CredentialProxyOptions> = {},
  group = 'alpha',
): Promise<{ socketPath: string }> {
  proxy = createCredentialProxy({
    upstreamBaseUrl: fake.url,
    credential: { kind: 'api-key', apiKey: REAL_KEY },
    log: silentLogger(),
    now: () => NOW,
    recordUsage: (record) => usage.push(record),
    checkBudget: () => budget,
    isWebSearchOn: () => true,
    onRefused: (refusal) => refusals.push(refusal),
    ...overrides,
  });
  const socketPath = path.join(directory, `${group}.sock`);
  await proxy.listen(group, socketPath);
  return { socketPath };
}

interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: unknown;
}

function request(
  socketPath: string,
  options: {
    method?: string;
    path?: string;
    headers?: http.OutgoingHttpHeaders;
    body?: string | Buffer;
  } = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath,
        method: options.method ?? 'POST',
        path: options.path ?? '/v1/messages?beta=true',
        headers: {
          'content-type': 'application/json',
          'anthropic-version': '2023-06-01',
          'x-api-key': 'placeholder-in-container',
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(
      options.body ??
        (options.method === 'GET' || options.method === 'HEAD' ? undefined : JSON.stringify(MESSAGE)),
    );
  });
}

function directToFake(body: unknown): Promise<Buffer> {
  return fetch(`${fake.url}/v1/messages?beta=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': REAL_KEY, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(body),
  }).then(async (response) => Buffer.from(await response.arrayBuffer()));
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('credential proxy', () => {
  it('injects the real key and the upstream sees none of the credentials the container sent', async () => {
    const { socketPath } = await startProxy();
    const response = await request(socketPath, {
      headers: {
        'x-api-key': 'sk-container-guess',
        authorization: 'Bearer sk-container-guess',
        cookie: 'session=abc',
        'proxy-authorization': 'Basic eDp5',
        'x-auth-token': 'abc',
        'anthropic-beta': 'tools-2024-04-04',
        'x-stainless-lang': 'js',
      },
    });
    expect(response.status).toBe(200);
    const seen = await fake.waitForRequest(1);
    expect(seen.url).toBe('/v1/messages?beta=true');
    expect(seen.headers['x-api-key']).toBe(REAL_KEY);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers['x-auth-token']).toBeUndefined();
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers['anthropic-beta']).toBe('tools-2024-04-04');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers['x-stainless-lang']).toBe('js');
    expect(seen.body).toEqual(MESSAGE);
  });

  it('sends an oauth credential as a Bearer token with the oauth beta flag beside the client flags', async () => {
    await fake.close();
    fake = await startFakeModelApi({ expectedApiKey: 'oauth-token-1' });
    const { socketPath } = await startProxy({ credential: { kind: 'oauth', token: 'oauth-token-1' } });
    expect((await request(socketPath, { headers: { 'anthropic-beta': 'tools-2024-04-04' } })).status).toBe(
      200,
    );
    expect(
      (
        await request(socketPath, {
          headers: { 'anthropic-beta': 'oauth-2025-04-20', authorization: 'Bearer x' },
        })
      ).status,
    ).toBe(200);
    const [first, second] = fake.requests;
    expect(first?.headers.authorization).toBe('Bearer oauth-token-1');
    expect(first?.headers['x-api-key']).toBeUndefined();
    expect(first?.headers['anthropic-beta']).toBe('tools-2024-04-04,oauth-2025-04-20');
    expect(second?.headers['anthropic-beta']).toBe('oauth-2025-04-20');
  });

  it('passes a streamed response through byte for byte and records its usage', async () => {
    const { socketPath } = await startProxy();
    const reply: FakeReplySpec = {
      text: 'hello there, streaming world',
      messageId: 'msg_same',
      usage: {
        input_tokens: 120,
        output_tokens: 7,
        cache_read_input_tokens: 30,
        cache_creation_input_tokens: 4,
      },
    };
    fake.script(reply, reply);
    const expected = await directToFake({ ...MESSAGE, stream: true });
    const response = await request(socketPath, { body: JSON.stringify({ ...MESSAGE, stream: true }) });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(response.body.equals(expected)).toBe(true);
    expect(parseSseEvents(response.text).map((event) => event.event)).toContain('message_stop');
    expect(usage).toEqual([
      {
        groupFolder: 'alpha',
        inputTokens: 120,
        outputTokens: 7,
        cacheReadTokens: 30,
        cacheWriteTokens: 4,
        webSearches: 0,
        model: 'claude-test',
        at: NOW,
      },
    ]);
  });

  it('delivers stream events while the upstream is still sending', async () => {
    const { socketPath } = await startProxy();
    fake.script({ text: 'one two three four five six seven eight', eventDelayMs: 60 });
    const started = Date.now();
    const arrivals: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        { socketPath, method: 'POST', path: '/v1/messages', headers: { 'content-type': 'application/json' } },
        (res) => {
          res.on('data', () => arrivals.push(Date.now() - started));
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ ...MESSAGE, stream: true }));
    });
    const last = arrivals.at(-1) ?? 0;
    expect(last).toBeGreaterThan(600);
    expect(arrivals[0]).toBeLessThan(last / 2);
    expect(arrivals.length).toBeGreaterThan(5);
  });

  it('records the usage of a non-streamed response', async () => {
    const { socketPath } = await startProxy();
    fake.script({ text: 'plain', model: 'claude-answering', usage: { input_tokens: 50, output_tokens: 9 } });
    const response = await request(socketPath);
    expect(response.json).toMatchObject({ content: [{ type: 'text', text: 'plain' }] });
    expect(usage).toEqual([
      {
        groupFolder: 'alpha',
        inputTokens: 50,
        outputTokens: 9,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        webSearches: 0,
        model: 'claude-answering',
        at: NOW,
      },
    ]);
  });

  it('forwards count_tokens without metering it', async () => {
    const { socketPath } = await startProxy();
    const response = await request(socketPath, { path: '/v1/messages/count_tokens' });
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({ input_tokens: expect.any(Number) });
    expect(fake.requests[0]?.path).toBe('/v1/messages/count_tokens');
    expect(usage).toEqual([]);
  });

  it('keeps the path prefix of a gateway upstream', async () => {
    const { socketPath } = await startProxy({ upstreamBaseUrl: `${fake.url}/gateway/anthropic/` });
    await request(socketPath);
    expect(fake.requests[0]?.url).toBe('/gateway/anthropic/v1/messages?beta=true');
  });

  it('refuses and reports any path other than the messages endpoints, without reaching upstream', async () => {
    const { socketPath } = await startProxy();
    const attempts = [
      { method: 'GET', path: '/v1/models' },
      { method: 'POST', path: '/v1/complete' },
      { method: 'POST', path: '/v1/messages/../files' },
      { method: 'POST', path: '/v1/messages/batches' },
      { method: 'GET', path: '/v1/messages' },
      { method: 'POST', path: 'http://evil.example/v1/organizations' },
    ];
    for (const attempt of attempts) {
      const response = await request(socketPath, attempt);
      expect(response.status).toBe(404);
      expect(response.json).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    }
    expect(fake.requests).toEqual([]);
    expect(refusals.map((refusal) => refusal.path)).toEqual([
      '/v1/models',
      '/v1/complete',
      '/v1/files',
      '/v1/messages/batches',
      '/v1/messages',
      '/v1/organizations',
    ]);
    expect(refusals.every((refusal) => refusal.groupFolder === 'alpha')).toBe(true);
  });

  it('answers the SDK ping at /api/hello itself', async () => {
    const { socketPath } = await startProxy();
    expect((await request(socketPath, { method: 'HEAD', path: '/api/hello' })).status).toBe(200);
    expect((await request(socketPath, { method: 'GET', path: '/api/hello' })).json).toEqual({});
    expect(fake.requests).toEqual([]);
    expect(refusals).toEqual([]);
  });

  it('refuses a request over budget without reaching upstream, with a non-retried error, and reports it', async () => {
    const { socketPath } = await startProxy();
    const reason = 'the daily token budget of 1000 tokens for this group is used up; it resets at 00:00 UTC.';
    budget = { decision: 'deny', reason };
    const response = await request(socketPath, { body: JSON.stringify({ ...MESSAGE, stream: true }) });
    // The Anthropic SDK retries 408, 409, 429 and >= 500; a 403 reaches the agent at once.
    expect(response.status).toBe(403);
    expect([408, 409, 429]).not.toContain(response.status);
    expect(response.headers['x-should-retry']).toBe('false');
    expect(response.json).toEqual({
      type: 'error',
      error: { type: 'permission_error', message: `Warren: ${reason}` },
    });
    expect(fake.requests).toEqual([]);
    expect(usage).toEqual([]);
    expect(refusals).toEqual([{ groupFolder: 'alpha', reason: `budget: ${reason}`, path: '/v1/messages' }]);
  });

  it('asks the budget with a bound of the call, and releases it once, after its usage is recorded', async () => {
    const calls: CallBound[] = [];
    const { socketPath } = await startProxy({
      checkBudget: (_group, call) => {
        calls.push(call);
        return budget;
      },
    });
    const tools = [{ type: 'web_search_20250305', name: 'web_search', max_uses: 3 }, { name: 'Bash' }];
    const body = JSON.stringify({ ...MESSAGE, max_tokens: 700, tools, stream: true });
    expect((await request(socketPath, { body })).status).toBe(200);
    await until(() => releases.length > 0);
    expect(calls).toEqual([
      { model: 'claude-test', bytes: Buffer.byteLength(body), maxTokens: 700, maxWebSearches: 3 },
    ]);
    expect(releases).toEqual(['released after 1 usage records']);
    // Counting tokens costs nothing: nothing is held for it.
    await request(socketPath, { path: '/v1/messages/count_tokens', body: JSON.stringify(MESSAGE) });
    expect(calls[1]).toEqual({ model: 'claude-test', bytes: 0, maxTokens: 0, maxWebSearches: 0 });
  });

  it('refuses a call with the web search tool, whoever wrote it, while the group has web search off', async () => {
    const { socketPath } = await startProxy({ isWebSearchOn: (group) => group !== 'alpha' });
    const tools = [{ type: 'web_search_20250305', name: 'web_search' }];
    const refused = await request(socketPath, { body: JSON.stringify({ ...MESSAGE, tools }) });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain(
      'web search is off for this group; the owner can turn it on: warren net websearch alpha on',
    );
    expect(fake.requests).toHaveLength(0);
    expect(refusals).toEqual([
      expect.objectContaining({ groupFolder: 'alpha', reason: 'web search is off' }),
    ]);
    // Without the tool, the same group's calls go through.
    expect((await request(socketPath, { body: JSON.stringify(MESSAGE) })).status).toBe(200);
  });

  it('releases what it held when upstream cannot be reached or the client goes away', async () => {
    fake.setDefault({ text: 'slow', delayMs: 5000 });
    const { socketPath } = await startProxy();
    const req = http.request({ socketPath, method: 'POST', path: '/v1/messages' });
    req.on('error', () => {});
    req.end(JSON.stringify(MESSAGE));
    await fake.waitForRequest(1);
    req.destroy();
    await until(() => releases.length === 1);
    await proxy?.close();
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const { socketPath: other } = await startProxy(
      { upstreamBaseUrl: `http://127.0.0.1:${closedPort}` },
      'beta',
    );
    expect((await request(other)).status).toBe(502);
    await until(() => releases.length === 2);
    expect(releases).toEqual(['released after 0 usage records', 'released after 0 usage records']);
  });

  it('fails closed when the budget check throws', async () => {
    const { socketPath } = await startProxy({
      checkBudget: () => {
        throw new Error('database locked');
      },
    });
    expect((await request(socketPath)).status).toBe(403);
    expect(fake.requests).toEqual([]);
  });

  it('answers 502 with a clear message and no key when the upstream is unreachable', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const { socketPath } = await startProxy({ upstreamBaseUrl: `http://127.0.0.1:${closedPort}` });
    const response = await request(socketPath);
    expect(response.status).toBe(502);
    expect(response.json).toMatchObject({ type: 'error', error: { type: 'api_error' } });
    expect(response.text).toContain(`could not be reached (ECONNREFUSED)`);
    expect(response.text).not.toContain(REAL_KEY);
    expect(usage).toEqual([]);
  });

  it('refuses a request body over the cap with 413 before reaching upstream', async () => {
    const { socketPath } = await startProxy({ maxRequestBytes: 1024 });
    const big = JSON.stringify({ ...MESSAGE, messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
    const response = await request(socketPath, { body: big });
    expect(response.status).toBe(413);
    expect(response.json).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
    expect(fake.requests).toEqual([]);
    expect(refusals).toEqual([{ groupFolder: 'alpha', reason: 'request too large', path: '/v1/messages' }]);
  });

  it('refuses and reports a body that is not a JSON object', async () => {
    const { socketPath } = await startProxy();
    for (const body of ['not json', '[1,2]']) {
      const response = await request(socketPath, { body });
      expect(response.status).toBe(400);
      expect(response.json).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    }
    expect(fake.requests).toEqual([]);
    expect(refusals.map((refusal) => refusal.reason)).toEqual([
      'malformed request body',
      'malformed request body',
    ]);
  });

  it('passes an upstream error through unchanged and records no usage', async () => {
    const { socketPath } = await startProxy();
    fake.script({ error: { status: 529, type: 'overloaded_error', message: 'Overloaded' } });
    const response = await request(socketPath);
    expect(response.status).toBe(529);
    expect(response.json).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
    expect(usage).toEqual([]);
  });

  it('meters two groups on two sockets separately, by the socket each request came through', async () => {
    const alpha = await startProxy({}, 'alpha');
    const betaSocket = path.join(directory, 'beta.sock');
    await proxy?.listen('beta', betaSocket);
    fake.script(
      { usage: { input_tokens: 1, output_tokens: 2 } },
      { usage: { input_tokens: 3, output_tokens: 4 } },
    );
    await request(alpha.socketPath);
    // A request that names another group is still metered by the door it came through.
    await request(betaSocket, {
      headers: { 'x-warren-group': 'alpha' },
      body: JSON.stringify({ ...MESSAGE, group: 'alpha' }),
    });
    expect(
      usage.map(({ groupFolder, inputTokens, outputTokens }) => ({ groupFolder, inputTokens, outputTokens })),
    ).toEqual([
      { groupFolder: 'alpha', inputTokens: 1, outputTokens: 2 },
      { groupFolder: 'beta', inputTokens: 3, outputTokens: 4 },
    ]);
  });

  it('creates the socket world-writable (0666) and replaces a stale socket file', async () => {
    const socketPath = path.join(directory, 'alpha.sock');
    // A stale socket: a socket file nobody listens on any more, as a crashed host leaves behind. A hard link
    // to a live socket survives the server's own unlink on close.
    const live = path.join(directory, 'live.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(live, resolve));
    await link(live, socketPath);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect((await stat(socketPath)).isSocket()).toBe(true);
    await startProxy();
    expect((await stat(socketPath)).mode & 0o777).toBe(0o666);
    expect((await request(socketPath)).status).toBe(200);
  });

  it('will not replace a file that is not a socket', async () => {
    const socketPath = path.join(directory, 'alpha.sock');
    await writeFile(socketPath, 'precious');
    await expect(startProxy()).rejects.toThrow(/not a socket/);
    expect((await stat(socketPath)).isFile()).toBe(true);
  });

  it('refuses a second listen for the same group or the same socket', async () => {
    const { socketPath } = await startProxy();
    await expect(proxy?.listen('alpha', path.join(directory, 'other.sock'))).rejects.toThrow(
      /already serves/,
    );
    await expect(proxy?.listen('beta', socketPath)).rejects.toThrow(/already serves/);
    expect((await request(socketPath)).status).toBe(200);
  });

  it('aborts upstream and records the usage seen so far when the client disconnects mid-stream', async () => {
    const { socketPath } = await startProxy();
    fake.script({
      text: 'a b c d e f g h i j k l',
      eventDelayMs: 100,
      usage: { input_tokens: 77, output_tokens: 40 },
    });
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        { socketPath, method: 'POST', path: '/v1/messages', headers: { 'content-type': 'application/json' } },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => undefined);
      req.end(JSON.stringify({ ...MESSAGE, stream: true }), () => undefined);
      setTimeout(() => reject(new Error('no data')), 3000);
    });
    await until(() => usage.length === 1);
    expect(usage[0]).toMatchObject({ groupFolder: 'alpha', inputTokens: 77, outputTokens: 1 });
    await until(() => fake.requests[0]?.isAborted === true);
  });

  it('closeGroup removes the socket and stops serving that group only', async () => {
    const alpha = await startProxy({}, 'alpha');
    const betaSocket = path.join(directory, 'beta.sock');
    await proxy?.listen('beta', betaSocket);
    await proxy?.closeGroup('alpha');
    await expect(stat(alpha.socketPath)).rejects.toThrow(/ENOENT/);
    await expect(request(alpha.socketPath)).rejects.toThrow();
    expect((await request(betaSocket)).status).toBe(200);
    await proxy?.listen('alpha', alpha.socketPath);
    expect((await request(alpha.socketPath)).status).toBe(200);
  });
});
