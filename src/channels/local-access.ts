// Who may talk to the local chat: its token (kept in a file only the owner can read), the checks every request
// passes before it reaches a route, and their audit.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Logger } from '../log.js';
import { sendJson } from './local-http.js';

export const LOCAL_TOKEN_FILE = 'local-token';

export interface LocalDenial {
  reason: string;
  method: string;
  path: string;
  remoteAddress?: string;
}

export interface AccessGuardOptions {
  token: string;
  log: Logger;
  /** Must not throw; a throw is logged and the refusal still goes out. */
  onDenied?: (denial: LocalDenial) => void;
}

/** Each check answers the refused request itself (403 or 401), audits it and returns false. */
export interface AccessGuard {
  /** Called once the server listens: Host and Origin must then name exactly this port. */
  setPort(port: number): void;
  /** Host, Origin and fetch-metadata checks, for every request including the static page. */
  checkSource(request: IncomingMessage, response: ServerResponse, isApi: boolean): boolean;
  /** The bearer token, for every /api request. */
  checkToken(request: IncomingMessage, response: ServerResponse): boolean;
}

export function createAccessGuard(options: AccessGuardOptions): AccessGuard {
  // Hashing both sides gives equal-length buffers for timingSafeEqual and leaks not even the token's length.
  const tokenDigest = sha256(options.token);
  // Empty until the port is known, so nothing is allowed before then.
  let allowedHosts = new Set<string>();
  let allowedOrigins = new Set<string>();

  function deny(request: IncomingMessage, response: ServerResponse, status: number, reason: string): false {
    const denial: LocalDenial = {
      reason,
      method: request.method ?? '',
      // The path only: a query string could carry a token someone pasted by mistake.
      path: (request.url ?? '').split('?')[0] ?? '',
      remoteAddress: request.socket.remoteAddress,
    };
    options.log.warn(denial, 'local request denied');
    try {
      options.onDenied?.(denial);
    } catch (error) {
      options.log.error({ err: error }, 'onDenied threw');
    }
    sendJson(response, status, { error: reason });
    return false;
  }

  return {
    setPort(port) {
      allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
      allowedOrigins = new Set([...allowedHosts].map((host) => `http://${host}`));
    },

    checkSource(request, response, isApi) {
      // DNS rebinding: a foreign site whose name now resolves to 127.0.0.1 still sends its own name as Host.
      const host = request.headers.host?.toLowerCase();
      if (host === undefined || !allowedHosts.has(host)) {
        return deny(request, response, 403, `host ${describeValue(host)} is not this local chat`);
      }
      // CSRF: browsers name the page behind every cross-origin request (and POSTs); only ours may call us.
      const origin = request.headers.origin;
      if (origin !== undefined && !allowedOrigins.has(origin)) {
        return deny(request, response, 403, `origin ${describeValue(origin)} is not this local chat`);
      }
      // Fetch metadata: the browser's word that another site started this request. The API also refuses
      // other localhost ports (same-site), since its only legitimate browser caller is this page.
      const site = request.headers['sec-fetch-site'];
      if (site === 'cross-site' || (isApi && site === 'same-site')) {
        return deny(request, response, 403, `${site} request refused`);
      }
      return true;
    },

    checkToken(request, response) {
      // Bearer only, never a query parameter: urls end up in history, logs and Referer headers.
      const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
      if (!match?.[1]) {
        return deny(
          request,
          response,
          401,
          'missing bearer token: open the link that `warren start` printed',
        );
      }
      if (!timingSafeEqual(sha256(match[1]), tokenDigest)) {
        return deny(request, response, 401, 'wrong token: open the link that `warren start` printed');
      }
      return true;
    },
  };
}

/** Reads `<dataDir>/local-token`, or creates it (32 random bytes, base64url) readable by the owner only. */
export function loadOrCreateToken(dataDir: string): string {
  const file = path.join(dataDir, LOCAL_TOKEN_FILE);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token === '') throw new Error(`${file} is empty; delete it and a new token will be created`);
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  // 'wx' never overwrites a token another process created meanwhile; 0600 keeps other local users out.
  try {
    writeFileSync(file, `${token}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateToken(dataDir);
    throw error;
  }
  return token;
}

/** A caller-supplied value fit for a log line or an error message: quoted and cut short. */
export function describeValue(value: string | undefined): string {
  return value === undefined ? '(none)' : JSON.stringify(value.slice(0, 100));
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
