// Which headers cross the credential proxy in each direction, and how the host's credential is attached.
import type http from 'node:http';

export type ModelCredential = { kind: 'api-key'; apiKey: string } | { kind: 'oauth'; token: string };

const OAUTH_BETA = 'oauth-2025-04-20';

const HOP_BY_HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
/**
 * Whatever credential the container sends (a placeholder, or one it got hold of) never goes upstream: the only
 * identity upstream sees is the host's, so every call is one Warren metered and could have refused.
 */
const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'x-api-key', 'cookie']);
const CREDENTIAL_LIKE = /api[-_]?key|auth|token|secret|passw|cookie/;
/** Set by the proxy itself; accept-encoding is forced to identity so the meter can read the bytes it passes on. */
const PROXY_OWNED_HEADERS = new Set([
  'host',
  'content-length',
  'accept-encoding',
  'expect',
  'forwarded',
  'via',
]);

/** The headers sent upstream: the client's own minus credentials and hop-by-hop ones, plus the real credential. */
export function upstreamHeaders(
  incoming: http.IncomingHttpHeaders,
  credential: ModelCredential,
  contentLength: number,
): http.OutgoingHttpHeaders {
  const listedInConnection = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase()),
  );
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP_HEADERS.has(name) || listedInConnection.has(name) || name.startsWith('proxy-')) continue;
    if (CREDENTIAL_HEADERS.has(name) || CREDENTIAL_LIKE.test(name) || PROXY_OWNED_HEADERS.has(name)) continue;
    if (name.startsWith('x-forwarded-') || name === 'x-real-ip') continue;
    headers[name] = value;
  }
  headers['content-length'] = contentLength;
  headers['accept-encoding'] = 'identity';
  if (credential.kind === 'api-key') {
    headers['x-api-key'] = credential.apiKey;
  } else {
    headers.authorization = `Bearer ${credential.token}`;
    // The API accepts an OAuth token only with this beta flag; keep the client's own flags beside it.
    const betas = String(headers['anthropic-beta'] ?? '')
      .split(',')
      .map((beta) => beta.trim())
      .filter((beta) => beta !== '');
    if (!betas.includes(OAUTH_BETA)) betas.push(OAUTH_BETA);
    headers['anthropic-beta'] = betas.join(',');
  }
  return headers;
}

/** The upstream's response headers as the client gets them. */
export function clientHeaders(incoming: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || name === 'set-cookie') continue;
    headers[name] = value;
  }
  return headers;
}
