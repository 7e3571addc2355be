// More of the owner's web page in real Chromium against a real host (fake agent runner): uploads into the group's
// folder, switching between the owner's local chats, a new conversation, paging a long chat, and the spend page
// reading what the real credential proxy recorded. Skipped where no Chromium is installed.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalChannel, type LocalChannel } from '../../src/channels/local.js';
import { registerGroup } from '../../src/intake/registration.js';
import { silentLogger } from '../../src/log.js';
import { createAgentProxy } from '../../src/sandbox/agent-proxy.js';
import { groupDir } from '../../src/sandbox/group-folder.js';
import { buildWebApp } from '../../web/build.js';
import { eventually, FakeAgentRunner } from '../fake-agent-runner.js';
import { startFakeModelApi } from '../fake-model-api.js';
import { startTestWarren, tempDir } from '../harness.js';

const CHROMIUM = process.env.WARREN_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'browser-test-token-0123456789abcdef';

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
  if (webDir) rmSync(webDir, { recursive: true, force: true });
});

async function startHost(options: { runner?: FakeAgentRunner; env?: Record<string, string> } = {}) {
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

async function open(local: LocalChannel, route = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 360, height: 740 } });
  await page.goto(`${local.url}/#token=${TOKEN}`);
  if (route) await page.evaluate(`location.hash = ${JSON.stringify(route)}`);
  return page;
}

const status = (page: Page) => page.getByRole('status');
const bodies = async (page: Page, role: 'user' | 'assistant') =>
  (await page.locator(`.message.${role} .body`).allTextContents()).map((text) => text.trim());

