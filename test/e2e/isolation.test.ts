// End to end: what an agent container can and cannot reach, on every runtime (describeOnRuntimes). A real engine, real
// agent image (real Claude Agent SDK running the Bash and send_message tools the fake model asks for), the credential
// proxy and the fake model API.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeRequest } from '../fake-model-api.js';
import { statusesOf } from '../harness.js';
import {
  describeOnRuntimes,
  type E2eWarren,
  engineCommand,
  execInContainer,
  searchContainer,
  startE2eWarren,
  toolResults,
  waitFor,
} from './e2e-harness.js';

/** Each group's daily budget, in USD. */
const BUDGET = 0.5;
let host: E2eWarren;
/** Written into group B's folder and said in group B's chat (so it is in the database too). */
const workSecret = `WORK-SECRET-${randomBytes(8).toString('hex')}`;

/** Makes the family agent run one shell command; resolves with what the tool returned to the model. */
async function runBash(command: string, reply: string): Promise<string> {
  const before = host.fake.requests.length;
  host.fake.script({ toolUse: { name: 'Bash', input: { command, description: 'probe' } } }, { text: reply });
  host.channel.receive({ chatId: 'family', text: `please run the probe (${reply})` });
  const second = await host.fake.waitForRequest(before + 2, 90_000);
  await waitFor(() => host.channel.textsTo('family').includes(reply), `reply ${reply}`, 30_000);
  return toolResults(second).join('\n');
}

/** Runs a command in the family container as its own user (`docker exec`), the way any tool of the agent would. */
async function execInFamily(command: string[], timeoutMs = 60_000): Promise<string> {
  return execInContainer(host.kind, await host.containerOf('family'), command, timeoutMs);
}

function inspectEnv(name: string): Promise<string> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(engineCommand(host.kind), ['inspect', '--format', '{{json .Config.Env}}', name]);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('close', () => resolve(output));
  });
}

