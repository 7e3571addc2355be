import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestWarren, tempDir } from '../../test/harness.js';
import { buildWebApp } from '../../web/build.js';
import { loadConfig } from '../config.js';
import { silentLogger } from '../log.js';
import type { InboundMessage } from '../types.js';
import { channelFactories } from './index.js';
import { createLocalChannel, type LocalChannel, type LocalDenial, loadOrCreateToken } from './local.js';

const TOKEN = 'test-token-0123456789abcdefghijklmnop';
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startChannel(
  overrides: { keepaliveMs?: number; assistantName?: string; webDir?: string } = {},
) {
  const denials: LocalDenial[] = [];
  const received: InboundMessage[] = [];
  const channel = createLocalChannel({
    port: 0,
    token: TOKEN,
    assistantName: overrides.assistantName ?? 'Andy',
    log: silentLogger(),
    onDenied: (denial) => denials.push(denial),
    keepaliveMs: overrides.keepaliveMs,
    webDir: overrides.webDir,
  });
  await channel.connect({ onMessage: (message) => received.push(message) });
  cleanups.push(() => channel.disconnect());
  return { channel, denials, received };
}

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Defaults to the bearer token; null sends none. */
  token?: string | null;
}

function rawRequest(channel: LocalChannel, options: RawRequest): Promise<RawResponse> {
  const headers: Record<string, string> = { host: `127.0.0.1:${channel.port}`, ...options.headers };
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(options.body));
  }
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: '127.0.0.1', port: channel.port, method: options.method ?? 'GET', path: options.path, headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

function post(channel: LocalChannel, chatId: string, body: unknown) {
  return rawRequest(channel, {
    method: 'POST',
    path: `/api/chats/${chatId}/messages`,
    body: JSON.stringify(body),
  });
}

interface OpenStream {
  response: IncomingMessage;
  text(): string;
  waitFor(fragment: string): Promise<void>;
  ended: Promise<void>;
  close(): void;
}

async function openStream(channel: LocalChannel, streamPath: string, headers: Record<string, string> = {}) {
  return new Promise<OpenStream>((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: '127.0.0.1',
        port: channel.port,
        path: streamPath,
        headers: { host: `127.0.0.1:${channel.port}`, authorization: `Bearer ${TOKEN}`, ...headers },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          text += chunk;
        });
        const ended = new Promise<void>((resolveEnd) => response.on('close', () => resolveEnd()));
        const stream: OpenStream = {
          response,
          text: () => text,
          waitFor: (fragment) => waitUntil(() => text.includes(fragment), `stream to contain ${fragment}`),
          ended,
          close: () => outgoing.destroy(),
        };
        cleanups.push(() => {
          outgoing.destroy();
        });
        resolve(stream);
      },
    );
    outgoing.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error);
    });
    outgoing.end();
  });
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function messageEvents(streamText: string): Array<{ id: number; data: Record<string, unknown> }> {
  return streamText
    .split('\n\n')
    .filter((block) => block.includes('event: message'))
    .map((block) => {
      const id = Number(/^id: (\d+)$/m.exec(block)?.[1]);
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') as Record<string, unknown>;
      return { id, data };
    });
}

function accessControlHeaders(headers: IncomingHttpHeaders): string[] {
  return Object.keys(headers).filter((name) => name.startsWith('access-control-'));
}

