import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../../test/helpers/self-signed.js';
import { silentLogger } from '../../log.js';
import type { EgressRule } from '../../store/store.js';
import { loadOrCreateCa } from './ca.js';
import {
  createEgressGateway,
  type EgressEvent,
  type EgressGateway,
  type EgressGatewayOptions,
} from './gateway.js';
import type { InterceptedRequest } from './intercept.js';

const rule = (host: string, port: number, overrides: Partial<EgressRule> = {}): EgressRule => ({
  host,
  port,
  action: 'allow',
  isLan: false,
  createdAt: 0,
  ...overrides,
});

/** Sends CONNECT through the gateway's socket: the status line and, when 200, the tunnel's socket. */
function connect(
  socketPath: string,
  authority: string,
): Promise<{ status: number; body: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'CONNECT', path: authority });
    req.on('connect', (res: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      // The tunnel's first bytes may come with the answer: they are handed back to the socket.
      if (head.length > 0) socket.unshift(head);
      if (res.statusCode === 200) return resolve({ status: 200, body: '', socket });
      let body = '';
      socket.on('data', (chunk) => {
        body += chunk;
      });
      socket.on('close', () => resolve({ status: res.statusCode ?? 0, body, socket }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A plain HTTP request in absolute form, as curl sends it to an HTTP proxy. */
function get(socketPath: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method: 'GET', path: url, headers: { host: new URL(url).host } });
    req.on('response', async (res) => {
      let body = '';
      for await (const chunk of res) body += chunk;
      resolve({ status: res.statusCode ?? 0, body });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Speaks HTTP over an open tunnel. */
async function overTunnel(socket: net.Socket, host: string): Promise<string> {
  socket.write(`GET /through HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += chunk;
  return text;
}

describe('egress gateway', () => {
  let dir: string;
  let upstream: http.Server;
  let upstreamPort: number;
  let gateway: EgressGateway;
  let rules: EgressRule[];
  let names: Record<string, string[]>;
  const events: EgressEvent[] = [];
  const capped: string[] = [];
  let socketPath: string;

  function start(
    limits = { requestsPerMinute: 100, megabytesPerDay: 100 },
    extra: Partial<EgressGatewayOptions> = {},
  ) {
    gateway = createEgressGateway({
      log: silentLogger(),
      now: Date.now,
      rulesOf: (folder) => (folder === 'sales' ? rules : []),
      audit: (event) => events.push(event),
      onCapped: (_folder, reason) => capped.push(reason),
      limits,
      resolve: async (host) => names[host] ?? [],
      ...extra,
    });
    return gateway.listen('sales', socketPath);
  }

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'warren-egress-'));
    socketPath = path.join(dir, 'egress.sock');
    upstream = http.createServer((req, res) => res.end(`hello ${req.headers.host} ${req.url}`));
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as net.AddressInfo).port;
    rules = [];
    names = { 'crm.lan': ['127.0.0.1'], 'api.example.com': ['93.184.216.34'] };
    events.length = 0;
    capped.length = 0;
  });

  afterEach(async () => {
    await gateway?.close();
    upstream.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses every destination until the owner allows one, and audits each refusal', async () => {
    await start();
    const refused = await connect(socketPath, `crm.lan:${upstreamPort}`);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(
      /not on this group's allowlist; the owner can allow it: warren net allow sales crm.lan/,
    );
    expect(await get(socketPath, `http://crm.lan:${upstreamPort}/x`)).toMatchObject({ status: 403 });
    expect(events.map((event) => [event.method, event.host, event.decision])).toEqual([
      ['CONNECT', 'crm.lan', 'refused'],
      ['GET', 'crm.lan', 'refused'],
    ]);
  });

  it('tunnels and forwards to an allowed LAN service, and a change applies to the next request', async () => {
    await start();
    rules = [rule('crm.lan', upstreamPort, { isLan: true })];
    const tunnel = await connect(socketPath, `crm.lan:${upstreamPort}`);
    expect(tunnel.status).toBe(200);
    expect(await overTunnel(tunnel.socket, 'crm.lan')).toMatch(/hello crm.lan \/through/);
    expect(await get(socketPath, `http://crm.lan:${upstreamPort}/plain?q=1`)).toEqual({
      status: 200,
      body: `hello crm.lan:${upstreamPort} /plain?q=1`,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events.filter((event) => event.decision === 'allowed')).toEqual([
      expect.objectContaining({ method: 'CONNECT', address: '127.0.0.1', bytesIn: expect.any(Number) }),
      expect.objectContaining({ method: 'GET', path: '/plain', status: 200 }),
    ]);
    expect(events[0]?.bytesIn).toBeGreaterThan(20);
    // Denied again: the very next request is refused, no restart.
    rules = [
      rule('crm.lan', upstreamPort, { isLan: true }),
      rule('crm.lan', upstreamPort, { action: 'deny' }),
    ];
    expect((await connect(socketPath, `crm.lan:${upstreamPort}`)).status).toBe(403);
  });

  it('refuses an allowed name that resolves to a private address unless the rule says --lan (DNS rebinding)', async () => {
    await start();
    rules = [rule('api.example.com', upstreamPort)];
    names['api.example.com'] = ['93.184.216.34', '127.0.0.1'];
    const refused = await connect(socketPath, `api.example.com:${upstreamPort}`);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(/resolves to a refused address: 127.0.0.1 is a loopback address/);
    names['api.example.com'] = ['::ffff:169.254.169.254'];
    rules = [rule('api.example.com', upstreamPort, { isLan: true })];
    expect((await connect(socketPath, `api.example.com:${upstreamPort}`)).body).toMatch(/cloud metadata/);
    // An address typed as the host is judged the same way.
    rules = [rule('127.0.0.1', upstreamPort)];
    expect((await connect(socketPath, `0x7f.0.0.1:${upstreamPort}`)).body).toMatch(/loopback/);
  });

  it('refuses malformed targets and https in absolute form', async () => {
    await start();
    expect((await connect(socketPath, 'no-port')).status).toBe(400);
    expect((await connect(socketPath, 'user@host:443')).status).toBe(400);
    expect((await get(socketPath, 'https://crm.lan/')).status).toBe(400);
  });

  it('caps connections per minute and bytes per day, and tells the chat', async () => {
    await start({ requestsPerMinute: 2, megabytesPerDay: 100 });
    rules = [rule('crm.lan', upstreamPort, { isLan: true })];
    expect((await get(socketPath, `http://crm.lan:${upstreamPort}/1`)).status).toBe(200);
    expect((await get(socketPath, `http://crm.lan:${upstreamPort}/2`)).status).toBe(200);
    const third = await get(socketPath, `http://crm.lan:${upstreamPort}/3`);
    expect(third.status).toBe(429);
    expect(third.body).toMatch(/more than 2 connections in a minute/);
    expect(capped).toHaveLength(1);
  });

  it('cuts a transfer that passes the daily byte cap', async () => {
    await start({ requestsPerMinute: 100, megabytesPerDay: 1 });
    upstream.removeAllListeners('request');
    upstream.on('request', (_req, res) => res.end(Buffer.alloc(3 * 1024 * 1024)));
    rules = [rule('crm.lan', upstreamPort, { isLan: true })];
    const tunnel = await connect(socketPath, `crm.lan:${upstreamPort}`);
    const received = (await overTunnel(tunnel.socket, 'crm.lan')).length;
    expect(received).toBeLessThan(2 * 1024 * 1024);
    expect(capped[0]).toMatch(/used its 1 MiB of network for today/);
    expect((await connect(socketPath, `crm.lan:${upstreamPort}`)).status).toBe(429);
  });

  it('holds a destination not on the list while the owner is asked, never one a rule denies', async () => {
    const asked: string[] = [];
    let answer: 'once' | 'deny' = 'once';
    await start(undefined, {
      ask: async (_folder, host, port) => {
        asked.push(`${host}:${port}`);
        return answer;
      },
    });
    names['crm.lan'] = ['93.184.216.34', '10.0.0.1'];
    // Allowed this once: still checked as any allowed name is (here, a private address behind it).
    expect((await connect(socketPath, `crm.lan:${upstreamPort}`)).body).toMatch(/refused address: 10.0.0.1/);
    answer = 'deny';
    expect((await connect(socketPath, `crm.lan:${upstreamPort}`)).body).toMatch(
      /the owner was asked, and did not allow it/,
    );
    rules = [rule('crm.lan', upstreamPort, { action: 'deny' })];
    expect((await connect(socketPath, `crm.lan:${upstreamPort}`)).status).toBe(403);
    expect(asked).toEqual([`crm.lan:${upstreamPort}`, `crm.lan:${upstreamPort}`]);
    names['crm.lan'] = ['127.0.0.1'];
    rules = [];
    answer = 'once';
    expect((await get(socketPath, `http://crm.lan:${upstreamPort}/asked`)).body).toMatch(
      /refused address: 127.0.0.1/,
    );
  });

  it('tells the agent when an allowed destination cannot be reached, and survives an agent that hangs up', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const closedPort = (closed.address() as net.AddressInfo).port;
    closed.close();
    // The owner takes a while to answer: long enough for the agent below to hang up first.
    await start(undefined, { ask: () => new Promise((resolve) => setTimeout(() => resolve('deny'), 150)) });
    rules = [rule('crm.lan', closedPort, { isLan: true })];
    const refused = await connect(socketPath, `crm.lan:${closedPort}`);
    expect(refused.status).toBe(502);
    expect(refused.body).toMatch(/cannot reach crm.lan:\d+: ECONNREFUSED/);
    // An agent that hangs up before its refusal is written costs the host nothing (no uncaught EPIPE).
    const gone = http.request({ socketPath, method: 'CONNECT', path: 'elsewhere.test:443' });
    gone.on('error', () => {});
    gone.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    gone.destroy();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(events.at(-1)).toMatchObject({ host: 'elsewhere.test', decision: 'refused' });
  });

  it('delivers every byte of a large download before it closes the tunnel', async () => {
    const size = 16 * 1024 * 1024;
    const bulk = net.createServer((socket) => socket.end(Buffer.alloc(size, 7)));
    bulk.listen(0, '127.0.0.1');
    await once(bulk, 'listening');
    const bulkPort = (bulk.address() as net.AddressInfo).port;
    try {
      await start();
      rules = [rule('crm.lan', bulkPort, { isLan: true })];
      const tunnel = await connect(socketPath, `crm.lan:${bulkPort}`);
      // A slow reader: the gateway still holds bytes for it when the upstream has closed.
      let received = 0;
      for await (const chunk of tunnel.socket) {
        received += (chunk as Buffer).length;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(received).toBe(size);
    } finally {
      bulk.close();
    }
  });

  it('cuts open tunnels when the group closes', async () => {
    await start();
    rules = [rule('crm.lan', upstreamPort, { isLan: true })];
    const tunnel = await connect(socketPath, `crm.lan:${upstreamPort}`);
    const closed = once(tunnel.socket, 'close');
    await gateway.closeGroup('sales');
    await closed;
    expect(fs.existsSync(socketPath)).toBe(false);
  });

  describe('with a secret bound to a host', () => {
    const SECRET = 's3cr3t-value-0123456789';
    let secure: https.Server;
    let securePort: number;
    let caPem: string;
    const seen: Array<{ authorization?: string; url?: string }> = [];
    const intercepted: InterceptedRequest[] = [];

    beforeEach(async () => {
      const { key, cert } = selfSignedCertificate('api.test');
      secure = https.createServer({ key, cert }, (req, res) => {
        seen.push({ authorization: req.headers.authorization, url: req.url });
        res.end('secure hello');
      });
      secure.listen(0, '127.0.0.1');
      await once(secure, 'listening');
      securePort = (secure.address() as net.AddressInfo).port;
      seen.length = 0;
      intercepted.length = 0;
      const ca = loadOrCreateCa(path.join(dir, 'egress-ca'), 'test');
      caPem = (await ca).certPem;
      names['api.test'] = ['127.0.0.1'];
      names['other.test'] = ['127.0.0.1'];
      rules = [
        rule('api.test', securePort, { isLan: true }),
        rule('other.test', securePort, { isLan: true }),
        rule('crm.lan', upstreamPort, { isLan: true }),
      ];
      await start(undefined, {
        secrets: () => new Map([['CRM_TOKEN', SECRET]]),
        secretBindingsOf: () => [
          ...['api.test', 'other.test'].map((host) => ({
            host,
            port: securePort,
            header: 'Authorization',
            template: 'Bearer {secret}',
            secretName: 'CRM_TOKEN',
            createdAt: 0,
          })),
        ],
        intercept: { ca: () => ca, upstreamCa: cert, audit: (request) => intercepted.push(request) },
      });
    });

    afterEach(() => secure.close());

    /** A request over TLS through the tunnel, trusting only the install's CA, as the agent's curl does. */
    async function secureRequest(
      pathname: string,
      headers: Record<string, string> = {},
      body = '',
      host = 'api.test',
    ) {
      const tunnel = await connect(socketPath, `${host}:${securePort}`);
      expect(tunnel.status).toBe(200);
      return new Promise<{ status: number; body: string }>((resolve, reject) => {
        const request = https.request(
          {
            createConnection: () => tls.connect({ socket: tunnel.socket, servername: host, ca: caPem }),
            method: body ? 'POST' : 'GET',
            path: pathname,
            headers: { host, ...headers },
          },
          async (res) => {
            let text = '';
            for await (const chunk of res) text += chunk;
            resolve({ status: res.statusCode ?? 0, body: text });
          },
        );
        request.on('error', reject);
        request.end(body);
      });
    }

    it("adds the header from the secret, over the agent's own, on a verified connection upstream", async () => {
      expect(await secureRequest('/leads', { authorization: 'Bearer forged' })).toEqual({
        status: 200,
        body: 'secure hello',
      });
      expect(seen).toEqual([{ authorization: `Bearer ${SECRET}`, url: '/leads' }]);
      expect(intercepted).toEqual([
        expect.objectContaining({
          method: 'GET',
          path: '/leads',
          status: 200,
          isRefused: false,
          injected: ['CRM_TOKEN'],
        }),
      ]);
      expect(events).toEqual([
        expect.objectContaining({ method: 'CONNECT', decision: 'allowed', secretsAdded: ['CRM_TOKEN'] }),
      ]);
      expect(JSON.stringify([...events, ...intercepted])).not.toContain(SECRET);
      // The gateway checks the upstream's certificate for the name asked: one for api.test does not pass as other.test.
      const wrong = await secureRequest('/leads', {}, '', 'other.test');
      expect(wrong.status).toBe(502);
      expect(wrong.body).toMatch(/cannot reach other.test: ERR_TLS_CERT_ALTNAME_INVALID/);
      expect(seen).toHaveLength(1);
    });

    it('refuses a request that carries a stored secret, in any form and to any host', async () => {
      const base64 = Buffer.from(SECRET).toString('base64');
      expect((await secureRequest('/x', {}, `token=${SECRET}`)).status).toBe(403);
      expect((await secureRequest(`/x?t=${base64}`)).body).toMatch(/carries the secret CRM_TOKEN/);
      expect((await secureRequest('/x', { 'x-note': encodeURIComponent(SECRET) })).status).toBe(403);
      expect(seen).toEqual([]);
      expect((await get(socketPath, `http://crm.lan:${upstreamPort}/?k=${SECRET}`)).status).toBe(403);
      expect((await connect(socketPath, `${SECRET}.crm.lan:${upstreamPort}`)).body).toMatch(
        /carries the secret/,
      );
    });
  });
});
