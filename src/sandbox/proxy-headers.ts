// Which headers cross the credential proxy in each direction, and how the host's credential is attached.
import type http from 'node:http';
import { CREDENTIAL_LIKE_NAME, type ModelCredential } from './credentials.js';

const OAUTH_BETA = 'oauth-2025-04-20';
/** Hop-by-hop headers end at the proxy, and so does every proxy-* header. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
/** Set by the proxy itself (identity encoding, so the meter can read the bytes), or about the client's address. */
const PROXY_OWNED = ['host', 'content-length', 'accept-encoding', 'expect', 'forwarded', 'via', 'x-real-ip'];

const list = (value: unknown) =>
  String(value ?? '')
    .split(',')
    .map((item) => item.trim());

/** The headers but hop-by-hop ones and those `drop` names. */
function keep(incoming: http.IncomingHttpHeaders, drop: (name: string) => boolean): http.OutgoingHttpHeaders {
  return Object.fromEntries(
    Object.entries(incoming).filter(
      ([name, value]) =>
        value !== undefined && !HOP_BY_HOP.includes(name) && !name.startsWith('proxy-') && !drop(name),
    ),
  );
}

/** The headers sent upstream: the client's own minus credentials and hop-by-hop ones, plus the real credential. */
export function upstreamHeaders(
  incoming: http.IncomingHttpHeaders,
  credential: ModelCredential,
  contentLength: number,
): http.OutgoingHttpHeaders {
  const dropped = new Set([...PROXY_OWNED, ...list(incoming.connection).map((name) => name.toLowerCase())]);
  const headers = keep(
    incoming,
    (name) => dropped.has(name) || CREDENTIAL_LIKE_NAME.test(name) || name.startsWith('x-forwarded-'),
  );
  headers['content-length'] = contentLength;
  headers['accept-encoding'] = 'identity';
  if (credential.kind === 'api-key') {
    headers['x-api-key'] = credential.apiKey;
  } else {
    headers.authorization = `Bearer ${credential.token}`;
    // The API accepts an OAuth token only with this beta flag; keep the client's own flags beside it.
    const betas = list(headers['anthropic-beta']).filter((beta) => beta !== '' && beta !== OAUTH_BETA);
    headers['anthropic-beta'] = [...betas, OAUTH_BETA].join(',');
  }
  return headers;
}

/** The upstream's response headers as the client gets them. */
export const clientHeaders = (incoming: http.IncomingHttpHeaders) =>
  keep(incoming, (name) => name === 'set-cookie');
