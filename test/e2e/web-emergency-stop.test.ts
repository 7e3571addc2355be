// End to end in real Chromium (issue 16): the dashboard's emergency stop stops a real running agent container, and
// Resume all brings the held message back, answered with no failure notice. A real host with real Docker
// containers and the fake model API; the page is the built web app the host serves. Skipped where no Chromium is
// installed (test/browser/web.test.ts covers the same buttons against a fake runner).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWebApp } from '../../web/build.js';
import { type E2eWarren, startE2eWarren, waitFor } from './e2e-harness.js';

const CHROMIUM = process.env.WARREN_CHROMIUM ?? '/usr/bin/chromium';

let host: E2eWarren;
let browser: Browser;

/** The containers of this install that are running, by the engine's own list. */
function running(): string[] {
  const names = execFileSync('docker', [
    'ps',
    '--filter',
    `label=warren.install=${host.installId}`,
    '--format',
    '{{.Names}}',
  ]);
  return String(names).trim().split('\n').filter(Boolean);
}

async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe.skipIf(!existsSync(CHROMIUM))('the emergency stop from the web page, with real containers', () => {
  beforeAll(async () => {
    // The host serves dist/web (read once at start): built from the current web/ first, as `npm run build` does.
    await buildWebApp();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    host = await startE2eWarren({ isLocalChatEnabled: true });
    host.addGroup('team');
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await host?.stop();
  });

  it('stops a real running container; Resume all brings the held message back and it is answered', async () => {
    const local = host.local;
    if (!local) throw new Error('the local chat is off');
    // The model takes a minute: the agent's container is running and waiting on it when the stop lands.
    host.fake.setDefault({ text: 'too late', delayMs: 60_000 });
    host.channel.receive({ chatId: 'team', text: 'a long question' });
    await waitFor(() => host.fake.requests.length > 0, 'the model call', 120_000);
    expect(running()).toHaveLength(1);
    const startsBefore = host.starts.length;

    const page = await browser.newPage({ viewport: { width: 1024, height: 800 } });
    await page.goto(`${local.url}/#token=${host.localToken}`);
    await page.evaluate(`location.hash = '#/dash/overview'`);
    await page.getByRole('cell', { name: 'team (team)' }).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Emergency stop' }).click();

    // The container is gone from the engine's list, not just forgotten by the host.
    const clickedAt = Date.now();
    await until(() => running().length === 0, 'the container to stop', 15_000);
    const stopSeconds = (Date.now() - clickedAt) / 1000;
    // The page shows the stop is on: the op's answer, the overview's alert, the button turned to Resume all.
    await page.getByRole('status').getByText('🛑 Emergency stop: stopped the agents of team').waitFor();
    await page.getByRole('alert').getByText('Emergency stop is on (by web').waitFor();
    await page.getByRole('button', { name: 'Resume all' }).waitFor();
    expect(host.warren.store.emergencyStop.get()).toMatchObject({ by: 'web' });

    // The model is quick now, yet nothing runs while the stop is on: the message is held, not answered or failed.
    host.fake.setDefault({ text: 'the held answer' });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(running()).toEqual([]);
    expect(host.starts).toHaveLength(startsBefore);
    expect(host.channel.textsTo('team')).toEqual([]);

    const resumedAt = Date.now();
    await page.getByRole('button', { name: 'Resume all' }).click();
    await page.getByRole('status').getByText('▶️ Resumed').waitFor();
    await page.getByRole('button', { name: 'Emergency stop' }).waitFor();
    await waitFor(() => host.channel.textsTo('team').length > 0, 'the held answer', 120_000);
    const answerSeconds = (Date.now() - resumedAt) / 1000;
    // A moment for a late notice to show up, had there been one.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(host.channel.textsTo('team')).toEqual(['the held answer']);
    expect(host.starts.length).toBeGreaterThan(startsBefore);
    expect(host.warren.store.emergencyStop.get()).toBeFalsy();
    await page.close();
    console.info(
      `[web-emergency-stop] stopped in ${stopSeconds} s; answered ${answerSeconds} s after resume`,
    );
  }, 360_000);
});
