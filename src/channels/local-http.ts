// HTTP plumbing of the local channel: security headers, JSON answers, capped body reading, SSE framing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChatEvent } from './local-events.js';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

export function securityHeaders(csp: string): Record<string, string> {
  return {
    'content-security-policy': csp,
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    // Other sites may not embed our scripts or share a browsing context group with the page.
    'cross-origin-resource-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': 'no-store',
  };
}

/** Every API answer and error: JSON, never cached, never framed, never shared with another origin. */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): void {
  response.writeHead(status, {
    ...securityHeaders(API_CSP),
    'content-type': 'application/json; charset=utf-8',
    ...extraHeaders,
  });
  response.end(JSON.stringify(body));
}

export function methodNotAllowed(response: ServerResponse, allow: string): void {
  sendJson(response, 405, { error: `method not allowed; use ${allow}` }, { allow });
}

/** Collects the body up to limit bytes; null as soon as it is larger (the rest is never buffered). */
export function readBody(request: IncomingMessage, limit: number): Promise<string | null> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.off('data', onData);
        // Discard the rest as it arrives; the 413 closes the connection.
        request.resume();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export function parseCursor(value: string | string[] | null | undefined): number | null | 'invalid' {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return 'invalid';
  const cursor = Number(value);
  return Number.isSafeInteger(cursor) ? cursor : 'invalid';
}

export function formatMessageEvent(event: ChatEvent): string {
  // JSON.stringify escapes newlines, so the data is always a single SSE line.
  return `id: ${event.eventId}\nevent: message\ndata: ${JSON.stringify(event)}\n\n`;
}

/** Typing carries no id: it is a passing state, not history to resume from. */
export function formatTypingEvent(isTyping: boolean): string {
  return `event: typing\ndata: ${JSON.stringify({ isTyping })}\n\n`;
}
