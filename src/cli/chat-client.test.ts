import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLocalChannel, type LocalChannel } from '../channels/local.js';
import { silentLogger } from '../log.js';
import type { InboundMessage } from '../types.js';
import { runChatClient } from './chat-client.js';

const TOKEN = 'client-test-token-0123456789abcdef';
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startChannel(port = 0) {
  const received: InboundMessage[] = [];
  const channel = createLocalChannel({ port, token: TOKEN, assistantName: 'Andy', log: silentLogger() });
  await channel.connect({ onMessage: (message) => received.push(message) });
  cleanups.push(() => channel.disconnect());
  return { channel, received };
}

function startClient(channel: LocalChannel, token = TOKEN) {
  const input = new PassThrough();
  const output = new PassThrough();
  let printed = '';
  output.setEncoding('utf8');
  output.on('data', (chunk: string) => {
    printed += chunk;
  });
  const abort = new AbortController();
  const done = runChatClient({
    baseUrl: channel.url,
    token,
    chatId: 'main',
    input,
    output,
    assistantName: 'Andy',
    signal: abort.signal,
  });
  cleanups.push(async () => {
    abort.abort();
    await done.catch(() => undefined);
  });
  return {
    input,
    done,
    abort,
    printed: () => printed,
    waitForOutput: (fragment: string) => waitUntil(() => printed.includes(fragment), `output "${fragment}"`),
  };
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('runChatClient', () => {
  it('posts a typed line to onMessage and prints the reply sent to that chat', async () => {
    const { channel, received } = await startChannel();
    const client = startClient(channel);
    await client.waitForOutput('Ctrl-D to quit');
    client.input.write('hello from the terminal\n\n');
    await waitUntil(() => received.length === 1, 'the message to arrive');
    expect(received[0]).toMatchObject({ channel: 'local', chatId: 'main', text: 'hello from the terminal' });
    await channel.setTyping?.('main', true);
    await client.waitForOutput('(Andy is typing…)');
    await channel.send({ chatId: 'main', text: 'hello back\nsecond line', idempotencyKey: 'r1' });
    await client.waitForOutput('Andy: hello back\nsecond line\n');
    client.input.end();
    await client.done;
    expect(received).toHaveLength(1);
    // Its own message is not echoed back to the terminal.
    expect(client.printed()).not.toContain('hello from the terminal');
  });

  it('starts after the events that existed when it connected', async () => {
    const { channel } = await startChannel();
    await channel.send({ chatId: 'main', text: 'old news', idempotencyKey: 'o1' });
    const client = startClient(channel);
    await client.waitForOutput('Ctrl-D to quit');
    await channel.send({ chatId: 'main', text: 'fresh news', idempotencyKey: 'f1' });
    await client.waitForOutput('Andy: fresh news');
    expect(client.printed()).not.toContain('old news');
  });

  it('sends the lines piped in before the input ended', async () => {
    const { channel, received } = await startChannel();
    const client = startClient(channel);
    client.input.end('first\nsecond\n');
    await client.done;
    expect(received.map((message) => message.text)).toEqual(['first', 'second']);
  });

  it('resolves when the signal aborts', async () => {
    const { channel } = await startChannel();
    const client = startClient(channel);
    await client.waitForOutput('Ctrl-D to quit');
    client.abort.abort();
    await expect(client.done).resolves.toBeUndefined();
  });

  it('reconnects after the stream drops and prints what it missed', async () => {
    const first = await startChannel();
    const port = first.channel.port;
    const client = startClient(first.channel);
    await client.waitForOutput('Ctrl-D to quit');
    await first.channel.disconnect();
    await client.waitForOutput('connection lost');
    const second = await startChannel(port);
    await second.channel.send({ chatId: 'main', text: 'back again', idempotencyKey: 'b1' });
    await client.waitForOutput('Andy: back again');
    expect(client.printed()).toContain('(reconnected)');
  });

  it('rejects with "token rejected" when the token is wrong', async () => {
    const { channel } = await startChannel();
    const client = startClient(channel, 'wrong-token-0123456789abcdef');
    await expect(client.done).rejects.toThrow(/^token rejected: /);
  });

  it('asks whether warren start is running when nothing listens on the port', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await expect(
      runChatClient({
        baseUrl: `http://127.0.0.1:${port}`,
        token: TOKEN,
        chatId: 'main',
        input: new PassThrough(),
        output: new PassThrough(),
        assistantName: 'Andy',
      }),
    ).rejects.toThrow('is `warren start` running?');
  });
});
