// `warren chat`: a terminal client of the local channel's API that posts typed lines and prints replies as they stream in.
import { createInterface } from 'node:readline';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { z } from 'zod';
import { backoffMs } from '../backoff.js';
import { parseJson } from '../protocol/read.js';

export interface ChatClientOptions {
  /** The local channel's base url, e.g. http://127.0.0.1:7777. */
  baseUrl: string;
  token: string;
  chatId: string;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  assistantName: string;
  signal?: AbortSignal;
}

export type ChatClientErrorKind = 'unreachable' | 'token-rejected' | 'failed';

/** Ends the client. The message is one line for the person at the terminal. */
export class ChatClientError extends Error {
  readonly kind: ChatClientErrorKind;

  constructor(message: string, kind: ChatClientErrorKind, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ChatClientError';
    this.kind = kind;
  }
}

const CHAT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15_000;
/** Three missed 15 s keepalives: the stream is dead even if the socket never said so. */
const STALL_MS = 45_000;

const chatEventSchema = z.object({
  eventId: z.number().int(),
  role: z.enum(['user', 'assistant']),
  senderName: z.string(),
  text: z.string(),
  at: z.number(),
});
const historySchema = z.object({ events: z.array(chatEventSchema) });
const typingSchema = z.object({ isTyping: z.boolean() });
const errorBodySchema = z.object({ error: z.string() });

/**
 * Runs until the input ends (Ctrl-D), Ctrl-C or the signal aborts. Rejects with a ChatClientError when the
 * server cannot be reached at start or refuses the token; a stream that drops later is retried with backoff.
 */
