import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup, tempDir } from '../../test/harness.js';
import { rowsMentioning, seedGroupData } from '../../test/helpers/group-data.js';
import type { OwnerOps } from '../intake/owner-ops.js';
import { openStore, type Store } from '../store/store.js';
import { exportGroupCommand, purgeGroupCommand } from './groups-data.js';
import { createCliOwnerOps } from './owner.js';

let dataDir: string;
let file: string;
let store: Store;
let ops: OwnerOps;

beforeEach(() => {
  dataDir = tempDir();
  file = join(dataDir, 'warren.db');
  store = openStore(file);
  for (const folder of ['acme', 'globex']) {
    registerTestGroup(store, dataDir, folder);
    seedGroupData(file, folder);
  }
  const config = {
    dataDir,
    assistantName: 'Warren',
    timezone: 'UTC',
    diskQuotaMb: 0,
    mountAllowlistPath: join(dataDir, 'allowlist.json'),
    groupDailyBudget: 5,
    groupMonthlyBudget: 50,
    currency: 'USD',
  };
  ops = createCliOwnerOps({ store, config, protectedPaths: [], now: () => 1_750_000_000_000 });
});
afterEach(() => store.close());

/** A sink that keeps what was written, taking it slowly (a small buffer), as a pipe to a slow reader would. */
function slowSink() {
  const chunks: string[] = [];
  const sink = new Writable({
    highWaterMark: 64,
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      setImmediate(done);
    },
  });
  return {
    sink,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}

const typed = (text: string) => ({ input: Readable.from([text]), output: new PassThrough() });

describe('warren groups export', () => {
  it("writes the group, then each of its rows as a JSON line with its type, and nothing of another group's", async () => {
    const { sink, lines } = slowSink();
    const outcome = await exportGroupCommand(store, 'acme', sink);
    expect(outcome.code).toBe(0);
    const records = lines();
    expect(records[0]).toMatchObject({
      type: 'group',
      folder: 'acme',
      chats: [{ chatId: 'acme' }],
      // Its network settings with it: the rules, the bindings (by secret name), the MCP servers.
      egressRules: [{ type: 'egress-rule', host: 'acme.example.com', port: 443, action: 'allow' }],
      secretBindings: [{ type: 'secret-binding', host: 'acme.example.com', secretName: 'TOKEN' }],
      mcpServers: [{ type: 'mcp-server', name: 'crm', url: 'https://acme.example.com/mcp' }],
    });
    const types = records.map((record: { type: string }) => record.type);
    expect(types).toEqual([
      'group',
      'message',
      'message',
      'outbox',
      'outbox',
      'task',
      'task-run',
      'task-run',
      'usage',
      'memory-proposal',
      'audit',
    ]);
    expect(records.find((record: { type: string }) => record.type === 'message')).toMatchObject({
      text: 'acme secret question',
      senderName: 'Ann',
      channel: 'fake',
      chatId: 'acme',
    });
    expect(records.at(-1)).toMatchObject({ groupFolder: 'acme', detail: { chat: 'fake' } });
    expect(JSON.stringify(records)).not.toContain('globex');
    expect(outcome.text).toContain('2 message');
  });

  it('refuses a group that does not exist, writing nothing', async () => {
    const { sink, lines } = slowSink();
    expect(await exportGroupCommand(store, 'nope', sink)).toEqual({
      code: 1,
      text: "no group 'nope' (see `warren groups list`)",
    });
    expect(lines()).toEqual([]);
  });
});

describe('warren groups remove --purge', () => {
  it('removes nothing when the name typed is not the folder, or nothing is typed', async () => {
    const before = rowsMentioning(file, 'acme');
    for (const answer of ['acm\n', 'globex\n', '']) {
      const outcome = await purgeGroupCommand(ops, 'acme', typed(answer));
      expect(outcome.code).toBe(1);
      expect(outcome.text).toContain('Nothing removed');
    }
    expect(rowsMentioning(file, 'acme')).toEqual(before);
    expect(existsSync(join(dataDir, 'groups', 'acme'))).toBe(true);
  });

  it('purges once the folder name is typed, or at once with --yes', async () => {
    const outcome = await purgeGroupCommand(ops, 'acme', typed('acme\n'));
    expect(outcome).toMatchObject({ code: 0, text: expect.stringContaining("Purged group 'acme'") });
    expect(rowsMentioning(file, 'acme')).toEqual({ audit: 2 }); // its own, and the purge's
    expect(existsSync(join(dataDir, 'groups', 'acme'))).toBe(false);
    const unread = new PassThrough(); // never written: --yes must not wait for it
    const scripted = await purgeGroupCommand(ops, 'globex', {
      input: unread,
      output: unread,
      isConfirmed: true,
    });
    expect(scripted.code).toBe(0);
    expect(store.groups.list().map((group) => group.folder)).toEqual([]);
  });
});
