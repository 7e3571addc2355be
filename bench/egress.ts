// The egress gateway's cost: HTTPS requests to a loopback upstream through a group's gateway socket (CONNECT, then
// TLS inside the tunnel) against the same requests straight to it, alternating; and a 100 MB download through the
// tunnel. The gateway runs in a process of its own (egress-gateway.ts), as in the host; the driver is the client and
// the upstream. A new connection per request, as curl makes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import tls from 'node:tls';
import { selfSignedCertificate } from '../test/helpers/self-signed.js';
import { type BenchContext, loadAverage, type ScenarioResult } from './context.js';
import { median } from './report.js';

const NAME = 'upstream.bench';
const DOWNLOAD_BYTES = 100 * 1024 * 1024;

/** A TLS socket to the upstream through the gateway: CONNECT over the unix socket, then the handshake inside. */
function throughGateway(
  socketPath: string,
  port: number,
  context: tls.SecureContext,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, method: 'CONNECT', path: `${NAME}:${port}` });
    request.on('connect', (response: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if (response.statusCode !== 200) return reject(new Error(`gateway: HTTP ${response.statusCode}`));
      if (head.length > 0) socket.unshift(head);
      const secure = tls.connect({ socket, servername: NAME, secureContext: context }, () => resolve(secure));
      secure.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

/** A TLS socket straight to the upstream. */
function straight(port: number, context: tls.SecureContext): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ host: '127.0.0.1', port, servername: NAME, secureContext: context }, () =>
      resolve(secure),
    );
    secure.on('error', reject);
  });
}

/**
 * One GET on a fresh connection (connect, handshake, request, the whole answer), the same HTTP/1.1 bytes both ways;
 * resolves with the time it took and the body's bytes (the headers aside).
 */
