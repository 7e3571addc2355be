// Secrets added at the boundary. For a host the owner bound a secret to, the gateway answers the agent's CONNECT
// itself: TLS with a certificate from the install's CA (which the container trusts), reads each request, refuses one
// that carries a stored secret (the leak guard), sets the bound header from the secret, and sends the request on
// over its own TLS connection, verified against the system's CAs, to the address the gateway checked. The agent
// never holds the value: not in its env, files or memory.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { SecretBinding } from '../../store/store.js';
import type { EgressCa } from './ca.js';

/** What the gateway knows of the connection it hands over. */
export interface InterceptTarget {
  groupFolder: string;
  host: string;
  port: number;
  address: string;
  bindings: SecretBinding[];
}

/** One request read and sent on (or refused), as audited. */
export interface InterceptedRequest {
  target: InterceptTarget;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  isRefused: boolean;
  reason?: string;
  /** The secrets whose headers were set. */
  injected: string[];
}

export interface InterceptorOptions {
  /** The install's CA, loaded (or made) when first needed. */
  ca(): Promise<EgressCa>;
  /** Every stored secret by name, read at each request (a change applies at once). */
  secrets(): Map<string, string>;
  /** Extra CAs to trust upstream, PEM (a self-hosted service's own); the system's are always trusted. */
  upstreamCa?: string;
  audit(request: InterceptedRequest): void;
  /** Counts bytes against the group's day; false once past its cap. */
  charge(groupFolder: string, bytes: number): boolean;
}

/** A request body is read whole to be searched for secrets: this much at most. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
export const HOP_HEADERS = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/** The forms a secret's value may leave in: as is, base64 (also URL-safe) and percent-encoded. */
function leakFormsOf(value: string): string[] {
  const base64 = Buffer.from(value).toString('base64');
  const forms = [value, base64, base64.replace(/=+$/, ''), Buffer.from(value).toString('base64url')];
  return [...new Set([...forms, encodeURIComponent(value)])].filter((form) => form.length >= 4);
}

/** The name of a stored secret found in any of the texts, or null. */
export function findSecret(secrets: Map<string, string>, texts: Array<string | Buffer>): string | null {
  for (const [name, value] of secrets) {
    for (const form of leakFormsOf(value)) {
      if (texts.some((text) => text.includes(form))) return name;
    }
  }
  return null;
}

/** The body, whole, or null when it is over the cap or the client went away. */
export async function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function createInterceptor(options: InterceptorOptions) {
  const targets = new WeakMap<Duplex, InterceptTarget>();
  const server = http.createServer((req, res) => void handle(req, res));
  // One context for every connection upstream: a `ca` list per connection would parse ~140 roots each time (a ms).
  const agent = new https.Agent({
    keepAlive: true,
    noDelay: true,
    ...(options.upstreamCa
      ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, options.upstreamCa] }) }
      : {}),
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = targets.get(req.socket) as InterceptTarget;
    const record: InterceptedRequest = {
      target,
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0]?.slice(0, 300) ?? '/',
      status: 0,
      bytesIn: 0,
      bytesOut: 0,
      isRefused: true,
      injected: [],
    };
    const refuse = (status: number, reason: string) => {
      Object.assign(record, { status, reason });
      options.audit(record);
      res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' });
      res.end(`Warren's egress gateway refused this request: ${reason}\n`);
    };
    let secrets: Map<string, string>;
    try {
      secrets = options.secrets();
    } catch (error) {
      return refuse(502, `the secrets cannot be read (${(error as Error).message})`);
    }
    const body = await readBody(req);
    if (body === null) return refuse(413, `the request body is over ${MAX_BODY_BYTES / 1024 / 1024} MiB`);
    record.bytesOut = body.length;
    if (!options.charge(target.groupFolder, body.length))
      return refuse(429, 'the group used its network for today');
    // The leak guard: the agent's own request must not carry a secret, to this host or any other.
    const leaked = findSecret(secrets, [req.url ?? '', req.rawHeaders.join('\n'), body]);
    if (leaked) return refuse(403, `it carries the secret ${leaked}`);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_HEADERS.includes(name)) headers[name] = value;
    }
    for (const binding of target.bindings) {
      const value = secrets.get(binding.secretName);
      if (value === undefined) return refuse(502, `the secret ${binding.secretName} is not set on the host`);
      // Set by the gateway alone: whatever the agent sent under that name is dropped.
      headers[binding.header.toLowerCase()] = binding.template.replace('{secret}', value);
      record.injected.push(binding.secretName);
    }
    headers['content-length'] = body.length;
    const upstream = https.request({
      host: target.address,
      port: target.port,
      // The certificate is checked for the name the agent asked for, on the connection to the checked address.
      ...(net.isIP(target.host) ? {} : { servername: target.host }),
      method: record.method,
      path: req.url,
      headers,
      agent,
      timeout: 30_000,
    });
    upstream.on('response', (answer) => {
      Object.assign(record, { status: answer.statusCode ?? 502, isRefused: false });
      const answerHeaders = { ...answer.headers };
      for (const name of HOP_HEADERS) delete answerHeaders[name];
      res.writeHead(answer.statusCode ?? 502, answerHeaders);
      answer.on('data', (chunk: Buffer) => {
        record.bytesIn += chunk.length;
        if (!options.charge(target.groupFolder, chunk.length)) answer.destroy();
      });
      answer.pipe(res);
      res.on('close', () => options.audit(record));
    });
    upstream.on('timeout', () => upstream.destroy(new Error('the host did not answer in time')));
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (res.headersSent) return void res.destroy();
      refuse(502, `cannot reach ${target.host}: ${error.code ?? error.message}`);
    });
    upstream.end(body);
  }

  return {
    /** Takes over a CONNECT the gateway has answered 200: TLS as the host, then HTTP requests one by one. */
    async serve(client: Duplex, head: Buffer, target: InterceptTarget): Promise<void> {
      if (head.length > 0) client.unshift(head);
      const secureContext = await (await options.ca()).contextFor(target.host);
      const secure = new tls.TLSSocket(client as net.Socket, { isServer: true, secureContext });
      secure.on('error', () => client.destroy());
      targets.set(secure, target);
      server.emit('connection', secure);
    },
    close(): void {
      server.closeAllConnections();
      agent.destroy();
    },
  };
}
