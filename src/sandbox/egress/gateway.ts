// The egress gateway: an agent's only way out of its container, which has no network of its own. One unix socket per
// group, mounted into that group's container only, so a request's group is the door it came in by, never anything in
// the request. It speaks the HTTP proxy protocol: CONNECT host:port (TLS, tunnelled as bytes) and absolute-form plain
// HTTP. A destination must be on the group's list (policy.ts, read per request: a change applies to the next one).
// The gateway resolves the name itself, checks every address, and connects to the address it checked, so a name that
// changes its answer between check and connect (DNS rebinding) never reaches a private address. Caps bound how much
// (limits.ts). A host the owner bound a secret to is not tunnelled but read, and the secret added (intercept.ts).
import dns from 'node:dns/promises';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log.js';
import type { EgressRule, SecretBinding } from '../../store/store.js';
import { within } from '../runtimes/container.js';
import { serveOnSocket } from '../unix-socket.js';
import { createInterceptor, findSecret, type InterceptorOptions } from './intercept.js';
import { createLimits, type Refusal } from './limits.js';
import type { EgressEvent, EgressLimits } from './types.js';

export type { EgressEvent, EgressLimits } from './types.js';

import { forwardPlain } from './plain-http.js';
import { decide, normalizeHost, refuseAddress } from './policy.js';

export interface EgressGatewayOptions {
  log: Logger;
  now(): number;
  rulesOf(groupFolder: string): readonly EgressRule[];
  /** Every connection and request, allowed or not. Must not throw. */
  audit(event: EgressEvent): void;
  /** A cap refused the group: the host tells its chat (once a period). Must not throw. */
  onCapped?(groupFolder: string, reason: string): void;
  limits: EgressLimits;
  /** Names to addresses; the system's resolver (getaddrinfo, /etc/hosts included) unless a test says otherwise. */
  resolve?(host: string): Promise<string[]>;
  /** Asks the owner about a host not on the group's list (the connection waits); absent: refused at once. */
  ask?(groupFolder: string, host: string, port: number): Promise<'once' | 'always' | 'deny'>;
  /** The owner's stored secrets by name (the leak guard looks for them in what leaves); none when absent. */
  secrets?(): Map<string, string>;
  /** A group's secret bindings, and what reads and adds them; without, every CONNECT is a blind tunnel. */
  secretBindingsOf?(groupFolder: string): SecretBinding[];
  intercept?: Omit<InterceptorOptions, 'charge' | 'secrets'>;
}

export type EgressGateway = ReturnType<typeof createEgressGateway>;

const CONNECT_TIMEOUT_MS = 10_000;
const AUTHORITY = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/;