describe('local channel access', () => {
  it('refuses an API request without the token with 401 and audits it', async () => {
    const { channel, denials } = await startChannel();
    const response = await rawRequest(channel, { path: '/api/health', token: null });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body).error).toMatch(/token/);
    expect(denials).toEqual([
      {
        reason: expect.stringMatching(/missing bearer token/),
        method: 'GET',
        path: '/api/health',
        remoteAddress: '127.0.0.1',
      },
    ]);
  });

  it('refuses a wrong token of any length, and accepts the right one', async () => {
    const { channel, denials } = await startChannel();
    expect((await rawRequest(channel, { path: '/api/health', token: `${TOKEN.slice(0, -1)}x` })).status).toBe(
      401,
    );
    expect((await rawRequest(channel, { path: '/api/health', token: 'short' })).status).toBe(401);
    expect(denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/wrong token/),
      expect.stringMatching(/wrong token/),
    ]);
    const accepted = await rawRequest(channel, { path: '/api/health' });
    expect(accepted.status).toBe(200);
    expect(JSON.parse(accepted.body)).toEqual({ ok: true });
  });

  it('never accepts the token from the query string, nor logs it in the audited path', async () => {
    const { channel, denials } = await startChannel();
    const response = await rawRequest(channel, { path: `/api/health?token=${TOKEN}`, token: null });
    expect(response.status).toBe(401);
    expect(JSON.stringify(denials)).not.toContain(TOKEN);
  });

  it('200 unauthenticated API requests leave at most two audit rows, whose counts add up to 200', async () => {
    // The real wiring: the channel table's local chat auditing through the host into its store.
    const dataDir = tempDir();
    const config = loadConfig({ env: { WARREN_DATA_DIR: dataDir, WARREN_LOCAL_PORT: '0' }, cwd: dataDir });
    const localFactory = channelFactories.find((factory) => factory.name === 'local');
    const host = await startTestWarren({
      dataDir,
      channels: (context) => {
        const local = localFactory?.create({ ...context, config, log: silentLogger(), localToken: TOKEN });
        return local ? [local] : [];
      },
    });
    cleanups.push(() => host.stop());
    const channel = host.warren.channels.get('local') as LocalChannel;
    for (let index = 0; index < 200; index++) {
      // Missing and wrong tokens alike: varying reasons must not escape the folding.
      const response = await rawRequest(channel, { path: '/api/health', token: index % 2 ? 'wrong' : null });
      expect(response.status).toBe(401);
    }
    const rows = host.warren.store.audit.recent(1000);
    // Two rows only if the flood crossed a minute boundary.
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(rows.every((row) => row.action === 'local-chat-request' && row.decision === 'deny')).toBe(true);
    expect(rows.reduce((total, row) => total + row.count, 0)).toBe(200);
  });

  it('refuses a foreign Host header, even with the token (DNS rebinding)', async () => {
    const { channel, denials } = await startChannel();
    for (const host of [`evil.example:${channel.port}`, '127.0.0.1', `127.0.0.1:${channel.port + 1}`]) {
      const api = await rawRequest(channel, { path: '/api/health', headers: { host } });
      expect(api.status).toBe(403);
      const page = await rawRequest(channel, { path: '/', headers: { host }, token: null });
      expect(page.status).toBe(403);
      expect(page.body).not.toContain('<html');
    }
    expect(denials).toHaveLength(6);
    expect(denials[0]?.reason).toMatch(/host "evil\.example/);
  });

  it('accepts every loopback spelling of the Host header', async () => {
    const { channel } = await startChannel();
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const response = await rawRequest(channel, {
        path: '/api/health',
        headers: { host: `${host}:${channel.port}` },
      });
      expect(response.status).toBe(200);
    }
  });

  it('refuses a foreign Origin even with the right token (CSRF)', async () => {
    const { channel, denials, received } = await startChannel();
    for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${channel.port + 1}`]) {
      const response = await rawRequest(channel, {
        method: 'POST',
        path: '/api/chats/main/messages',
        headers: { origin },
        body: JSON.stringify({ text: 'forged' }),
      });
      expect(response.status).toBe(403);
    }
    expect(denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/origin "https:\/\/evil\.example"/),
      expect.stringMatching(/origin "null"/),
      expect.stringMatching(/origin/),
    ]);
    expect(received).toEqual([]);
    const sameOrigin = await rawRequest(channel, {
      path: '/api/health',
      headers: { origin: `http://localhost:${channel.port}` },
    });
    expect(sameOrigin.status).toBe(200);
  });

  it('refuses a request the browser marks Sec-Fetch-Site cross-site', async () => {
    const { channel, denials } = await startChannel();
    const api = await rawRequest(channel, {
      path: '/api/health',
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    const page = await rawRequest(channel, {
      path: '/',
      headers: { 'sec-fetch-site': 'cross-site' },
      token: null,
    });
    expect([api.status, page.status]).toEqual([403, 403]);
    expect(denials).toHaveLength(2);
    const sameOrigin = await rawRequest(channel, {
      path: '/api/health',
      headers: { 'sec-fetch-site': 'same-origin' },
    });
    expect(sameOrigin.status).toBe(200);
  });

  it('answers OPTIONS with 405 and never with CORS headers', async () => {
    const { channel } = await startChannel();
    const preflight = await rawRequest(channel, {
      method: 'OPTIONS',
      path: '/api/chats/main/messages',
      token: null,
      headers: { 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(405);
    expect(accessControlHeaders(preflight.headers)).toEqual([]);
    const foreign = await rawRequest(channel, {
      method: 'OPTIONS',
      path: '/api/chats/main/messages',
      token: null,
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(foreign.status).toBe(403);
    expect(accessControlHeaders(foreign.headers)).toEqual([]);
  });

  it('serves the page and its assets without a token, with a strict CSP and framing denied', async () => {
    const webDir = await buildWebApp(tempDir('warren-web-'));
    const { channel, denials } = await startChannel({ assistantName: 'Andy <b>"&', webDir });
    const page = await rawRequest(channel, { path: '/', token: null });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.body).toContain('Andy &lt;b&gt;&quot;&amp;');
    expect(page.body).not.toContain('<b>');
    // No inline script or style: everything the CSP allows comes from our own files.
    expect(page.body).not.toMatch(/<script>|<style|style=/);
    for (const asset of ['/app.js', '/app.css', '/favicon.svg']) {
      expect((await rawRequest(channel, { path: asset, token: null })).status).toBe(200);
    }
    expect(denials).toEqual([]);
    const api = await rawRequest(channel, { path: '/api/health' });
    expect(api.headers['cache-control']).toBe('no-store');
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    const { channel } = await startChannel();
    expect((await rawRequest(channel, { path: '/nope', token: null })).status).toBe(404);
    expect((await rawRequest(channel, { path: '/api/nope' })).status).toBe(404);
    expect((await rawRequest(channel, { path: '/api/chats/main/other' })).status).toBe(404);
    const wrongMethod = await rawRequest(channel, { method: 'DELETE', path: '/api/chats/main/messages' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, POST');
    expect((await rawRequest(channel, { method: 'POST', path: '/', token: null, body: '{}' })).status).toBe(
      405,
    );
  });

  it('checks the token before it says whether an API route exists', async () => {
    const { channel } = await startChannel();
    expect((await rawRequest(channel, { path: '/api/nope', token: null })).status).toBe(401);
  });
});

describe('local channel messages', () => {
  it('hands a posted message to onMessage as a direct message from the local owner', async () => {
    const { channel, received } = await startChannel();
    const before = Date.now();
    const response = await post(channel, 'main', { text: 'hello there' });
    expect(response.status).toBe(202);
    const body = JSON.parse(response.body) as { id: string; eventId: number };
    expect(received).toEqual([
      {
        channel: 'local',
        chatId: 'main',
        externalId: body.id,
        senderId: 'local-owner',
        senderName: 'You',
        text: 'hello there',
        sentAt: expect.any(Number),
        isDirect: true,
      },
    ]);
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(received[0]?.sentAt).toBeGreaterThanOrEqual(before);
    await post(channel, 'work', { text: 'second', senderName: 'Sam' });
    expect(received[1]).toMatchObject({ chatId: 'work', senderName: 'Sam' });
  });

  it('shows a posted message to another open tab of the same chat', async () => {
    const { channel } = await startChannel();
    const otherTab = await openStream(channel, '/api/chats/main/events');
    await post(channel, 'main', { text: 'typed in tab one' });
    await otherTab.waitFor('typed in tab one');
    expect(messageEvents(otherTab.text())[0]?.data).toMatchObject({ role: 'user', senderName: 'You' });
    const history = await rawRequest(channel, { path: '/api/chats/main/messages?after=0' });
    expect(JSON.parse(history.body).events).toEqual([
      {
        eventId: expect.any(Number),
        key: expect.stringMatching(/^m:/),
        role: 'user',
        senderName: 'You',
        text: 'typed in tab one',
        at: expect.any(Number),
      },
    ]);
  });

  it('delivers send() to an open event stream of that chat only', async () => {
    const { channel } = await startChannel();
    const main = await openStream(channel, '/api/chats/main/events');
    const other = await openStream(channel, '/api/chats/other/events');
    expect(main.response.headers['content-type']).toMatch(/text\/event-stream/);
    const result = await channel.send({
      chatId: 'main',
      text: 'an answer\nin two lines',
      idempotencyKey: 'k1',
    });
    expect(result.status).toBe('sent');
    await main.waitFor('an answer');
    const [event] = messageEvents(main.text());
    expect(event?.data).toEqual({
      eventId: event?.id,
      key: 'o:k1',
      role: 'assistant',
      senderName: 'Andy',
      text: 'an answer\nin two lines',
      at: expect.any(Number),
    });
    expect(result).toEqual({ status: 'sent', externalId: String(event?.id) });
    expect(other.text()).not.toContain('an answer');
  });

  it('shows a reply once when its idempotency key repeats', async () => {
    const { channel } = await startChannel();
    const stream = await openStream(channel, '/api/chats/main/events');
    const first = await channel.send({ chatId: 'main', text: 'only once', idempotencyKey: 'same' });
    const second = await channel.send({ chatId: 'main', text: 'only once', idempotencyKey: 'same' });
    await channel.send({ chatId: 'main', text: 'marker', idempotencyKey: 'other' });
    await stream.waitFor('marker');
    expect(second).toEqual(first);
    expect(messageEvents(stream.text()).map((event) => event.data.text)).toEqual(['only once', 'marker']);
  });

  it('replays the events a stream missed from Last-Event-ID or ?after', async () => {
    const { channel } = await startChannel();
    const first = await channel.send({ chatId: 'main', text: 'one', idempotencyKey: 'a' });
    await channel.send({ chatId: 'main', text: 'two', idempotencyKey: 'b' });
    await channel.send({ chatId: 'main', text: 'three', idempotencyKey: 'c' });
    const firstId = first.status === 'sent' ? String(first.externalId) : '';
    const resumed = await openStream(channel, '/api/chats/main/events', { 'last-event-id': firstId });
    await resumed.waitFor('three');
    const replayed = messageEvents(resumed.text());
    expect(replayed.map((event) => event.data.text)).toEqual(['two', 'three']);
    expect(replayed[1]?.id).toBe(replayed[0]?.id ? replayed[0].id + 1 : Number.NaN);
    const byQuery = await openStream(channel, `/api/chats/main/events?after=${firstId}`);
    await byQuery.waitFor('three');
    expect(messageEvents(byQuery.text()).map((event) => event.data.text)).toEqual(['two', 'three']);
    const fresh = await openStream(channel, '/api/chats/main/events');
    await channel.send({ chatId: 'main', text: 'four', idempotencyKey: 'd' });
    await fresh.waitFor('four');
    expect(messageEvents(fresh.text()).map((event) => event.data.text)).toEqual(['four']);
    const later = await rawRequest(channel, { path: `/api/chats/main/messages?after=${firstId}` });
    expect(JSON.parse(later.body).events.map((event: { text: string }) => event.text)).toEqual([
      'two',
      'three',
      'four',
    ]);
  });

  it('pushes typing to open streams and to streams opened while typing', async () => {
    const { channel } = await startChannel();
    const early = await openStream(channel, '/api/chats/main/events');
    await channel.setTyping?.('main', true);
    await early.waitFor('event: typing\ndata: {"isTyping":true}');
    const late = await openStream(channel, '/api/chats/main/events');
    await late.waitFor('{"isTyping":true}');
    await channel.send({ chatId: 'main', text: 'done', idempotencyKey: 'x' });
    await late.waitFor('{"isTyping":false}');
  });

  it('sends keepalive comments on idle streams', async () => {
    const { channel } = await startChannel({ keepaliveMs: 20 });
    const stream = await openStream(channel, '/api/chats/main/events');
    await stream.waitFor(': keepalive\n\n');
  });

  it('ends open event streams on disconnect', async () => {
    const { channel } = await startChannel();
    const stream = await openStream(channel, '/api/chats/main/events');
    await channel.disconnect();
    await stream.ended;
    expect(await channel.send({ chatId: 'main', text: 'late', idempotencyKey: 'z' })).toMatchObject({
      status: 'failed',
      isRetryable: true,
    });
  });
});

describe('local channel input checks', () => {
  it('refuses text over 32 KiB with 413', async () => {
    const { channel, received } = await startChannel();
    const response = await post(channel, 'main', { text: 'x'.repeat(32 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error).toMatch(/32 KiB/);
    expect(received).toEqual([]);
  });

  it('refuses a body over 64 KiB with 413 before reading it all', async () => {
    const { channel } = await startChannel();
    const response = await rawRequest(channel, {
      method: 'POST',
      path: '/api/chats/main/messages',
      body: JSON.stringify({ text: 'y'.repeat(200 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body).error).toMatch(/64 KiB/);
  });

  it('refuses a chunked body that grows past 64 KiB with 413', async () => {
    const { channel } = await startChannel();
    const status = await new Promise<number>((resolve, reject) => {
      const outgoing = httpRequest(
        {
          host: '127.0.0.1',
          port: channel.port,
          method: 'POST',
          path: '/api/chats/main/messages',
          headers: {
            host: `127.0.0.1:${channel.port}`,
            authorization: `Bearer ${TOKEN}`,
            'content-type': 'application/json',
          },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
          outgoing.destroy();
        },
      );
      outgoing.on('error', (error) => {
        if (!['EPIPE', 'ECONNRESET'].includes((error as NodeJS.ErrnoException).code ?? '')) reject(error);
      });
      const chunk = Buffer.alloc(16 * 1024, 'z');
      for (let written = 0; written < 1024 * 1024; written += chunk.length) outgoing.write(chunk);
    });
    expect(status).toBe(413);
  });

  it('refuses malformed JSON, a wrong shape and empty text with 400', async () => {
    const { channel, received } = await startChannel();
    const malformed = await rawRequest(channel, {
      method: 'POST',
      path: '/api/chats/main/messages',
      body: '{"text":',
    });
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body).error).toMatch(/not valid JSON/);
    expect((await post(channel, 'main', { message: 'hi' })).status).toBe(400);
    expect((await post(channel, 'main', { text: 42 })).status).toBe(400);
    expect((await post(channel, 'main', { text: '  \n ' })).status).toBe(400);
    const notJson = await rawRequest(channel, {
      method: 'POST',
      path: '/api/chats/main/messages',
      headers: { 'content-type': 'text/plain' },
      body: '{"text":"hi"}',
    });
    expect(notJson.status).toBe(415);
    expect(received).toEqual([]);
  });

  it('refuses a bad chat id with 400', async () => {
    const { channel } = await startChannel();
    for (const chatId of ['Main', '-main', '_main', 'a%2Fb', 'x'.repeat(65)]) {
      const response = await post(channel, chatId, { text: 'hi' });
      expect(response.status, chatId).toBe(400);
    }
    expect((await rawRequest(channel, { path: '/api/chats/BAD/events' })).status).toBe(400);
    expect((await rawRequest(channel, { path: '/api/chats/main/messages?after=-1' })).status).toBe(400);
    expect(await channel.send({ chatId: 'Bad!', text: 'x', idempotencyKey: 'q' })).toMatchObject({
      status: 'failed',
      isRetryable: false,
    });
  });
});

describe('local channel setup', () => {
  it('throws when asked to listen on a non-loopback host', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.5', 'example.com']) {
      expect(() =>
        createLocalChannel({ host, port: 0, token: TOKEN, assistantName: 'Andy', log: silentLogger() }),
      ).toThrow(/127\.0\.0\.1, ::1 or localhost/);
    }
  });

  it('fails connect on a busy port with a message naming the port and WARREN_LOCAL_PORT', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as { port: number }).port;
    const channel = createLocalChannel({ port, token: TOKEN, assistantName: 'Andy', log: silentLogger() });
    await expect(channel.connect({ onMessage: () => {} })).rejects.toThrow(
      new RegExp(`port ${port} is already in use.*WARREN_LOCAL_PORT`),
    );
  });

  it('creates the token file with mode 0600 and reuses it', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'warren-local-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const token = loadOrCreateToken(dataDir);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(path.join(dataDir, 'local-token')).mode & 0o777).toBe(0o600);
    expect(loadOrCreateToken(dataDir)).toBe(token);
    writeFileSync(path.join(dataDir, 'local-token'), '  hand-written-token-value \n');
    expect(loadOrCreateToken(dataDir)).toBe('hand-written-token-value');
  });
});
