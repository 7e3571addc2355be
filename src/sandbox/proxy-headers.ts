// Which headers cross the credential proxy in each direction, and how the host's credential is attached.
import type http from 'node:http';
import { CREDENTIAL_LIKE_NAME, type ModelCredential } from './credentials.js';

const OAUTH_BETA = 'oauth-2025-04-20';
/** Hop-by-hop headers end at the proxy, and so does every proxy-* header. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const isHopByHop = (name: string) => HOP_BY_HOP.includes(name) || name.startsWith('proxy-');
/**
 * Set by the proxy itself (accept-encoding is forced to identity so the meter can read the bytes it passes on), or
 * about the client's address.
 */
const PROXY_OWNED = ['host', 'content-length', 'accept-encoding', 'expect', 'forwarded', 'via', 'x-real-ip'];

/** The headers sent upstream: the client's own minus credentials and hop-by-hop ones, plus the real credential. */
export function upstreamHeaders(
  incoming: http.IncomingHttpHeaders,
  credential: ModelCredential,
  contentLength: number,
): http.OutgoingHttpHeaders {
  const listedInConnection = String(incoming.connection ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase());
  const dropped = new Set([...PROXY_OWNED, ...listedInConnection]);
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || isHopByHop(name) || dropped.has(name)) continue;
    if (CREDENTIAL_LIKE_NAME.test(name) || name.startsWith('x-forwarded-')) continue;
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
      .filter((beta) => beta !== '' && beta !== OAUTH_BETA);
    headers['anthropic-beta'] = [...betas, OAUTH_BETA].join(',');
  }
  return headers;
}

/** The upstream's response headers as the client gets them. */
export function clientHeaders(incoming: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || isHopByHop(name) || name === 'set-cookie') continue;
    headers[name] = value;
  }
  return headers;
}
