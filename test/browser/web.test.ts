// The owner's web page in real Chromium (Debian's, through playwright-core) against a real host with the fake agent
// runner: the chat (Markdown, history across a restart, the stop button) and the dashboard (approvals, tasks, spend,
// the emergency stop), with an axe-core scan of every page. Skipped where no Chromium is installed.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalChannel, type LocalChannel } from '../../src/channels/local.js';
import { silentLogger } from '../../src/log.js';
import { createTaskOps } from '../../src/tasks/tasks.js';
import { buildWebApp } from '../../web/build.js';
import { eventually, FakeAgentRunner } from '../fake-agent-runner.js';
import { startTestWarren, tempDir } from '../harness.js';

const CHROMIUM = process.env.WARREN_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789abcdef';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const REPLY = [
  '# Plan',
  '',
  '| fruit | count |',
  '| --- | --- |',
  '| apple | 3 |',
  '',
  '```',
  'npm run build',
  '```',
  '',
  'See [the docs](https://example.com/docs) and [bad](javascript:alert(1)).',
  '',
  '<script>window.hacked = 1</script>',
].join('\n');

let browser: Browser;
let webDir: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  webDir = await buildWebApp(tempDir('warren-web-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});
afterAll(async () => {
  await browser?.close();
});

async function startHost(options: { dataDir?: string; runner?: FakeAgentRunner } = {}) {
  let local: LocalChannel | null = null;
  const host = await startTestWarren({
    ...options,
    channels: () => {
      local = createLocalChannel({
        port: 0,
        token: TOKEN,
        assistantName: 'Andy',
        log: silentLogger(),
        webDir,
      });
      return [local];
    },
  });
  return { host, local: local as unknown as LocalChannel };
}

/** A page with the token link opened; CSP violations are collected (there must be none). */
async function open(local: LocalChannel, route = '') {
  const page = await browser.newPage({ viewport: { width: 360, height: 740 } });
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
  });
  await page.goto(`${local.url}/#token=${TOKEN}`);
  if (route) await go(page, route);
  return { page, violations };
}

function go(page: Page, hash: string) {
  return page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
}

/** axe-core, run through the debugging protocol (the page's CSP allows no injected script, rightly). */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const result = await page.evaluate<string[]>(
    'axe.run().then((result) => result.violations.map((violation) => `${violation.impact}: ${violation.id}: ${violation.nodes.map((node) => node.target).join(" ")}`))',
  );
  return result.filter((line) => /^(serious|critical)/.test(line));
}

