// The host's credential proxy: one unix socket per group; forwards model API calls with the real key, meters, refuses.
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { CallBound } from '../prices.js';
import { parseJson } from '../protocol/read.js';
import type { UsageEntry } from '../store/store.js';
import type { ModelCredential } from './credentials.js';
import { clientHeaders, upstreamHeaders } from './proxy-headers.js';
import { createUsageMeter, type UsageMeter } from './sse-usage.js';
import { serveOnSocket } from './unix-socket.js';

/** A usage row less the day, the run and the cost, which the host adds. */
export type UsageRecord = Omit<UsageEntry, 'day' | 'runId' | 'cost'> & { webSearches: number };

/** 'allow' holds what the call may cost against the budget until release(), called once it settled. */
export type BudgetDecision = { decision: 'allow'; release(): void } | { decision: 'deny'; reason: string };

export type ProxyRefusal = { groupFolder: string; reason: string; path: string };

export interface CredentialProxyOptions {
  /** e.g. https://api.anthropic.com, a gateway (a path prefix is kept), or a fake. */
  upstreamBaseUrl: string;
  credential: ModelCredential;
  log: Logger;
  now(): number;
  /** Once per metered upstream response that reported usage. */
  recordUsage(usage: UsageRecord): void;
  /** Asked before each upstream call, with what it may cost at most; 'deny' refuses with an error the agent sees. */
  checkBudget(groupFolder: string, call: CallBound): BudgetDecision;
  /** Whether the group may use the model API's web search (a server tool: no egress rule of ours reaches it). */
  isWebSearchOn(groupFolder: string): boolean;
  /** Every refusal (budget, path, malformed, too large), so the host audits it. */
  onRefused(refusal: ProxyRefusal): void;
  maxRequestBytes?: number;
}

export type CredentialProxy = ReturnType<typeof createCredentialProxy>;

const MESSAGES_PATH = '/v1/messages';
const FORWARDED_PATHS = new Set([MESSAGES_PATH, '/v1/messages/count_tokens']);

/**
 * Read only to label usage and bound the call's cost (the model, its output cap, its web searches); the body goes
 * upstream byte for byte. A field that does not parse is left to the API to refuse.
 */
const requestBodySchema = z.object({
  model: z.string().optional().catch(undefined),
  max_tokens: z.number().int().positive().optional().catch(undefined),
  tools: z
    .array(
      z.looseObject({ type: z.string().optional(), max_uses: z.number().int().nonnegative().optional() }),
    )
    .optional()
    .catch(undefined),
});
/** What the bound assumes when the body does not say: the API requires max_tokens; web search has no cap. */
const DEFAULT_MAX_TOKENS = 32_000;
const DEFAULT_MAX_SEARCHES = 10;

