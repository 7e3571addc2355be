// End to end: stopping is not failing, with the real runner in real containers (issue 14). The host is stopped as
// SIGTERM stops it (`warren.stop()`) while the agent's turn waits on the model, three times, then started again on
// the same data: the question is answered once, with no failure notice and no attempt used.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2eWarren, startE2eWarren, waitFor } from './e2e-harness.js';

let host: E2eWarren;

beforeAll(async () => {
  host = await startE2eWarren();
  host.addGroup('team');
}, 120_000);

afterAll(async () => {
  await host?.stop();
});

describe('restarts', () => {
  it('a stop during a running turn, three times in a row, then the answer arrives with no failure notice', async () => {
    // The model takes a minute to answer: every stop lands while the turn waits on it.
    host.fake.setDefault({ text: 'too late', delayMs: 60_000 });
    host.channel.receive({ chatId: 'team', text: 'a long question' });
    for (let stop = 1; stop <= 3; stop += 1) {
      const before = host.fake.requests.length;
      await waitFor(() => host.fake.requests.length > before, `the model call of run ${stop}`, 90_000);
      await host.restart();
      expect(host.channel.textsTo('team')).toEqual([]);
    }
    host.fake.setDefault({ text: 'the answer' });
    await waitFor(() => host.channel.textsTo('team').length > 0, 'the answer', 90_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(host.channel.textsTo('team')).toEqual(['the answer']);
    const chat = host.warren.store.chats.get('fake', 'team');
    expect(host.warren.store.messages.ofChat(chat?.id ?? -1).map((message) => message.status)).toEqual([
      'done',
    ]);
  }, 400_000);
});

describe('the emergency stop', () => {
  /** The agent containers of this install that are running, by the engine's own list. */
  const running = async () => {
    const { execFileSync } = await import('node:child_process');
    const names = execFileSync('docker', [
      'ps',
      '--filter',
      `label=warren.install=${host.installId}`,
      '--format',
      '{{.Names}}',
    ]);
    return String(names).trim().split('\n').filter(Boolean);
  };

  it('stops a real running container at once; /resume brings the held question back and it is answered', async () => {
    host.fake.setDefault({ text: 'too late', delayMs: 60_000 });
    const before = host.fake.requests.length;
    host.channel.receive({ chatId: 'team', text: 'another long question' });
    await waitFor(() => host.fake.requests.length > before, 'the model call', 90_000);
    expect(await running()).toHaveLength(1);
    const stop = await host.warren.ownerOps.perform({ op: 'emergency-stop' }, { kind: 'cli' });
    expect(stop.text).toMatch(/stopped the agents of team/);
    const stoppedAt = Date.now();
    while ((await running()).length > 0 && Date.now() - stoppedAt < 15_000)
      await new Promise((r) => setTimeout(r, 200));
    expect(await running()).toEqual([]);
    host.fake.setDefault({ text: 'the held answer' });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(host.channel.textsTo('team')).not.toContain('the held answer');
    await host.warren.ownerOps.perform({ op: 'resume-all' }, { kind: 'cli' });
    await waitFor(() => host.channel.textsTo('team').includes('the held answer'), 'the held answer', 90_000);
    expect(
      host.channel.textsTo('team').filter((text) => text.startsWith('❌') || text.startsWith('⚠️')),
    ).toEqual([]);
  }, 200_000);
});
