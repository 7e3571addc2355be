// A plain http:// request in absolute form (`GET http://host/path`, as curl sends it to a proxy): admitted like a
// CONNECT, searched for stored secrets whole (the leak guard), forwarded to the checked address with its Host header.
import http from 'node:http';
import { findSecret, HOP_HEADERS, readBody } from './intercept.js';
import type { Refusal } from './limits.js';
import type { EgressEvent } from './types.js';

export interface PlainHttpContext {
  admit(
    folder: string,
    host: string,
    port: number,
  ): Promise<{ address: string; ownerAnswer?: string } | Refusal>;
  charge(folder: string, bytes: number): boolean;
  audit(event: EgressEvent): void;
  secrets(): Map<string, string>;
  timeoutMs: number;
}

export async function forwardPlain(
  context: PlainHttpContext,
  folder: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  let url: URL | null = null;
  try {
    url = new URL(req.url ?? '');
  } catch {}
  const method = req.method ?? 'GET';
  const host = url?.hostname ?? '';
  const port = Number(url?.port || 80);
  const event: EgressEvent = {
    groupFolder: folder,
    method,
    host: host.slice(0, 255),
    port,
    path: url?.pathname.slice(0, 300),
    bytesIn: 0,
    bytesOut: 0,
    decision: 'refused',
  };
  const refuse = (status: number, reason: string) => {
    context.audit({ ...event, status, reason });
    res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`Warren's egress gateway refused ${host}:${port}: ${reason}\n`);
  };
  if (url?.protocol !== 'http:') return refuse(400, 'only http:// here; https:// goes through CONNECT');
  const admitted = await context.admit(folder, host, port);
  if ('reason' in admitted) return refuse(admitted.status, admitted.reason);
  event.address = admitted.address;
  if (admitted.ownerAnswer) event.ownerAnswer = admitted.ownerAnswer;
  const body = await readBody(req);
  if (body === null) return refuse(413, 'the request body is too large to be checked');
  event.bytesOut = body.length;
  if (!context.charge(folder, body.length)) return refuse(429, 'the group used its network for today');
  const leaked = findSecret(context.secrets(), [req.url ?? '', req.rawHeaders.join('\n'), body]);
  if (leaked) return refuse(403, `it carries the secret ${leaked}`);
  const headers: http.OutgoingHttpHeaders = { ...req.headers, 'content-length': body.length };
  for (const name of HOP_HEADERS) delete headers[name];
  const upstream = http.request({
    host: admitted.address,
    port,
    method,
    path: `${url.pathname}${url.search}`,
    headers,
    setHost: false,
    agent: false,
    timeout: context.timeoutMs,
  });
  upstream.on('response', (answer) => {
    event.decision = 'allowed';
    event.status = answer.statusCode;
    const answerHeaders = { ...answer.headers };
    for (const name of HOP_HEADERS) delete answerHeaders[name];
    res.writeHead(answer.statusCode ?? 502, answerHeaders);
    answer.on('data', (chunk: Buffer) => {
      event.bytesIn += chunk.length;
      if (!context.charge(folder, chunk.length)) answer.destroy(new Error('the daily cap'));
    });
    answer.on('error', (error) => {
      event.reason = error.message;
      res.destroy();
    });
    answer.pipe(res);
    res.on('close', () => context.audit(event));
  });
  upstream.on('timeout', () => upstream.destroy(new Error('the destination did not answer in time')));
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    if (res.headersSent) return void res.destroy();
    event.decision = 'failed';
    refuse(502, `cannot reach it: ${error.code ?? error.message}`);
  });
  upstream.end(body);
}