export async function runChatClient(options: ChatClientOptions): Promise<void> {
  if (!CHAT_ID_PATTERN.test(options.chatId)) {
    throw new ChatClientError(
      `chat id must match [a-z0-9][a-z0-9_-]{0,63}, not "${options.chatId}"`,
      'failed',
    );
  }
  if (options.signal?.aborted) return;
  const messagesPath = `/api/chats/${options.chatId}/messages`;
  const eventsPath = `/api/chats/${options.chatId}/events`;
  // Start after what exists now: the terminal shows the conversation from here on, not its whole history.
  let lastEventId = await fetchLatestEventId(options, messagesPath);

  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const isTerminal = isTty(options.input) && isTty(options.output);
  const lines = createInterface({
    input: options.input,
    output: isTerminal ? options.output : undefined,
    terminal: isTerminal,
  });
  let fatal: ChatClientError | null = null;
  let posting = Promise.resolve();
  let isTyping = false;

  const print = (line: string) => {
    if (!isTerminal) {
      options.output.write(`${line}\n`);
      return;
    }
    // Clear the half-typed prompt line, print, then redraw the prompt with what was being typed.
    options.output.write(`\r\x1b[K${line}\n`);
    lines.prompt(true);
  };
  const fail = (error: ChatClientError) => {
    fatal ??= error;
    stop.abort();
  };

  async function postLine(text: string): Promise<void> {
    if (stop.signal.aborted) return;
    try {
      const response = await request(options, messagesPath, {
        method: 'POST',
        body: JSON.stringify({ text }),
        signal: stop.signal,
      });
      if (response.status === 202) await response.arrayBuffer();
      else print(`not sent: ${await readError(response)}`);
    } catch (error) {
      if (error instanceof ChatClientError && error.kind === 'token-rejected') return fail(error);
      if (!stop.signal.aborted) print(`not sent: ${describe(error)}`);
    }
  }

  function handleEvent(event: EventSourceMessage): void {
    if (event.id !== undefined && /^\d+$/.test(event.id))
      lastEventId = Math.max(lastEventId, Number(event.id));
    // An event without an `event:` field is a message, as EventSource has it.
    const name = event.event ?? 'message';
    if (name === 'message') {
      const parsed = chatEventSchema.safeParse(parseJson(event.data));
      if (!parsed.success || parsed.data.role !== 'assistant') return;
      isTyping = false;
      print(`${parsed.data.senderName}: ${parsed.data.text}`);
    } else if (name === 'typing') {
      const parsed = typingSchema.safeParse(parseJson(event.data));
      if (!parsed.success) return;
      if (parsed.data.isTyping && !isTyping) print(`(${options.assistantName} is typing…)`);
      isTyping = parsed.data.isTyping;
    }
  }

  async function readStream(onOpen: () => void): Promise<void> {
    const attempt = new AbortController();
    const abortAttempt = () => attempt.abort();
    stop.signal.addEventListener('abort', abortAttempt, { once: true });
    let stallTimer: NodeJS.Timeout | undefined;
    const armStallTimer = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => attempt.abort(new Error('no data for 45 s')), STALL_MS);
    };
    armStallTimer();
    try {
      // Resume after the last event seen, so a reconnect prints what was missed and nothing twice.
      const response = await request(options, `${eventsPath}?after=${lastEventId}`, {
        signal: attempt.signal,
      });
      if (response.status !== 200 || !response.body) {
        throw new ChatClientError(await readError(response), 'failed');
      }
      onOpen();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const parser = createParser({ onEvent: handleEvent });
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        armStallTimer();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      clearTimeout(stallTimer);
      stop.signal.removeEventListener('abort', abortAttempt);
      attempt.abort();
    }
  }

  async function streamLoop(): Promise<void> {
    let failures = 0;
    while (!stop.signal.aborted) {
      let reason = 'the stream ended';
      try {
        await readStream(() => {
          if (failures > 0) print('(reconnected)');
          failures = 0;
        });
      } catch (error) {
        if (error instanceof ChatClientError && error.kind === 'token-rejected') return fail(error);
        reason = describe(error);
      }
      if (stop.signal.aborted) return;
      failures += 1;
      if (failures === 1) print(`(connection lost: ${reason}; reconnecting…)`);
      await delay(
        backoffMs(failures, { baseMs: FIRST_RETRY_MS, maxMs: MAX_RETRY_MS, jitter: 0.25 }),
        stop.signal,
      );
    }
  }

  const inputEnded = new Promise<void>((resolve) => {
    lines.once('close', resolve);
    stop.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  // Without a listener, readline only pauses on Ctrl-C; here it means quit, like Ctrl-D.
  lines.on('SIGINT', () => lines.close());
  lines.on('line', (line) => {
    const text = line.trim();
    // One at a time, so messages arrive in the order they were typed.
    if (text !== '') posting = posting.then(() => postLine(text));
    else if (isTerminal) lines.prompt();
  });

  const streaming = streamLoop();
  print(`Talking to ${options.assistantName} (chat ${options.chatId}). Ctrl-D to quit.`);
  if (isTerminal) {
    lines.setPrompt('you> ');
    lines.prompt();
  }
  try {
    await inputEnded;
    // Lines typed just before Ctrl-D (or piped in) still go out.
    await posting;
  } finally {
    stop.abort();
    await streaming;
    lines.close();
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (fatal) throw fatal;
}

async function fetchLatestEventId(options: ChatClientOptions, messagesPath: string): Promise<number> {
  const response = await request(options, `${messagesPath}?after=0`, { signal: options.signal });
  if (response.status !== 200) throw new ChatClientError(await readError(response), 'failed');
  const parsed = historySchema.safeParse(parseJson(await response.text()));
  if (!parsed.success) throw new ChatClientError(`unexpected answer from ${options.baseUrl}`, 'failed');
  return parsed.data.events.reduce((latest, event) => Math.max(latest, event.eventId), 0);
}

/** fetch with the token; turns "nothing listens there" and 401 into ChatClientErrors. */
async function request(
  options: ChatClientOptions,
  path: string,
  init: { method?: string; body?: string; signal?: AbortSignal },
): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(new URL(path, options.baseUrl), { ...init, headers });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw new ChatClientError(describeFetchFailure(options.baseUrl, error), 'unreachable', { cause: error });
  }
  if (response.status === 401) {
    await response.arrayBuffer().catch(() => undefined);
    throw new ChatClientError(
      `token rejected: ${options.baseUrl} refused it (do \`warren chat\` and \`warren start\` use the same data directory?)`,
      'token-rejected',
    );
  }
  return response;
}

function describeFetchFailure(baseUrl: string, error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  const code = cause instanceof Error ? (cause as NodeJS.ErrnoException).code : undefined;
  if (code === 'ECONNREFUSED') return `cannot reach ${baseUrl}: is \`warren start\` running?`;
  return `cannot reach ${baseUrl}: ${cause instanceof Error ? cause.message : describe(error)}`;
}

async function readError(response: Response): Promise<string> {
  const parsed = errorBodySchema.safeParse(parseJson(await response.text().catch(() => '')));
  return parsed.success ? parsed.data.error : `HTTP ${response.status}`;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function isTty(stream: NodeJS.ReadableStream | NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

function describe(error: unknown): string {
  if (error instanceof ChatClientError) return error.message;
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
