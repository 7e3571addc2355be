// HTTP plumbing of the local channel: security headers, JSON answers, posted messages read and checked, SSE framing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ChatEvent } from './local-events.js';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
/** The page: only our own files may load; no inline code, no plugins, no framing, no form posts anywhere. */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
const MAX_BODY_BYTES = 64 * 1024;
const MAX_TEXT_BYTES = 32 * 1024;

const postMessageSchema = z.object({
  text: z.string(),
  senderName: z.string().max(100).optional(),
});

export type PostedMessage =
  | { ok: true; text: string; senderName?: string }
  | { ok: false; status: number; error: string; headers?: Record<string, string> };

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

/** Collects the body up to limit bytes as text; null as soon as it is larger (the rest is never buffered). */
export async function readBody(request: IncomingMessage, limit: number): Promise<string | null> {
  return (await readBytes(request, limit))?.toString('utf8') ?? null;
}

export function readBytes(request: IncomingMessage, limit: number): Promise<Buffer | null> {
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
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** A posted message: JSON {"text", "senderName"?} of at most 64 KiB, its text not blank and at most 32 KiB. */
export async function readPostedMessage(request: IncomingMessage): Promise<PostedMessage> {
  if (!/^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '')) {
    return { ok: false, status: 415, error: 'content-type must be application/json' };
  }
  const body = await readBody(request, MAX_BODY_BYTES);
  if (body === null) {
    const error = 'request body is larger than 64 KiB';
    return { ok: false, status: 413, error, headers: { connection: 'close' } };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, status: 400, error: 'request body is not valid JSON' };
  }
  const parsed = postMessageSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, status: 400, error: 'body must be {"text": string, "senderName"?: string}' };
  }
  const { text, senderName } = parsed.data;
  if (text.trim() === '') return { ok: false, status: 400, error: 'text is empty' };
  const textBytes = Buffer.byteLength(text, 'utf8');
  if (textBytes > MAX_TEXT_BYTES) {
    const size = Math.ceil(textBytes / 1024);
    return { ok: false, status: 413, error: `text is ${size} KiB; a message can be at most 32 KiB` };
  }
  return { ok: true, text, senderName };
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
