// The host's credential proxy: one unix socket per group; forwards model API calls with the real key, meters, refuses.
import { chmod, lstat, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { clientHeaders, type ModelCredential, upstreamHeaders } from './proxy-headers.js';
import { createUsageMeter, type UsageMeter } from './sse-usage.js';

export type { ModelCredential };

export interface UsageRecord {
  groupFolder: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  model: string | null;
  at: number;
}

export type BudgetDecision = { decision: 'allow' } | { decision: 'deny'; reason: string };

export interface ProxyRefusal {
  groupFolder: string;
  reason: string;
  path: string;
}

export interface CredentialProxyOptions {
  /** e.g. https://api.anthropic.com, a gateway (a path prefix is kept), or a fake. */
  upstreamBaseUrl: string;
  credential: ModelCredential;
  log: Logger;
  now(): number;
  /** Called once per metered upstream response that reported usage. Must not throw. */
  recordUsage(usage: UsageRecord): void;
  /** Asked before each upstream call; 'deny' refuses with an error the agent sees. */
  checkBudget(groupFolder: string): BudgetDecision;
  /** Every refusal (budget, path not allowed, malformed, too large) is reported here so the host audits it. */
  onRefused(refusal: ProxyRefusal): void;
  /** Default 32 MiB. */
  maxRequestBytes?: number;
}

export interface CredentialProxy {
  /** Serves one group on its own socket. Rejects when the group or the path is already served. */
  listen(groupFolder: string, socketPath: string): Promise<void>;
  /** Stops serving a group, cutting its open requests (usage seen so far is recorded). No-op when not served. */
  closeGroup(groupFolder: string): Promise<void>;
  close(): Promise<void>;
}

const MESSAGES_PATH = '/v1/messages';
const FORWARDED_PATHS = new Set([MESSAGES_PATH, '/v1/messages/count_tokens']);
const DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024;

/** The model name is only read to label usage; anything else in the body goes upstream byte for byte. */
const requestBodySchema = z.object({ model: z.string().optional().catch(undefined) });

type Refusal = { status: number; type: string; message: string; reason: string };

export function createCredentialProxy(options: CredentialProxyOptions): CredentialProxy {
  const log = options.log.child({ module: 'credential-proxy' });
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const upstream = new URL(options.upstreamBaseUrl);
  const isHttps = upstream.protocol === 'https:';
  if (!isHttps && upstream.protocol !== 'http:')
    throw new Error(`upstreamBaseUrl must be http(s): ${upstream.origin}`);
  const upstreamPrefix = upstream.pathname.replace(/\/+$/, '');
  const agent = isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const groups = new Map<string, { server: http.Server | null; socketPath: string }>();

  function refuse(groupFolder: string, pathname: string, res: http.ServerResponse, refusal: Refusal): void {
    log.warn(
      { group: groupFolder, path: pathname, status: refusal.status, reason: refusal.reason },
      'request refused',
    );
    // The SDK would otherwise retry some statuses; none of these refusals can succeed on a retry.
    sendError(res, refusal.status, refusal.type, refusal.message, { 'x-should-retry': 'false' });
    try {
      options.onRefused({ groupFolder, reason: refusal.reason, path: pathname });
    } catch (error) {
      log.error({ err: error, group: groupFolder }, 'onRefused threw');
    }
  }

  async function handle(
    groupFolder: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<void> {
    // Only the path and query of the target are used; the upstream origin is fixed, so an absolute-form
    // target cannot point the proxy elsewhere. URL parsing also folds dot segments before the path check.
    const target = new URL(req.url ?? '/', 'http://proxy.invalid');
    const pathname = target.pathname.slice(0, 300);
    const method = req.method ?? 'GET';

    if ((method === 'HEAD' || method === 'GET') && pathname === '/api/hello') {
      sendJson(res, 200, {});
      return;
    }
    if (method !== 'POST' || !FORWARDED_PATHS.has(target.pathname)) {
      refuse(groupFolder, pathname, res, {
        status: 404,
        type: 'not_found_error',
        message: `Warren: ${method} ${pathname} is not available through the credential proxy.`,
        reason: `path not allowed: ${method} ${pathname}`,
      });
      return;
    }

    const budget = askBudget(groupFolder);
    if (budget.decision === 'deny') {
      // 403 permission_error: the Anthropic SDK retries 408, 409, 429 and >= 500, so this reaches the agent at once.
      refuse(groupFolder, pathname, res, {
        status: 403,
        type: 'permission_error',
        message: `Warren: ${budget.reason}`,
        reason: `budget: ${budget.reason}`,
      });
      return;
    }

    const tooLarge: Refusal = {
      status: 413,
      type: 'request_too_large',
      message: `Warren: the request is larger than the ${maxRequestBytes} bytes the credential proxy accepts.`,
      reason: 'request too large',
    };
    if (Number(req.headers['content-length'] ?? 0) > maxRequestBytes) {
      refuseAndHangUp(groupFolder, pathname, req, res, tooLarge);
      return;
    }
    const body = await readBody(req, maxRequestBytes);
    if (body.status === 'aborted') return;
    if (body.status === 'too-large') {
      refuseAndHangUp(groupFolder, pathname, req, res, tooLarge);
      return;
    }
    const parsed = requestBodySchema.safeParse(parseJson(body.bytes));
    if (!parsed.success) {
      refuse(groupFolder, pathname, res, {
        status: 400,
        type: 'invalid_request_error',
        message: 'Warren: the request body must be a JSON object.',
        reason: 'malformed request body',
      });
      return;
    }
    forward({
      groupFolder,
      pathname,
      search: target.search,
      req,
      res,
      body: body.bytes,
      requestModel: parsed.data.model ?? null,
    });
  }

  function refuseAndHangUp(
    groupFolder: string,
    pathname: string,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    refusal: Refusal,
  ): void {
    // Stop reading an oversized body instead of draining it: answer, then drop the connection.
    res.setHeader('connection', 'close');
    res.on('finish', () => req.destroy());
    refuse(groupFolder, pathname, res, refusal);
  }

  function askBudget(groupFolder: string): BudgetDecision {
    try {
      return options.checkBudget(groupFolder);
    } catch (error) {
      // Fail closed: a budget that cannot be checked is not a budget that allows.
      log.error({ err: error, group: groupFolder }, 'checkBudget threw');
      return { decision: 'deny', reason: 'the token budget could not be checked; try again later.' };
    }
  }

  function forward(call: {
    groupFolder: string;
    pathname: string;
    search: string;
    req: http.IncomingMessage;
    res: http.ServerResponse;
    body: Buffer;
    requestModel: string | null;
  }): void {
    const { groupFolder, pathname, req, res } = call;
    const url = new URL(upstream.href);
    url.pathname = upstreamPrefix + pathname;
    url.search = call.search;
    const headers = upstreamHeaders(req.headers, options.credential, call.body.length);
    const requestFn = isHttps ? https.request : http.request;
    const upstreamReq = requestFn(url, { method: 'POST', headers, agent });
    let meter: UsageMeter | null = null;
    let isSettled = false;
    let isUsageExpected = false;

    /** Records what the meter saw, once: when the response ended, failed, or the client went away. */
    const settle = (): void => {
      if (isSettled) return;
      isSettled = true;
      const usage = meter?.result();
      if (!usage) {
        if (isUsageExpected) log.warn({ group: groupFolder }, 'upstream response carried no readable usage');
        return;
      }
      try {
        options.recordUsage({
          groupFolder,
          ...usage,
          model: usage.model ?? call.requestModel,
          at: options.now(),
        });
      } catch (error) {
        log.error({ err: error, group: groupFolder }, 'recordUsage threw');
      }
    };

    upstreamReq.on('response', (upstreamRes) => {
      const status = upstreamRes.statusCode ?? 502;
      if (pathname === MESSAGES_PATH) meter = createUsageMeter(upstreamRes.headers['content-type']);
      log.debug({ group: groupFolder, path: pathname, status }, 'upstream answered');
      res.writeHead(status, clientHeaders(upstreamRes.headers));
      // Bytes go to the client as they arrive (pipe, no buffering) while the meter reads a copy of each chunk.
      upstreamRes.on('data', (chunk: Buffer) => meter?.push(chunk));
      upstreamRes.on('close', () => {
        // Upstream cut the stream: end the client's too, so it sees a broken stream rather than a clean end.
        if (!upstreamRes.complete) res.destroy();
        else if (meter && status < 300) isUsageExpected = true;
        settle();
      });
      upstreamRes.on('error', () => undefined);
      upstreamRes.pipe(res);
    });

    upstreamReq.on('error', (error: NodeJS.ErrnoException) => {
      settle();
      if (res.destroyed || res.writableEnded) return;
      if (res.headersSent) {
        // Mid-stream failure: cut the stream so the client sees it broke rather than a clean end.
        res.destroy();
        return;
      }
      log.warn({ group: groupFolder, upstream: upstream.origin, code: error.code }, 'upstream unreachable');
      sendError(
        res,
        502,
        'api_error',
        `Warren: the model API at ${upstream.origin} could not be reached (${error.code ?? error.message}).`,
      );
    });

    // A client that goes away (agent stopped, container killed) must not leave a generation running upstream.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
      settle();
    });

    upstreamReq.end(call.body);
  }

  async function closeGroup(groupFolder: string): Promise<void> {
    const entry = groups.get(groupFolder);
    if (!entry) return;
    groups.delete(groupFolder);
    await closeEntry(entry);
    log.info({ group: groupFolder }, 'credential proxy closed');
  }

  return {
    async listen(groupFolder, socketPath) {
      if (groups.has(groupFolder)) throw new Error(`credential proxy already serves group ${groupFolder}`);
      const resolved = path.resolve(socketPath);
      for (const [other, entry] of groups) {
        // Two groups behind one socket would share one identity.
        if (entry.socketPath === resolved)
          throw new Error(`socket ${resolved} already serves group ${other}`);
      }
      const entry: { server: http.Server | null; socketPath: string } = {
        server: null,
        socketPath: resolved,
      };
      groups.set(groupFolder, entry);
      try {
        await removeStaleSocket(resolved);
        // The group is bound here, at the door: nothing in a request can claim another group.
        const server = http.createServer((req, res) => {
          handle(groupFolder, req, res).catch((error: unknown) => {
            log.error({ err: error, group: groupFolder }, 'credential proxy request failed');
            if (!res.headersSent) sendError(res, 500, 'api_error', 'Warren: the credential proxy failed.');
            else res.destroy();
          });
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(resolved, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (error) =>
          log.error({ err: error, group: groupFolder }, 'credential proxy socket error'),
        );
        entry.server = server;
        // 0666 so the container's uid 1000 can connect. Safe because the socket sits in a directory the host
        // controls and that is mounted into this group's container only; the socket carries no secret itself.
        await chmod(resolved, 0o666);
        log.info({ group: groupFolder, socketPath: resolved }, 'credential proxy listening');
      } catch (error) {
        await closeEntry(entry);
        groups.delete(groupFolder);
        throw error;
      }
    },
    closeGroup,
    async close() {
      await Promise.all([...groups.keys()].map(closeGroup));
      agent.destroy();
    },
  };
}

async function closeEntry(entry: { server: http.Server | null; socketPath: string }): Promise<void> {
  const { server } = entry;
  if (!server) return;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await removeStaleSocket(entry.socketPath).catch(() => undefined);
}

/** Removes a leftover socket; anything else at that path (a file, a symlink) is not ours to delete. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  const stats = await lstat(socketPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (!stats) return;
  if (!stats.isSocket()) throw new Error(`refusing to replace ${socketPath}: it is not a socket`);
  await rm(socketPath);
}

function sendError(
  res: http.ServerResponse,
  status: number,
  type: string,
  message: string,
  extraHeaders: http.OutgoingHttpHeaders = {},
): void {
  sendJson(res, status, { type: 'error', error: { type, message } }, extraHeaders);
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: http.OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...extraHeaders,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

type BodyResult = { status: 'ok'; bytes: Buffer } | { status: 'too-large' } | { status: 'aborted' };

function readBody(req: http.IncomingMessage, maxBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        req.pause();
        resolve({ status: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve({ status: 'ok', bytes: Buffer.concat(chunks) }));
    req.on('error', () => resolve({ status: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) resolve({ status: 'aborted' });
    });
  });
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