async function get(
  pathname: string,
  connect: () => Promise<tls.TLSSocket>,
): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const socket = await connect();
  socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`);
  let bytes = 0;
  let head = Buffer.alloc(0);
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    if (bytes > 0 || head.includes('\r\n\r\n')) {
      bytes += chunk.length;
      continue;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end >= 0) bytes = head.length - end - 4;
  }
  return { ms: performance.now() - started, bytes };
}

/** CONNECT to the bulk upstream and read its 100 MB; resolves with the time from CONNECT to the last byte. */
async function rawDownload(socketPath: string, port: number): Promise<{ ms: number }> {
  const started = performance.now();
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const request = http.request({ socketPath, method: 'CONNECT', path: `${NAME}:${port}` });
    request.on('connect', (_response, tunnel: net.Socket, head: Buffer) => {
      if (head.length > 0) tunnel.unshift(head); // the tunnel's first bytes, read with the answer
      resolve(tunnel);
    });
    request.on('error', reject);
    request.end();
  });
  let bytes = 0;
  for await (const chunk of socket as AsyncIterable<Buffer>) bytes += chunk.length;
  if (bytes !== DOWNLOAD_BYTES) throw new Error(`the tunnel carried ${bytes} bytes`);
  return { ms: performance.now() - started };
}

/** Writes DOWNLOAD_BYTES of zeros, a MiB at a time as the reader takes them, and ends. */
function sendDownload(out: Writable): void {
  const chunk = Buffer.alloc(1024 * 1024);
  let left = DOWNLOAD_BYTES / chunk.length;
  const pump = () => {
    while (left > 0) {
      left--;
      if (!out.write(chunk)) return void out.once('drain', pump);
    }
    out.end();
  };
  pump();
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
};

export async function measureEgress(bench: BenchContext, rounds: number): Promise<ScenarioResult> {
  const load = loadAverage();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'warren-bench-egress-'));
  const { key, cert } = selfSignedCertificate(NAME);
  const answer = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url !== '/big') {
      res.end('ok');
      return;
    }
    res.writeHead(200, { 'content-length': DOWNLOAD_BYTES });
    sendDownload(res);
  };
  const upstream = https.createServer({ key, cert }, answer);
  upstream.listen(0, '127.0.0.1');
  // The same service on a port with a secret bound: the gateway reads each request and adds the header.
  const bound = https.createServer({ key, cert }, answer);
  bound.listen(0, '127.0.0.1');
  const upstreamCaFile = path.join(dir, 'upstream-ca.pem');
  writeFileSync(upstreamCaFile, cert);
  // The tunnel's own rate: 100 MB of plain bytes (no TLS, whose cost would be the driver's, not the gateway's).
  const bulk = net.createServer((socket) => {
    socket.on('error', () => {});
    sendDownload(socket);
  });
  bulk.listen(0, '127.0.0.1');
  await Promise.all([once(upstream, 'listening'), once(bulk, 'listening'), once(bound, 'listening')]);
  const port = (upstream.address() as net.AddressInfo).port;
  const boundPort = (bound.address() as net.AddressInfo).port;
  const bulkPort = (bulk.address() as net.AddressInfo).port;
  const socketPath = path.join(dir, 'egress.sock');
  const child = spawn(
    process.execPath,
    [
      ...process.execArgv,
      path.join(import.meta.dirname, 'egress-gateway.ts'),
      socketPath,
      NAME,
      upstreamCaFile,
      String(boundPort),
      String(port),
      String(bulkPort),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    if (!line.toString().startsWith('listening')) throw new Error(`the gateway said: ${line}`);
    // One secure context for both paths: building one costs about a millisecond, and is not the gateway's to pay.
    const context = tls.createSecureContext({ ca: cert });
    const direct = () => straight(port, context);
    const viaGateway = () => throughGateway(socketPath, port, context);
    // Warm both paths up (TLS sessions are not resumed: each request pays a full handshake on both).
    for (let round = 0; round < 20; round++) {
      await get('/small', direct);
      await get('/small', viaGateway);
    }
    const directMs: number[] = [];
    const gatewayMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      directMs.push((await get('/small', direct)).ms);
      gatewayMs.push((await get('/small', viaGateway)).ms);
    }
    const added = gatewayMs.map((ms, index) => ms - (directMs[index] as number));
    // The intercepting path: the agent trusts the install's CA; the gateway keeps its own connection upstream.
    const egressCa = tls.createSecureContext({
      ca: readFileSync(path.join(dir, 'egress-ca', 'ca.pem'), 'utf8'),
    });
    const directBound = () => straight(boundPort, context);
    const intercepted = () => throughGateway(socketPath, boundPort, egressCa);
    for (let round = 0; round < 20; round++) await get('/small', intercepted);
    const boundMs: number[] = [];
    const interceptedMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      boundMs.push((await get('/small', directBound)).ms);
      interceptedMs.push((await get('/small', intercepted)).ms);
    }
    const addedIntercepted = interceptedMs.map((ms, index) => ms - (boundMs[index] as number));
    const big = await get('/big', viaGateway);
    if (big.bytes !== DOWNLOAD_BYTES) throw new Error(`the download read ${big.bytes} bytes`);
    const bigDirect = await get('/big', direct);
    const rate = (run: { ms: number }) => DOWNLOAD_BYTES / 1024 / 1024 / (run.ms / 1000);
    const raw = await rawDownload(socketPath, bulkPort);
    bench.say(
      `   added per HTTPS request: median ${median(added).toFixed(2)} ms; tunnel ${rate(raw).toFixed(0)} MB/s`,
    );
    return {
      figures: {
        egressAddedMedian: median(added),
        egressAddedP99: percentile(added, 0.99),
        egressMbps: rate(raw),
        egressInterceptedMedian: median(addedIntercepted),
      },
      section: {
        title: 'Egress gateway',
        load,
        latency: [
          { label: 'HTTPS request, new connection, straight to the loopback upstream', values: directMs },
          {
            label: 'the same through the gateway (CONNECT over its unix socket, TLS inside)',
            values: gatewayMs,
          },
          { label: 'added by the gateway (per request, alternating)', values: added },
          {
            label: 'HTTPS request to a host with a secret bound: read by the gateway, header added',
            values: interceptedMs,
          },
          { label: 'added by the intercepting gateway (per request, alternating)', values: addedIntercepted },
        ],
        values: [
          { label: 'Added per request, p99', value: `${percentile(added, 0.99).toFixed(2)} ms` },
          {
            label: 'Added per intercepted request, p99',
            value: `${percentile(addedIntercepted, 0.99).toFixed(2)} ms`,
          },
          {
            label: "100 MB through the tunnel, plain bytes (the gateway's rate)",
            value: `${rate(raw).toFixed(0)} MB/s`,
          },
          { label: '100 MB over HTTPS through the tunnel', value: `${rate(big).toFixed(0)} MB/s` },
          {
            label: '100 MB over HTTPS straight to the upstream',
            value: `${rate(bigDirect).toFixed(0)} MB/s`,
          },
        ],
        notes: [
          "Intercepted: the agent's TLS ends at the gateway (a certificate from the install's CA), which keeps one connection upstream for its requests.",
          'The driver is both the client and the upstream, in one process; the gateway runs in its own, as in the host.',
          "Over HTTPS the driver's one thread encrypts and decrypts every byte: that, not the gateway, caps those rates.",
        ],
      },
    };
  } finally {
    child.kill();
    upstream.close();
    bulk.close();
    bound.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
