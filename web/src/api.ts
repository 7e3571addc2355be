// The host's HTTP API as the page uses it: the token in a header (never a url), JSON in and out, SSE read by fetch.
import { createParser } from 'eventsource-parser';

const TOKEN_KEY = 'warren-token';

/** The token from the link `warren start` printed (#token=…), kept for this tab only and taken off the url. */
export function takeToken(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match?.[1]) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', `${location.pathname}#/chat/main`);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export function createApi(token: string) {
  async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    const response = await fetch(path, { ...init, headers });
    const body = (await response.json().catch(() => ({}))) as { error?: string; text?: string };
    if (!response.ok)
      throw new ApiError(body.error ?? body.text ?? `HTTP ${response.status}`, response.status);
    return body as T;
  }
  const post = <T>(path: string, body: unknown) =>
    call<T>(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  return {
    get: <T>(path: string) => call<T>(path),
    post,
    /** One owner operation; resolves with the host's answer for the owner (ok false: refused, with why). */
    op: async (request: Record<string, unknown>): Promise<{ ok: boolean; text: string }> => {
      try {
        return await post('/api/ops', request);
      } catch (error) {
        return { ok: false, text: (error as Error).message };
      }
    },
    upload: (chatId: string, file: File) =>
      call<{ status: string; text: string }>(`/api/chats/${chatId}/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-file-name': encodeURIComponent(file.name) },
        body: file,
      }),
    /** Reads an SSE stream until aborted; onEvent gets each event's name and data. Rejects when the stream ends. */
    async stream(
      path: string,
      signal: AbortSignal,
      onEvent: (event: string, data: string) => void,
    ): Promise<void> {
      const response = await fetch(path, { headers: { authorization: `Bearer ${token}` }, signal });
      if (!response.ok || !response.body)
        throw new ApiError(`stream refused: HTTP ${response.status}`, response.status);
      const parser = createParser({ onEvent: (event) => onEvent(event.event ?? 'message', event.data) });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new ApiError('stream ended', 0);
        parser.feed(value);
      }
    },
  };
}

export type Api = ReturnType<typeof createApi>;