export function createCredentialProxy(options: CredentialProxyOptions) {
  const { maxRequestBytes = 32 * 1024 * 1024 } = options;
  const log = options.log.child({ module: 'credential-proxy' });
  const upstream = new URL(options.upstreamBaseUrl);
  const isHttps = upstream.protocol === 'https:';
  if (!isHttps && upstream.protocol !== 'http:')
    throw new Error(`upstreamBaseUrl must be http(s): ${upstream.origin}`);
  const upstreamPrefix = upstream.pathname.replace(/\/+$/, '');
  const agent = isHttps ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const groups = new Map<string, { server: http.Server; socketPath: string }>();

  async function handle(groupFolder: string, req: http.IncomingMessage, res: http.ServerResponse) {
    // Only the path and query of the target are used; the upstream origin is fixed, so an absolute-form
    // target cannot point the proxy elsewhere. URL parsing also folds dot segments before the path check.
    const target = new URL(req.url ?? '/', 'http://proxy.invalid');
    const pathname = target.pathname.slice(0, 300);
    const method = req.method ?? 'GET';
    const refuse = (status: number, type: string, message: string, reason: string): void => {
      log.warn({ group: groupFolder, path: pathname, status, reason }, 'request refused');
      // The SDK would otherwise retry some statuses; none of these refusals can succeed on a retry.
      sendError(res, status, type, message, { 'x-should-retry': 'false' });
      try {
        options.onRefused({ groupFolder, reason, path: pathname });
      } catch (error) {
        log.error({ err: error, group: groupFolder }, 'onRefused threw');
      }
    };

    if ((method === 'HEAD' || method === 'GET') && pathname === '/api/hello') return sendJson(res, 200, {});
    const asked = `${method} ${pathname}`;
    if (method !== 'POST' || !FORWARDED_PATHS.has(target.pathname)) {
      const message = `${asked} is not available through the credential proxy.`;
      return refuse(404, 'not_found_error', message, `path not allowed: ${asked}`);
    }
    const isDeclaredTooLarge = Number(req.headers['content-length'] ?? 0) > maxRequestBytes;
    const body = isDeclaredTooLarge ? 'too-large' : await readBody(req, maxRequestBytes);
    if (body === null) return; // The client went away.
    if (body === 'too-large') {
      // Stop reading an oversized body instead of draining it: answer, then drop the connection.
      res.setHeader('connection', 'close');
      res.on('finish', () => req.destroy());
      const message = `the request is larger than the ${maxRequestBytes} bytes the credential proxy accepts.`;
      return refuse(413, 'request_too_large', message, 'request too large');
    }
    const parsed = requestBodySchema.safeParse(parseJson(body.toString('utf8')));
    if (!parsed.success) {
      const message = 'the request body must be a JSON object.';
      return refuse(400, 'invalid_request_error', message, 'malformed request body');
    }
    const { model = null, max_tokens: maxTokens = DEFAULT_MAX_TOKENS, tools = [] } = parsed.data;
    const isMetered = target.pathname === MESSAGES_PATH; // counting tokens costs nothing
    const searches = tools.filter((tool) => tool.type?.startsWith('web_search'));
    // Checked here, not only by the agent's tool list: an agent can write a request with the tool itself.
    if (searches.length > 0 && !options.isWebSearchOn(groupFolder)) {
      const message = `web search is off for this group; the owner can turn it on: warren net websearch ${groupFolder} on`;
      return refuse(403, 'permission_error', message, 'web search is off');
    }
    const call: CallBound = isMetered
      ? {
          model,
          bytes: body.length,
          maxTokens,
          maxWebSearches: searches.reduce((sum, tool) => sum + (tool.max_uses ?? DEFAULT_MAX_SEARCHES), 0),
        }
      : { model, bytes: 0, maxTokens: 0, maxWebSearches: 0 };
    let budget: BudgetDecision;
    try {
      budget = options.checkBudget(groupFolder, call);
    } catch (error) {
      // Fail closed: a budget that cannot be checked is not a budget that allows.
      log.error({ err: error, group: groupFolder }, 'checkBudget threw');
      budget = { decision: 'deny', reason: 'the budget could not be checked; try again later.' };
    }
    // 403 permission_error: the Anthropic SDK retries 408, 409, 429 and >= 500, so this reaches the agent at once.
    if (budget.decision === 'deny')
      return refuse(403, 'permission_error', budget.reason, `budget: ${budget.reason}`);
    let release = budget.release;

    const url = new URL(upstream.href);
    url.pathname = upstreamPrefix + target.pathname;
    url.search = target.search;
    const headers = upstreamHeaders(req.headers, options.credential, body.length);
    const upstreamReq = (isHttps ? https : http).request(url, { method: 'POST', headers, agent });
    let meter: UsageMeter | null = null;
    let isUsageExpected = false;

    /** Records what the meter saw, once: when the response ended, failed, or the client went away. */
    const settle = (): void => {
      const usage = meter?.result();
      if (meter && !usage && isUsageExpected)
        log.warn({ group: groupFolder }, 'upstream response carried no readable usage');
      meter = null;
      try {
        if (usage)
          options.recordUsage({ groupFolder, ...usage, model: usage.model ?? model, at: options.now() });
      } catch (error) {
        log.error({ err: error, group: groupFolder }, 'recordUsage threw');
      }
      // After the record: the call counts as held or as spent, never as neither.
      release();
      release = () => {};
    };

    upstreamReq.on('response', (upstreamRes) => {
      const status = upstreamRes.statusCode ?? 502;
      if (isMetered) meter = createUsageMeter(upstreamRes.headers['content-type']);
      log.debug({ group: groupFolder, path: target.pathname, status }, 'upstream answered');
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
      // Mid-stream failure: cut the stream so the client sees it broke rather than a clean end.
      if (res.headersSent) return void res.destroy();
      log.warn({ group: groupFolder, upstream: upstream.origin, code: error.code }, 'upstream unreachable');
      const message = `the model API at ${upstream.origin} could not be reached (${error.code ?? error.message}).`;
      sendError(res, 502, 'api_error', message);
    });

    // A client that goes away (agent stopped, container killed) must not leave a generation running upstream.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
      settle();
    });

    upstreamReq.end(body);
  }

  /** Stops serving a group, cutting its requests (usage so far is recorded). Never rejects. */
  async function closeGroup(groupFolder: string): Promise<void> {
    const entry = groups.get(groupFolder);
    if (!entry) return;
    groups.delete(groupFolder);
    // Closing the server also unlinks its socket.
    await new Promise<void>((resolve) => {
      entry.server.close(() => resolve());
      entry.server.closeAllConnections();
    });
    log.info({ group: groupFolder }, 'credential proxy closed');
  }

  return {
    /** Serves one group on its own socket. Rejects when the group or the path is already served. */
    async listen(groupFolder: string, socketPath: string): Promise<void> {
      if (groups.has(groupFolder)) throw new Error(`credential proxy already serves group ${groupFolder}`);
      const resolved = path.resolve(socketPath);
      // Two groups behind one socket would share one identity.
      const other = [...groups].find(([, entry]) => entry.socketPath === resolved);
      if (other) throw new Error(`socket ${resolved} already serves group ${other[0]}`);
      // The group is bound here, at the door: nothing in a request can claim another group.
      const server = http.createServer((req, res) => {
        handle(groupFolder, req, res).catch((error: unknown) => {
          log.error({ err: error, group: groupFolder }, 'credential proxy request failed');
          if (!res.headersSent) sendError(res, 500, 'api_error', 'the credential proxy failed.');
          else res.destroy();
        });
      });
      groups.set(groupFolder, { server, socketPath: resolved });
      try {
        await serveOnSocket(server, resolved);
        server.on('error', (error) =>
          log.error({ err: error, group: groupFolder }, 'credential proxy socket error'),
        );
        log.info({ group: groupFolder, socketPath: resolved }, 'credential proxy listening');
      } catch (error) {
        groups.delete(groupFolder);
        server.close();
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

/** Answers in the API's own error shape, so the SDK in the container reports it as it would the API's. */
function sendError(res: http.ServerResponse, status: number, type: string, message: string, headers = {}) {
  sendJson(res, status, { type: 'error', error: { type, message: `Warren: ${message}` } }, headers);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers = {}): void {
  const text = JSON.stringify(body);
  const length = Buffer.byteLength(text);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': length });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** The request body; 'too-large' once it passes maxBytes (the rest left unread); null when the client went away. */
function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer | 'too-large' | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else {
        req.off('data', onData).pause();
        resolve('too-large');
      }
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    // A promise settles once: after 'end' or 'too-large' these change nothing.
    req.on('error', () => resolve(null));
    req.on('close', () => {
      if (!req.complete) resolve(null);
    });
  });
}