await describeOnRuntimes('an agent container', (kind) => {
  beforeAll(async () => {
    host = await startE2eWarren({ runtime: kind, env: { WARREN_GROUP_DAILY_BUDGET: String(BUDGET) } });
    host.addGroup('family');
    host.addGroup('work');
    host.addGroup('spender');
    writeFileSync(path.join(host.dataDir, 'groups', 'work', 'secret.txt'), `${workSecret}\n`);
    // Group B talks first: its message text is now in the database, its agent has run.
    host.fake.script({ text: 'noted' });
    host.channel.receive({ chatId: 'work', text: `remember ${workSecret}` });
    await waitFor(() => host.channel.textsTo('work').includes('noted'), 'the work group reply', 60_000);
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
  });

  it("cannot read or list another group's folder, the host's data directory or the database", async () => {
    // The marker is split in the command, so the command itself (kept in the agent's transcript) never matches.
    const [head, tail] = [workSecret.slice(0, 8), workSecret.slice(8)];
    const ownMarker = `FAMILY-OWN-${randomBytes(8).toString('hex')}`;
    writeFileSync(path.join(host.dataDir, 'groups', 'family', 'mine.txt'), `${ownMarker}\n`);
    const [ownHead, ownTail] = [ownMarker.slice(0, 8), ownMarker.slice(8)];
    const output = await runBash(
      [
        'echo "== own"; ls /workspace/group',
        'echo "== mounts"; ls /workspace',
        `echo "== other group"; ls ${host.dataDir}/groups/work 2>&1; cat ${host.dataDir}/groups/work/secret.txt 2>&1; ls /workspace/../groups 2>&1`,
        `echo "== data dir"; ls ${host.dataDir} 2>&1`,
        // Positive control: the same search finds the group's own marker, so it really looked everywhere.
        `echo "== control"; grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "${ownHead}""${ownTail}" / 2>/dev/null`,
        `echo "== search"; grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "${head}""${tail}" / 2>/dev/null`,
        `find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o \\( -name 'warren.db*' -o -name local-token -o -name '*.sqlite' \\) -print 2>/dev/null`,
        'echo "== end"',
      ].join('; '),
      'probe one done',
    );
    // The command really ran in the container, in the group's own folder.
    expect(output).toMatch(/== own\s+CLAUDE\.md/);
    expect(output).toMatch(/== control\s+\/workspace\/group\/mine\.txt\s+== search/);
    expect(output).toContain('== end');
    expect(output).not.toContain(workSecret);
    expect(output).toMatch(/No such file or directory/);
    expect(output).not.toMatch(/warren\.db|local-token/);
    // Between "== search" and "== end" nothing was found anywhere.
    expect(output.split('== search')[1]?.split('== end')[0]?.trim()).toBe('');
  }, 120_000);

  it('never holds the API key the proxy uses: not in env, process environments or any file', async () => {
    const name = await host.containerOf('family');
    expect(await inspectEnv(name)).not.toContain(host.apiKey);
    // The runner's code sends a placeholder instead: the same search must find that (a positive control).
    const output = await searchContainer(host.kind, name, host.apiKey, 'warren-proxy');
    expect(output).toMatch(/== scanned [1-9]\d* processes/);
    // The runner's bundle (agent/Dockerfile), which is what runs, holds it.
    expect(output).toMatch(/== control[\s\S]*\/opt\/warren\/bundle\/[\w-]+\.js/);
    expect(output).not.toContain('found in');
    const sections = output.split(/== \w+/).map((part) => part.trim());
    // files, processes and env sections are all empty.
    expect(sections.slice(1, 4)).toEqual(['', '', '']);
    // And yet the model calls carried it: the fake refuses any other key.
    expect(
      host.fake.requests.every((request: FakeRequest) => request.headers['x-api-key'] === host.apiKey),
    ).toBe(true);
  }, 180_000);

  it('has no network and cannot write its root filesystem', async () => {
    const connect = (hostName: string, port: number) =>
      `require('net').connect(${port}, '${hostName}').on('connect', () => { console.log('CONNECTED ${hostName}'); process.exit(0); }).on('error', (e) => { console.log('FAILED ${hostName} ' + e.code); process.exit(0); })`;
    const fakePort = new URL(host.fake.url).port;
    for (const [target, port] of [
      ['1.1.1.1', 443],
      ['172.17.0.1', 2375],
      ['127.0.0.1', Number(fakePort)],
    ] as const) {
      const output = await execInFamily(['node', '-e', connect(target, port)]);
      expect(output).toMatch(new RegExp(`FAILED ${target.replace(/\./g, '\\.')} E[A-Z]+`));
    }
    // The kernel's own list (gVisor has no /sys/class/net): loopback only.
    const interfaces = "console.log(Object.keys(require('os').networkInterfaces()).join(','))";
    expect((await execInFamily(['node', '-e', interfaces])).trim()).toBe('lo');

    const writes = await execInFamily([
      '/bin/sh',
      '-c',
      'for f in /probe /opt/warren/dist/probe /usr/local/bin/probe /workspace/probe /workspace/ipc/input/probe; do touch "$f" 2>&1 || true; done; touch /workspace/group/ok && echo group-writable; rm -f /workspace/group/ok; awk \'$5 == "/" || $5 == "/workspace/ipc/input" { print "mounted", $5, $6 }\' /proc/self/mountinfo',
    ]);
    // gVisor checks permissions before the mount flag: a root-owned folder answers EACCES there, EROFS elsewhere.
    expect(writes.match(/Read-only file system|Permission denied/g)).toHaveLength(5);
    // Whoever owns them, the kernel (or gVisor's) holds the root and the input folder read-only.
    expect(writes).toMatch(/^mounted \/ ro\b/m);
    expect(writes).toMatch(/^mounted \/workspace\/ipc\/input ro\b/m);
    expect(writes).toContain('group-writable');
  }, 120_000);

  it("denies and audits an IPC request that names another group's chat, and rejects a malformed one", async () => {
    const before = host.fake.requests.length;
    host.fake.script(
      {
        toolUse: {
          name: 'mcp__warren__send_message',
          input: { text: 'psst from family', chat: 'fake:work' },
        },
      },
      { text: 'tried' },
    );
    host.channel.receive({ chatId: 'family', text: 'tell the work group something' });
    const second = await host.fake.waitForRequest(before + 2, 60_000);
    expect(toolResults(second).join('\n')).toMatch(/Refused: this group may only send to its own chat/);
    await waitFor(() => host.channel.textsTo('family').includes('tried'), 'reply tried');
    expect(host.channel.textsTo('work')).not.toContain('psst from family');
    const denial = host.warren.store.audit
      .recent(50)
      .find((entry) => entry.action === 'send-message' && entry.groupFolder === 'family');
    expect(denial).toMatchObject({ decision: 'deny', actor: 'agent:family', detail: { chat: 'fake:work' } });

    // A malformed file and an unknown request type, dropped into the output folder by the agent itself.
    const output = await runBash(
      [
        'cd /workspace/ipc/output',
        `printf '{"type":"request","id":"evil-1","tool":"grant_admin","args":{}}' > .tmp-a && mv .tmp-a 000000099998-evil.json`,
        `printf '{not json' > .tmp-b && mv .tmp-b 000000099999-broken.json`,
        'echo written',
      ].join('; '),
      'probe two done',
    );
    expect(output).toContain('written');
    // Refusals of one kind in one minute fold into one counted row, the first and the last kept as samples.
    const rejected = await waitFor(
      () =>
        host.warren.store.audit
          .recent(50)
          .find((entry) => entry.action === 'ipc-file' && entry.groupFolder === 'family' && entry.count >= 2),
      'two audited rejections',
      10_000,
    );
    expect(rejected.decision).toBe('deny');
    const samples = [rejected.detail, rejected.lastDetail ?? {}];
    expect(samples.map((detail) => String(detail.reason)).join(' ')).toMatch(/not JSON/);
    expect(samples.map((detail) => String(detail.file)).sort()).toEqual([
      '000000099998-evil.json',
      '000000099999-broken.json',
    ]);
  }, 180_000);

  it('with the budget spent, the next model call is refused and the chat is told once', async () => {
    const now = Date.now();
    const spent = {
      model: 'claude-fake',
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
    };
    const day = new Date(now).toISOString().slice(0, 10); // the harness runs Warren in UTC
    host.warren.store.usage.record({ ...spent, groupFolder: 'spender', at: now, day, cost: BUDGET });
    const before = host.fake.requests.length;
    host.channel.receive({ chatId: 'spender', text: 'one more question' });
    await waitFor(
      () => host.channel.textsTo('spender').some((text) => text.includes('daily budget')),
      'a budget notice',
      60_000,
    );
    await waitFor(() => statusesOf(host, 'spender').includes('failed'), 'the message failed', 30_000);
    // A second message the same day is refused as well, and the chat is not told again.
    host.channel.receive({ chatId: 'spender', text: 'and another one' });
    await waitFor(
      () => statusesOf(host, 'spender').filter((status) => status === 'failed').length === 2,
      'the second message failed',
      60_000,
    );
    // No call went upstream, the refusals are audited, and the messages failed at once (no retries for a budget).
    expect(host.fake.requests.length).toBe(before);
    const refusals = host.warren.store.audit
      .recent(50)
      .filter((entry) => entry.action === 'model-api' && entry.groupFolder === 'spender');
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(String(refusals[0]?.detail.reason)).toMatch(/^budget:/);
    // One clear message for the day: no raw error, no failure notice, no second notice.
    expect(host.channel.textsTo('spender')).toEqual([
      '⚠️ I cannot answer: this group has spent its daily budget of 0.50 USD (0.50 USD today). ' +
        'It renews at midnight (UTC).',
    ]);
  }, 120_000);
});