const systemResolve = async (host: string) =>
  (await dns.lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

export function createEgressGateway(options: EgressGatewayOptions) {
  const log = options.log.child({ module: 'egress' });
  const resolve = options.resolve ?? systemResolve;
  const groups = new Map<string, { server: http.Server; sockets: Set<Duplex> }>();
  const limits = createLimits(options);
  const secrets = options.secrets ?? (() => new Map<string, string>());
  const interceptor = options.intercept
    ? createInterceptor({ ...options.intercept, secrets, charge: limits.charge })
    : null;

  /** The address to connect to, or why not (and the HTTP status that says so). */
  async function admit(
    folder: string,
    rawHost: string,
    port: number,
  ): Promise<{ host: string; address: string; ownerAnswer?: string } | Refusal> {
    const host = normalizeHost(rawHost);
    if (host === null || port < 1 || port > 65_535) return { status: 400, reason: 'not a host and port' };
    // A secret spelled into a name (<secret>.example.com) would leave in the DNS query or the TLS handshake.
    const leaked = findSecret(secrets(), [host, rawHost]);
    if (leaked) return { status: 403, reason: `the name carries the secret ${leaked}` };
    let verdict = decide(options.rulesOf(folder), host, port);
    let ownerAnswer: string | undefined;
    // Not listed (a deny rule is never asked about): the connection waits while the owner is asked.
    if (!verdict.isAllowed && !verdict.isDenied && options.ask) {
      ownerAnswer = await options.ask(folder, host, port);
      if (ownerAnswer !== 'deny') verdict = { isAllowed: true, isLan: false };
    }
    if (!verdict.isAllowed) {
      const asked = ownerAnswer ? ' (the owner was asked, and did not allow it)' : '';
      return {
        status: 403,
        reason: `${verdict.reason}${asked}; the owner can allow it: warren net allow ${folder} ${host}`,
      };
    }
    const capped = limits.take(folder);
    if (capped) return capped;
    let addresses: string[];
    try {
      addresses = net.isIP(host) ? [host] : await within(CONNECT_TIMEOUT_MS, resolve(host));
    } catch (error) {
      return {
        status: 502,
        reason: `cannot resolve ${host}: ${(error as NodeJS.ErrnoException).code ?? 'failed'}`,
      };
    }
    if (addresses.length === 0) return { status: 502, reason: `cannot resolve ${host}` };
    // Every address must pass, not only the first: a name answering one public and one private address is refused.
    for (const address of addresses) {
      const why = refuseAddress(address, verdict.isLan);
      if (why) return { status: 403, reason: `${host} resolves to a refused address: ${why}` };
    }
    return { host, address: addresses[0] as string, ...(ownerAnswer ? { ownerAnswer } : {}) };
  }

  /** CONNECT host:port: the destination's bytes both ways, never looked into. */
  async function tunnel(folder: string, req: http.IncomingMessage, client: Duplex, head: Buffer) {
    const match = AUTHORITY.exec(req.url ?? '');
    const event: EgressEvent = {
      groupFolder: folder,
      method: 'CONNECT',
      host: (match?.[1] ?? req.url ?? '').slice(0, 255),
      port: Number(match?.[2] ?? 0),
      bytesIn: 0,
      bytesOut: 0,
      decision: 'refused',
    };
    const admitted = match
      ? await admit(folder, event.host, event.port)
      : { status: 400, reason: 'not host:port' };
    if ('reason' in admitted) {
      options.audit({ ...event, status: admitted.status, reason: admitted.reason });
      const text = `Warren's egress gateway refused ${event.host}:${event.port}: ${admitted.reason}\n`;
      client.end(
        `HTTP/1.1 ${admitted.status} ${http.STATUS_CODES[admitted.status]}\r\nContent-Type: text/plain\r\n` +
          `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
      return;
    }
    event.address = admitted.address;
    if (admitted.ownerAnswer) event.ownerAnswer = admitted.ownerAnswer;
    // The agent may have gone while the owner was asked (or its run ended): nothing is opened for nobody.
    if (client.destroyed) {
      options.audit({ ...event, decision: 'refused', reason: 'the agent closed the connection first' });
      return;
    }
    const bindings = (options.secretBindingsOf?.(folder) ?? []).filter(
      (binding) => binding.host === admitted.host && binding.port === event.port,
    );
    if (interceptor && bindings.length > 0) {
      options.audit({
        ...event,
        decision: 'allowed',
        secretsAdded: bindings.map((binding) => binding.secretName),
      });
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const target = {
        groupFolder: folder,
        host: admitted.host,
        port: event.port,
        address: admitted.address,
      };
      await interceptor.serve(client, head, { ...target, bindings });
      return;
    }
    // No Nagle: a TLS handshake's small writes would wait for the peer's delayed acknowledgement at each hop.
    const upstream = net.connect({
      host: admitted.address,
      port: event.port,
      timeout: CONNECT_TIMEOUT_MS,
      noDelay: true,
    });
    const sockets = groups.get(folder)?.sockets;
    sockets?.add(upstream);
    let isOpen = false;
    const cut = (reason: string) => {
      if (event.reason === undefined && reason) event.reason = reason;
      client.destroy();
      upstream.destroy();
    };
    const count = (side: 'bytesIn' | 'bytesOut') => (chunk: Buffer) => {
      event[side] += chunk.length;
      if (!limits.charge(folder, chunk.length)) cut(limits.dayCapText);
    };
    upstream.once('connect', () => {
      isOpen = true;
      upstream.setTimeout(0);
      event.decision = 'allowed';
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      client.on('data', count('bytesOut'));
      upstream.on('data', count('bytesIn'));
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('timeout', () => cut('the destination did not answer in time'));
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (isOpen) return cut(error.code ?? error.message);
      // Not connected: the agent is told why (ended, not destroyed, so the answer reaches it).
      Object.assign(event, { decision: 'failed', reason: error.code ?? error.message });
      const text = `Warren's egress gateway cannot reach ${event.host}:${event.port}: ${error.code ?? 'failed'}\n`;
      client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${text}`);
      upstream.destroy();
    });
    client.on('error', () => cut(''));
    client.on('close', () => upstream.destroy());
    upstream.once('close', (hadError) => {
      sockets?.delete(upstream);
      // Ended cleanly, the pipe ends the client once every byte is written to it; destroyed now, the tail is lost.
      if (hadError || !isOpen) client.destroy();
      options.audit(event);
    });
  }

  const plain = {
    admit,
    charge: limits.charge,
    audit: options.audit,
    secrets,
    timeoutMs: CONNECT_TIMEOUT_MS,
  };

  async function closeGroup(folder: string): Promise<void> {
    const entry = groups.get(folder);
    if (!entry) return;
    groups.delete(folder);
    // Tunnels left the HTTP server's hands at CONNECT: they are cut here, with the run.
    for (const socket of entry.sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      entry.server.close(() => resolve());
      entry.server.closeAllConnections();
    });
  }

  return {
    /** Serves one group on its own socket (0666 in a folder only the host may change). */
    async listen(folder: string, socketPath: string): Promise<void> {
      if (groups.has(folder)) throw new Error(`the egress gateway already serves group ${folder}`);
      const sockets = new Set<Duplex>();
      const server = http.createServer((req, res) => {
        forwardPlain(plain, folder, req, res).catch((error: unknown) => {
          log.error({ err: error, group: folder }, 'egress request failed');
          res.destroy();
        });
      });
      server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
        sockets.add(client);
        client.once('close', () => sockets.delete(client));
        // An agent that hangs up (EPIPE, ECONNRESET) is not an error of the host's: never an uncaught one.
        client.on('error', () => client.destroy());
        tunnel(folder, req, client, head).catch((error: unknown) => {
          log.error({ err: error, group: folder }, 'egress tunnel failed');
          client.destroy();
        });
      });
      groups.set(folder, { server, sockets });
      try {
        await serveOnSocket(server, socketPath);
      } catch (error) {
        groups.delete(folder);
        server.close();
        throw error;
      }
    },
    closeGroup,
    async close() {
      await Promise.all([...groups.keys()].map(closeGroup));
      interceptor?.close();
    },
  };
}
