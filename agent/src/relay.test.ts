import { promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLog } from './log.js';
import { startRelay } from './relay.js';

let directory: string;
let socketPath: string;
let upstream: http.Server | null;
let relay: Awaited<ReturnType<typeof startRelay>> | null;

beforeEach(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'warren-relay-'));
  socketPath = path.join(directory, 'api.sock');
  upstream = null;
  relay = null;
});
afterEach(async () => {
  await relay?.close();
  upstream?.closeAllConnections();
  await new Promise((resolve) => (upstream ? upstream.close(resolve) : resolve(undefined)));
  await fs.rm(directory, { recursive: true, force: true });
});

function serveOnSocket(handler: http.RequestListener): Promise<void> {
  upstream = http.createServer(handler);
  return new Promise((resolve) => upstream?.listen(socketPath, resolve));
}

describe('relay', () => {
  it('carries an HTTP exchange from loopback TCP to the unix socket and back', async () => {
    await serveOnSocket((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'text/event-stream' });
        response.write(
          `event: echo\ndata: ${request.method} ${request.url} ${request.headers['x-api-key']} ${body}\n\n`,
        );
        response.end();
      });
    });
    relay = await startRelay({ socketPath, log: silentLog() });
    expect(relay.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${relay.url}/v1/messages?beta=true`, {
      method: 'POST',
      headers: { 'x-api-key': 'warren-proxy' },
      body: '{"stream":true}',
    });
    expect(await response.text()).toBe(
      'event: echo\ndata: POST /v1/messages?beta=true warren-proxy {"stream":true}\n\n',
    );
  });

  it('closes the client connection when the socket is missing, and keeps serving', async () => {
    relay = await startRelay({ socketPath, log: silentLog() });
    await expect(fetch(`${relay.url}/v1/messages`)).rejects.toThrow();
    await serveOnSocket((_request, response) => response.end('up'));
    expect(await (await fetch(`${relay.url}/`)).text()).toBe('up');
  });

  it('listens on loopback only', async () => {
    relay = await startRelay({ socketPath, log: silentLog() });
    const socket = net.connect(Number(new URL(relay.url).port), '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    expect(socket.remoteAddress).toBe('127.0.0.1');
    socket.destroy();
  });

  it('close() cuts connections that are still open', async () => {
    await serveOnSocket(() => {
      // Never answers: the connection stays open until the relay cuts it.
    });
    relay = await startRelay({ socketPath, log: silentLog() });
    const request = fetch(`${relay.url}/slow`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await relay.close();
    relay = null;
    await expect(request).rejects.toThrow();
  });
});