// A real browser, a host restart and axe runs: seconds each, many more on a loaded machine (one took 20 s in CI).
describe.skipIf(!existsSync(CHROMIUM))('the owner web page in Chromium', { timeout: 120_000 }, () => {
  it('renders a reply as sanitized Markdown, keeps history across a restart, and passes axe', async () => {
    const runner = new FakeAgentRunner({ autoReply: () => REPLY });
    let { host, local } = await startHost({ runner });
    const { dataDir } = host;
    try {
      const { page, violations } = await open(local);
      await page.getByRole('textbox', { name: 'Message' }).fill('make a plan');
      await page.getByRole('textbox', { name: 'Message' }).press('Enter');
      const reply = page.locator('.message.assistant').last();
      await reply.locator('table').waitFor();
      expect(await reply.locator('td').allTextContents()).toEqual(['apple', '3']);
      expect(await reply.locator('h1').textContent()).toBe('Plan');
      expect(await reply.locator('pre code').textContent()).toContain('npm run build');
      expect(await reply.getByRole('button', { name: 'Copy code' }).count()).toBe(1);
      const link = reply.getByRole('link', { name: 'the docs' });
      expect(await link.getAttribute('href')).toBe('https://example.com/docs');
      expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
      // The javascript: link is not a link; the script is text, never run.
      expect(await reply.locator('a', { hasText: 'bad' }).count()).toBe(0);
      expect(await reply.textContent()).toContain('<script>window.hacked = 1</script>');
      expect(await page.evaluate('window.hacked')).toBeUndefined();
      expect(await page.getByRole('log').count()).toBe(1);
      expect(await seriousViolations(page)).toEqual([]);
      await page.emulateMedia({ colorScheme: 'dark' });
      expect(await seriousViolations(page)).toEqual([]);
      expect(violations).toEqual([]);
      await page.close();

      // A restart: the new host has only SQLite; the reply that arrived is there after a reload.
      await host.stop();
      ({ host, local } = await startHost({ dataDir, runner }));
      const again = await open(local);
      await again.page.locator('.message.assistant table').waitFor();
      expect(await again.page.locator('.message.user').allTextContents()).toEqual([
        expect.stringContaining('make a plan'),
      ]);
      await again.page.close();
    } finally {
      await host.stop();
    }
  });

  it('the stop button ends the running turn, which is not run again', async () => {
    // No auto-reply: the turn runs until something ends it.
    const runner = new FakeAgentRunner();
    const { host, local } = await startHost({ runner });
    try {
      const { page } = await open(local);
      await page.getByRole('textbox', { name: 'Message' }).fill('a slow job');
      await page.getByRole('button', { name: 'Send' }).click();
      await runner.waitForSessions(1);
      const stop = page.getByRole('button', { name: 'Stop' });
      await eventually(() => runner.sessions[0]?.prompts.length === 1, 5000, 'the prompt');
      await stop.click();
      await page.getByText("Group 'main': stopped its agent.").waitFor();
      expect(runner.sessions[0]?.stopReasons).toEqual(['stopped by the owner']);
      const chat = host.warren.store.chats.get('local', 'main');
      await eventually(
        () => host.warren.store.messages.ofChat(chat?.id ?? -1).at(-1)?.status === 'done',
        5000,
        'done',
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(runner.sessions).toHaveLength(1);
      const audit = host.warren.store.audit.find({ action: 'stop-turn' }, 10);
      expect(audit).toMatchObject([{ actor: 'web', decision: 'allow', groupFolder: 'main' }]);
      await page.close();
    } finally {
      await host.stop();
    }
  });

  it('the dashboard approves a pairing, pauses a task, shows spend, and pulls and lifts the emergency stop', async () => {
    const runner = new FakeAgentRunner({ autoReply: (prompt) => (prompt.includes('long') ? null : 'done') });
    const { host, local } = await startHost({ runner });
    const { store } = host.warren;
    try {
      const work = host.addGroup('work');
      host.channel.receive({
        chatId: 'dm-bob',
        text: 'hi',
        isDirect: true,
        senderId: 'bob',
        senderName: 'Bob',
      });
      const code = store.pairing.listPending(Date.now())[0]?.code;
      expect(code).toBeDefined();
      const tasks = createTaskOps({ store, now: Date.now, defaultTimezone: 'UTC' });
      const chat = { channel: 'fake', chatId: 'work' };
      const created = tasks.create({
        group: work,
        chat,
        prompt: 'report',
        scheduleKind: 'cron',
        schedule: '0 9 * * *',
        createdBy: 'test',
      });
      if (!created.ok) throw new Error(created.error);
      const day = new Date().toISOString().slice(0, 10);
      store.usage.record({
        groupFolder: 'work',
        at: Date.now(),
        day,
        model: 'm',
        inputTokens: 1234,
        outputTokens: 56,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        cost: 0.42,
      });

      const { page, violations } = await open(local, '#/dash/overview');
      await page.getByRole('cell', { name: 'work (work)' }).waitFor();
      expect(await seriousViolations(page)).toEqual([]);

      await go(page, '#/dash/approvals');
      await page.getByRole('button', { name: 'Approve Bob' }).click();
      await eventually(() => store.pairing.byCode(code as string)?.status === 'approved', 5000, 'approval');
      expect(store.audit.find({ action: 'pairing-approve' }, 5)[0]).toMatchObject({
        actor: 'web',
        decision: 'allow',
      });
      expect(await seriousViolations(page)).toEqual([]);

      await go(page, '#/dash/tasks');
      await page.getByRole('button', { name: 'Pause' }).click();
      await eventually(() => store.tasks.byId(created.value.id)?.status === 'paused', 5000, 'pause');
      expect(await seriousViolations(page)).toEqual([]);

      await go(page, '#/dash/spend');
      await page.getByRole('cell', { name: '0.42 USD' }).first().waitFor();
      expect(await page.getByRole('cell', { name: '1,234' }).count()).toBe(1);
      expect(await page.locator('.chart canvas').count()).toBeGreaterThan(0);
      expect(await seriousViolations(page)).toEqual([]);

      await go(page, '#/dash/audit');
      await page.getByRole('cell', { name: 'pairing-approve' }).waitFor();
      await page.getByLabel('Denials only').check();
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.getByRole('cell', { name: 'pairing-approve' }).waitFor({ state: 'detached' });
      expect(await seriousViolations(page)).toEqual([]);

      // The emergency stop: a running agent stops; a message sent meanwhile waits, then is answered on resume.
      host.channel.receive({ chatId: 'work', text: 'a long job' });
      await runner.waitForSessions(1);
      await page.getByRole('button', { name: 'Emergency stop' }).click();
      await eventually(() => runner.sessions[0]?.isClosed === true, 5000, 'the agent stopped');
      expect(store.emergencyStop.get()).toMatchObject({ by: 'web' });
      host.channel.receive({ chatId: 'work', text: 'and this' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(runner.sessions).toHaveLength(1);
      await page.getByRole('button', { name: 'Resume all' }).click();
      await eventually(() => host.channel.textsTo('work').includes('done'), 5000, 'the held work answered');
      expect(store.emergencyStop.get()).toBeFalsy();
      expect(violations).toEqual([]);
      await page.close();
    } finally {
      await host.stop();
    }
  });
});
