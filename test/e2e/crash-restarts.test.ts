// End to end, the real `warren start` in a child process, killed with SIGKILL while its agent's turn waits on the
// model (issue 14): a crash costs no attempt. Two crashes and one failure of the agent's own (its container killed)
// still leave the message a retry, and its answer arrives through the fake Telegram Bot API. Orphaned containers
// go at each start.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databasePath } from '../../src/app.js';
import { createRuntime } from '../../src/image/engine-setup.js';
import { registerGroup } from '../../src/intake/registration.js';
import { installIdFor } from '../../src/main.js';
import { openStore } from '../../src/store/store.js';
import { type FakeModelApi, startFakeModelApi } from '../fake-model-api.js';
import { type FakeTelegramApi, startFakeTelegramApi } from '../fake-telegram-api.js';
import { fakeServicesEnv, killWarrenProcess, startWarrenProcess } from '../helpers/warren-process.js';
import { AGENT_IMAGE, killContainer, requireAgentImage, waitFor } from './e2e-harness.js';

const GROUP = -100_777;
const runtime = createRuntime({ kind: 'docker' });
let api: FakeTelegramApi;
let model: FakeModelApi;
let dataDir: string;
let host: ChildProcess | null = null;
let env: Record<string, string>;

const startHost = () => startWarrenProcess({ env, cwd: dataDir });

beforeAll(async () => {
  await requireAgentImage(runtime);
  api = await startFakeTelegramApi();
  const apiKey = `sk-ant-e2e-${randomBytes(12).toString('hex')}`;
  model = await startFakeModelApi({ expectedApiKey: apiKey });
  dataDir = mkdtempSync('/tmp/warren-e2e-');
  env = fakeServicesEnv({
    dataDir,
    apiKey,
    modelUrl: model.url,
    telegram: api,
    extra: { WARREN_TIMEZONE: 'UTC', WARREN_RETRY_BASE_MS: '300', WARREN_AGENT_IMAGE: AGENT_IMAGE },
  });
  const store = openStore(databasePath(dataDir));
  const chat = { channel: 'telegram', chatId: String(GROUP) };
  registerGroup(
    store,
    dataDir,
    { folder: 'team', name: 'Team', chat, isDirect: false, trigger: 'always' },
    0,
  );
  store.close();
}, 120_000);

afterAll(async () => {
  if (host) await killWarrenProcess(host);
  await runtime.removeOrphans(installIdFor(dataDir)).catch(() => []);
  await model?.close();
  await api?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('crashes', () => {
  it('two SIGKILLs of the host mid-turn and one agent failure, and the message is still retried and answered', async () => {
    // The model takes a minute: each kill lands while the turn waits on it.
    model.setDefault({ text: 'too late', delayMs: 60_000 });
    host = await startHost();
    api.pushMessage({ chatId: GROUP, chatType: 'group', chatTitle: 'Team', text: 'a long question' });
    for (let crash = 1; crash <= 3; crash += 1) {
      const before = model.requests.length;
      await waitFor(() => model.requests.length > before, `the model call of run ${crash}`, 90_000);
      if (crash === 3) break;
      await killWarrenProcess(host);
      host = await startHost();
    }
    // The third run fails by itself: its container is killed mid-turn (as the kernel's OOM killer would).
    model.setDefault({ text: 'the answer' });
    const owned = await runtime.listOwned(installIdFor(dataDir));
    const agent = owned.find((container) => container.groupFolder === 'team' && container.isRunning);
    expect(owned.filter((container) => container.isRunning)).toHaveLength(1); // the crashed hosts' are gone
    await killContainer(agent?.name ?? 'none');
    await waitFor(
      () => api.textsTo(GROUP).some((text) => text.includes('the answer')),
      'the answer',
      120_000,
    );
    const texts = api.textsTo(GROUP).join('\n');
    expect(texts).toMatch(/Trying again in \d+s \(attempt 2 of 3\)/);
    expect(texts).not.toMatch(/could not answer/);
    const store = openStore(databasePath(dataDir));
    const chat = store.chats.get('telegram', String(GROUP));
    expect(store.messages.ofChat(chat?.id ?? -1).map((message) => message.status)).toEqual(['done']);
    store.close();
  }, 400_000);
});
