// `npm run soak`: the crash soak. Runs the real `warren start` (real Docker and agent image) against the loopback
// fakes of the Telegram Bot API and the model API, sends one message a second to a few Telegram groups, and kills
// the host with SIGKILL (and now and then an agent container) at random moments. Then it lets the host finish and
// counts what was lost (a message never answered) and repeated (an answer that reached its chat twice).
// A script that measures, not a test; its last figures go into docs/BENCHMARKS.md by hand.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { databasePath } from '../src/app.js';
import { createRuntime } from '../src/image/engine-setup.js';
import { registerGroup } from '../src/intake/registration.js';
import { installIdFor } from '../src/main.js';
import { openStore } from '../src/store/store.js';
import { type FakeRequest, startFakeModelApi } from '../test/fake-model-api.js';
import { startFakeTelegramApi } from '../test/fake-telegram-api.js';
import { fakeServicesEnv, killWarrenProcess, startWarrenProcess } from '../test/helpers/warren-process.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    groups: { type: 'string', default: '5' },
    'kill-every': { type: 'string', default: '20', short: 'k' },
  },
});
const minutes = Number(values.minutes);
const groupCount = Number(values.groups);
const killEverySeconds = Number(values['kill-every']);
const runtime = createRuntime({ kind: 'docker' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The ids of the messages ("m-17") in a model request's last user turn: what this turn was asked. */
function idsIn(request: FakeRequest): string[] {
  const messages =
    (request.body as { messages?: Array<{ role: string; content: unknown }> } | null)?.messages ?? [];
  const last = messages.findLast((message) => message.role === 'user');
  return [...new Set(JSON.stringify(last?.content ?? '').match(/m-\d+/g) ?? [])];
}

const telegram = await startFakeTelegramApi();
const apiKey = `sk-ant-soak-${randomBytes(12).toString('hex')}`;
const model = await startFakeModelApi({ expectedApiKey: apiKey });
// A model that answers in 0–3 s and acknowledges every message it was given.
model.setDefault((request) => ({
  text: `ack ${idsIn(request).join(' ')}`,
  delayMs: Math.floor(Math.random() * 3000),
}));
const dataDir = mkdtempSync('/tmp/warren-soak-');
const env = fakeServicesEnv({ dataDir, apiKey, modelUrl: model.url, telegram });
const groups = Array.from({ length: groupCount }, (_, index) => -1_000_100 - index);
const store = openStore(databasePath(dataDir));
for (const [index, chatId] of groups.entries()) {
  const chat = { channel: 'telegram', chatId: String(chatId) };
  registerGroup(
    store,
    dataDir,
    { folder: `g${index}`, name: `g${index}`, chat, isDirect: false, trigger: 'always' },
    0,
  );
}
store.close();

let host: ChildProcess | null = null;
let starts = 0;
async function startHost(): Promise<void> {
  host = await startWarrenProcess({ env, cwd: dataDir });
  starts += 1;
}
async function killHost(): Promise<void> {
  if (host) await killWarrenProcess(host);
  host = null;
}

const sent: string[] = [];
let kills = 0;
let containerKills = 0;
try {
  await startHost();
  const end = Date.now() + minutes * 60_000;
  let nextKill = Date.now() + Math.random() * killEverySeconds * 2000;
  for (let n = 1; Date.now() < end; n += 1) {
    const chatId = groups[n % groups.length] as number;
    telegram.pushMessage({ chatId, chatType: 'group', chatTitle: 'soak', text: `m-${n}` });
    sent.push(`m-${n}`);
    if (Date.now() >= nextKill) {
      if (Math.random() < 0.25) {
        // An agent container dies instead (the OOM killer, an impatient admin).
        const running = (await runtime.listOwned(installIdFor(dataDir))).filter((c) => c.isRunning);
        const victim = running[Math.floor(Math.random() * running.length)];
        if (victim) spawn('docker', ['kill', victim.name], { stdio: 'ignore' });
        containerKills += victim ? 1 : 0;
      } else {
        await killHost();
        kills += 1;
        await startHost();
      }
      nextKill = Date.now() + Math.random() * killEverySeconds * 2000;
    }
    await sleep(1000);
  }
  // Quiet: everything sent is answered, or the soak reports it lost.
  const deadline = Date.now() + 180_000;
  const acked = () => new Set(telegram.sent.flatMap((record) => record.visibleText?.match(/m-\d+/g) ?? []));
  while (acked().size < sent.length && Date.now() < deadline) await sleep(1000);
  const answered = acked();
  const lost = sent.filter((id) => !answered.has(id));
  // A repeat: the same answer text reaching the same chat twice.
  const seen = new Map<string, number>();
  for (const record of telegram.sent) {
    const key = `${record.chatId}|${record.visibleText ?? record.caption ?? ''}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const repeated = [...seen.values()].filter((count) => count > 1).length;
  const notices = telegram.sent.filter((record) =>
    /went wrong|could not answer/.test(record.visibleText ?? ''),
  );
  const result = {
    minutes,
    groups: groupCount,
    messages: sent.length,
    hostKills: kills,
    containerKills,
    starts,
    lost: lost.length,
    repeatedAnswers: repeated,
    failureNotices: notices.length,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  if (lost.length > 0) process.stdout.write(`lost: ${lost.join(' ')}\n`);
} finally {
  await killHost();
  await runtime.removeOrphans(installIdFor(dataDir)).catch(() => []);
  await model.close();
  await telegram.close();
  rmSync(dataDir, { recursive: true, force: true });
}