// A browser's first page takes seconds on a loaded machine: the same room as web.test.ts gives.
describe.skipIf(!existsSync(CHROMIUM))(
  'the owner web page in Chromium, continued',
  { timeout: 120_000 },
  () => {
    it('uploads a file into the group folder and names it to the agent; refuses one over the cap', async () => {
      const runner = new FakeAgentRunner({ autoReply: () => 'got it' });
      const { host, local } = await startHost({ runner, env: { WARREN_MEDIA_MAX_MB: '1' } });
      const media = join(groupDir(host.dataDir, 'main'), 'media');
      try {
        const page = await open(local);
        await page.locator('input[type=file]').setInputFiles({
          name: 'notes.txt',
          mimeType: 'text/plain',
          buffer: Buffer.from('buy milk\n'),
        });
        await status(page)
          .getByText(/notes\.txt" saved: media\//)
          .waitFor();
        const saved = readdirSync(media);
        expect(saved).toHaveLength(1);
        expect(readFileSync(join(media, saved[0] as string), 'utf8')).toBe('buy milk\n');
        await runner.waitForSessions(1);
        // The prompt is XML (the quotes escaped): the agent is told the name it was sent under and where it is.
        expect(runner.sessions[0]?.prompts[0]?.prompt).toContain(
          `[document &quot;notes.txt&quot; saved: media/${saved[0]}]`,
        );
        await page.locator('.message.assistant', { hasText: 'got it' }).waitFor();
        expect(await bodies(page, 'user')).toEqual([`[document "notes.txt" saved: media/${saved[0]}]`]);

        // Over the 1 MB cap: a clear refusal, nothing written, nothing told to the agent.
        const stored = () =>
          host.warren.store.messages.ofChat(host.warren.store.chats.get('local', 'main')?.id ?? -1);
        const before = stored().length;
        await page.locator('input[type=file]').setInputFiles({
          name: 'big.bin',
          mimeType: 'application/octet-stream',
          buffer: Buffer.alloc(1024 * 1024 + 1),
        });
        await status(page).getByText('Upload failed: the file is larger than 1 MB').waitFor();
        expect(readdirSync(media)).toEqual(saved);
        expect(stored()).toHaveLength(before);
        expect(runner.sessions.flatMap((session) => session.prompts)).toHaveLength(1);
        await page.close();
      } finally {
        await host.stop();
      }
    });

    it('switches between two local chats of two groups: each gets its own messages and shows its own history', async () => {
      const runner = new FakeAgentRunner({
        autoReply: (prompt) => (prompt.includes('for work') ? 'work here' : 'main here'),
      });
      const { host, local } = await startHost({ runner });
      const { store } = host.warren;
      try {
        const chat = { channel: 'local', chatId: 'work' };
        registerGroup(
          store,
          host.dataDir,
          { folder: 'work', name: 'Work', chat, isDirect: true, trigger: 'always' },
          Date.now(),
        );
        const page = await open(local);
        const message = page.getByRole('textbox', { name: 'Message' });
        await message.fill('for main');
        await message.press('Enter');
        await page.locator('.message.assistant', { hasText: 'main here' }).waitFor();

        await page.getByRole('combobox', { name: 'Chat' }).selectOption('work');
        await page.waitForURL(/#\/chat\/work$/);
        await page
          .getByRole('combobox', { name: 'Chat' })
          .locator('option[value=work][selected]')
          .waitFor({ state: 'attached' });
        expect(await bodies(page, 'user')).toEqual([]);
        await message.fill('for work');
        await message.press('Enter');
        await page.locator('.message.assistant', { hasText: 'work here' }).waitFor();
        // Only this chat's conversation: main's reply did not leak in over the stream of the chat left behind.
        expect(await bodies(page, 'user')).toEqual(['for work']);
        expect(await bodies(page, 'assistant')).toEqual(['work here']);
        const texts = (chatId: string) =>
          store.messages.ofChat(store.chats.get('local', chatId)?.id ?? -1).map((row) => row.text);
        expect(texts('work')).toEqual(['for work']);
        expect(texts('main')).toEqual(['for main']);
        expect(runner.sessions.map((session) => session.request.group.folder).sort()).toEqual([
          'main',
          'work',
        ]);

        await page.getByRole('combobox', { name: 'Chat' }).selectOption('main');
        await page.locator('.message.assistant', { hasText: 'main here' }).waitFor();
        expect(await bodies(page, 'user')).toEqual(['for main']);
        expect(await bodies(page, 'assistant')).toEqual(['main here']);
        await page.close();
      } finally {
        await host.stop();
      }
    });

    it('a new conversation clears the group’s stored session and stops its running agent', async () => {
      const runner = new FakeAgentRunner();
      const { host, local } = await startHost({ runner });
      const { store } = host.warren;
      const main = store.groups.byFolder('main');
      try {
        const page = await open(local);
        await page.getByRole('textbox', { name: 'Message' }).fill('remember 42');
        await page.getByRole('button', { name: 'Send' }).click();
        await runner.waitForSessions(1);
        await eventually(() => runner.sessions[0]?.prompts.length === 1, 5000, 'the prompt');
        runner.sessions[0]?.reply('remembered', 'session-42');
        await eventually(
          () => store.groups.session(main?.id ?? -1) === 'session-42',
          5000,
          'the stored session',
        );
        expect(runner.sessions[0]?.isClosed).toBe(false);

        await page.getByRole('button', { name: 'New conversation' }).click();
        await status(page).getByText("Group 'main': stopped its agent; a new conversation starts.").waitFor();
        expect(store.groups.session(main?.id ?? -1)).toBeNull();
        expect(runner.sessions[0]?.isClosed).toBe(true);
        expect(store.audit.find({ action: 'new-session' }, 5)).toMatchObject([
          { actor: 'web', decision: 'allow' },
        ]);

        // The next message starts a fresh agent that resumes nothing.
        await page.getByRole('textbox', { name: 'Message' }).fill('hello again');
        await page.getByRole('button', { name: 'Send' }).click();
        await runner.waitForSessions(2, 5000);
        expect(runner.sessions[1]?.request.sessionId).toBeNull();
        await page.close();
      } finally {
        await host.stop();
      }
    });

    it('pages a long chat: the newest first, then older pages without duplicates or gaps', async () => {
      const { host, local } = await startHost();
      const { store } = host.warren;
      try {
        const chatRef = store.chats.get('local', 'main')?.id ?? -1;
        const start = Date.now() - 3_600_000;
        const names = Array.from({ length: 120 }, (_, i) => `note ${String(i + 1).padStart(3, '0')}`);
        // Pairs share a timestamp, so a page boundary falls inside an instant (the cursor's tie-break is tested).
        names.forEach((text, i) => {
          const at = start + Math.floor(i / 2) * 1000;
          store.messages.insert({
            chatRef,
            externalId: `x-${i}`,
            senderId: 'local-owner',
            senderName: 'You',
            text,
            sentAt: at,
            receivedAt: at,
            isTrigger: false,
          });
        });
        const page = await open(local);
        const older = page.getByRole('button', { name: 'Show older messages' });
        await older.waitFor();
        expect(await bodies(page, 'user')).toEqual(names.slice(70));
        // Scrolled to the newest: the last message is inside the scrolled area, the first of the page above it.
        const area = await page.locator('main.scroller').boundingBox();
        const newest = await page.locator('.message.user').last().boundingBox();
        const oldest = await page.locator('.message.user').first().boundingBox();
        if (!area || !newest || !oldest) throw new Error('the messages are not laid out');
        expect(newest.y + newest.height).toBeLessThanOrEqual(area.y + area.height + 1);
        expect(newest.y).toBeGreaterThanOrEqual(area.y);
        expect(oldest.y).toBeLessThan(area.y);

        await older.scrollIntoViewIfNeeded();
        const anchor = page.locator('.message.user', { hasText: 'note 071' });
        const anchorBefore = (await anchor.boundingBox())?.y;
        await older.click();
        await expect.poll(() => bodies(page, 'user')).toEqual(names.slice(20));
        // The older page goes in above without moving what the reader was looking at.
        expect(Math.abs(((await anchor.boundingBox())?.y ?? 0) - (anchorBefore ?? -99))).toBeLessThan(2);
        await older.click();
        await expect.poll(() => bodies(page, 'user')).toEqual(names);
        await older.waitFor({ state: 'hidden' });
        await page.close();
      } finally {
        await host.stop();
      }
    });

    it('the spend page shows the usage the credential proxy recorded for a model call', async () => {
      const { host, local } = await startHost();
      const { store } = host.warren;
      const dir = tempDir('warren-proxy-');
      const fake = await startFakeModelApi({ expectedApiKey: 'sk-ant-test' });
      fake.setDefault({ usage: { input_tokens: 1500, output_tokens: 200 } });
      const socketPath = join(dir, 'work.sock');
      const proxy = createAgentProxy({
        config: {
          groupDailyBudget: 5,
          groupMonthlyBudget: 0,
          dailyBudget: 0,
          monthlyBudget: 0,
          modelBaseUrl: fake.url,
          // Per million tokens: 1500 in at 100 and 200 out at 1000 cost 0.35.
          modelPrices: { 'claude-test': { input: 100, output: 1000, cacheRead: 0, cacheWrite: 0 } },
          currency: 'USD',
          timezone: 'UTC',
        },
        credential: { kind: 'api-key', apiKey: 'sk-ant-test' },
        log: silentLogger(),
        store,
        audit: (entry) => store.audit.record(entry, Date.now()),
        now: Date.now,
        runs: new Map([['work', { runId: 'run-work', budgetRefused: false, emit: () => {} }]]),
      });
      try {
        host.addGroup('work');
        await proxy.listen('work', socketPath);
        const body = JSON.stringify({
          model: 'claude-test',
          max_tokens: 200,
          messages: [{ role: 'user', content: 'hi' }],
        });
        const statusCode = await new Promise<number>((resolve, reject) => {
          const request = http.request({ socketPath, method: 'POST', path: '/v1/messages' }, (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          });
          request.on('error', reject);
          request.end(body);
        });
        expect(statusCode).toBe(200);
        await eventually(
          () => store.usage.spent('work', '2000-01-01', '2100-01-01') > 0,
          5000,
          'the usage row',
        );

        const page = await open(local, '#/dash/spend');
        const today = new Date().toISOString().slice(0, 10);
        const row = page.getByRole('row').filter({ hasText: today }).filter({ hasText: 'work' });
        await row.waitFor();
        expect(await row.getByRole('cell').allTextContents()).toEqual([
          today,
          'work',
          '1',
          '1,500',
          '200',
          '0.35 USD',
          '5.00 USD',
        ]);
        await page.close();
      } finally {
        await proxy.close();
        await fake.close();
        await host.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
