// End to end: the model API cannot be reached (issue 17, "fast, honest failures"). The real runner and Claude Code
// in a real container, with Warren's own retry settings (no test override): the chat hears within 15 s, in words
// that name no internal address, and the final failure comes within 2 minutes. Nothing is lost on the way.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2eWarren, startE2eWarren, waitFor } from './e2e-harness.js';

let host: E2eWarren;
let closedUrl: string;

beforeAll(async () => {
  // A port nothing listens on: take a free one and let it go. Reached as 127.0.0.2 (loopback too, so refused at
  // once), which sets it apart from the relay's 127.0.0.1 inside the container that the chat must never see.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  closedUrl = `https://127.0.0.2:${port}`;
  host = await startE2eWarren({
    env: { ANTHROPIC_BASE_URL: closedUrl, WARREN_RETRY_BASE_MS: '2000' },
    agentEnv: {},
  });
  host.addGroup('team');
}, 120_000);

afterAll(async () => {
  await host?.stop();
});

describe('the model API is down', () => {
  it('tells the chat within 15 s in plain words, and gives up within 2 minutes', async () => {
    const sentAt = Date.now();
    host.channel.receive({ chatId: 'team', text: 'are you there?' });
    await waitFor(() => host.channel.textsTo('team').length > 0, 'the first notice', 60_000);
    const firstMs = Date.now() - sentAt;
    await waitFor(
      () => host.channel.textsTo('team').some((text) => text.includes('could not answer')),
      'the final failure',
      180_000,
    );
    const finalMs = Date.now() - sentAt;
    const texts = host.channel.textsTo('team');
    console.log(`[e2e timing] model down: first notice ${firstMs} ms, final failure ${finalMs} ms`);
    expect(firstMs).toBeLessThan(15_000);
    expect(finalMs).toBeLessThan(120_000);
    expect(texts[0]).toMatch(
      /^⚠️ Something went wrong while answering \(the model API at https:\/\/127\.0\.0\.2:\d+ could not be reached \(ECONNREFUSED\)\)\. Trying again/,
    );
    // The proxy's socket, the relay's loopback port, the container's paths: none of Warren's insides.
    for (const text of texts) expect(text).not.toMatch(/127\.0\.0\.1|localhost|\/run\/|\.sock|warren-proxy/);
    const chat = host.warren.store.chats.get('fake', 'team');
    expect(host.warren.store.messages.ofChat(chat?.id ?? -1).map((message) => message.status)).toEqual([
      'failed',
    ]);
  }, 240_000);
});
