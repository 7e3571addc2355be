// End to end: a group on a file system of its own (the hard disk limit, volumes.ts), with the real engine, the real
// agent image and SDK. Needs root on Linux, as CI has: it fails (never skips) elsewhere, saying so.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseVolumes, readMounts } from '../../src/sandbox/volumes.js';
import { type E2eWarren, latestToolResult, startE2eWarren, waitFor } from './e2e-harness.js';

const QUOTA_MB = 64;
let host: E2eWarren;

beforeAll(async () => {
  if (!canUseVolumes()) {
    throw new Error('this test needs Linux, root, loop devices and e2fsprogs (mkfs.ext4, e2fsck, resize2fs)');
  }
  host = await startE2eWarren({
    env: {
      WARREN_DISK_QUOTA_MODE: 'volume',
      WARREN_DISK_QUOTA_MB: String(QUOTA_MB),
      WARREN_AGENT_IDLE_SECONDS: '3',
    },
  });
  host.addGroup('filler');
}, 120_000);

afterAll(async () => {
  await host?.stop();
});

describe('a group on a file system of its own', () => {
  it('cannot write past its quota: the kernel refuses, and the agent goes on', async () => {
    const before = host.fake.requests.length;
    host.fake.script(
      {
        toolUse: {
          name: 'Bash',
          input: {
            command:
              'dd if=/dev/zero of=/workspace/group/fill bs=1M count=200 2>&1; echo "dd exit $?"; cat CLAUDE.md',
            description: 'fill',
          },
        },
      },
      { text: 'filled' },
    );
    host.channel.receive({ chatId: 'filler', text: 'fill your folder' });
    const output = latestToolResult(await host.fake.waitForRequest(before + 2, 120_000));
    expect(output).toMatch(/No space left on device/);
    expect(output).toContain('dd exit 1');
    // The memory file registration wrote moved into the volume.
    expect(output).toContain('# filler');
    // Not stopped: the turn ends and the answer arrives.
    await waitFor(() => host.channel.textsTo('filler').includes('filled'), 'the reply', 60_000);

    const groupDir = path.join(host.dataDir, 'groups', 'filler');
    const mounts = readMounts();
    expect(mounts.get(path.join(host.dataDir, 'volumes', 'filler'))).toMatch(/^\/dev\/loop\d+$/);
    expect(mounts.has(groupDir)).toBe(true);
    expect(mounts.has(path.join(host.dataDir, 'sessions', 'filler'))).toBe(true);
    // The host sees what the agent wrote, at the usual path, and it is under the quota.
    const fill = statSync(path.join(groupDir, 'fill'));
    expect(fill.size).toBeGreaterThan(30 * 1024 * 1024);
    expect(fill.size).toBeLessThanOrEqual(QUOTA_MB * 1024 * 1024);
  }, 240_000);

  it('grows when its quota is raised, from the next run on', async () => {
    host.warren.store.groups.setDiskQuotaMb('filler', QUOTA_MB * 2);
    const before = host.fake.requests.length;
    host.fake.script(
      {
        toolUse: {
          name: 'Bash',
          input: { command: 'df -m /workspace/group | tail -n 1', description: 'size' },
        },
      },
      { text: 'measured' },
    );
    // The agent from before exits when idle and its container goes: the next run grows the volume, detached.
    const deadline = Date.now() + 60_000;
    while ((await host.runtime.listOwned(host.installId)).length > 0) {
      if (Date.now() > deadline) throw new Error('the agent did not exit when idle');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    host.channel.receive({ chatId: 'filler', text: 'how big is your folder now?' });
    const output = latestToolResult(await host.fake.waitForRequest(before + 2, 120_000));
    const sizeMb = Number(output.trim().split(/\s+/)[1]);
    expect(sizeMb).toBeGreaterThan(QUOTA_MB * 1.5);
    expect(sizeMb).toBeLessThanOrEqual(QUOTA_MB * 2);
  }, 240_000);

  it('leaves a group whose folder already holds data on the watched quota, its files where they are', async () => {
    host.addGroup('legacy');
    const groupDir = path.join(host.dataDir, 'groups', 'legacy');
    writeFileSync(path.join(groupDir, 'notes.txt'), 'from before\n');
    host.fake.script({ text: 'still here' });
    host.channel.receive({ chatId: 'legacy', text: 'hello' });
    await waitFor(() => host.channel.textsTo('legacy').includes('still here'), 'the reply', 60_000);
    expect(readMounts().has(groupDir)).toBe(false);
    expect(existsSync(path.join(host.dataDir, 'volumes', 'legacy.ext4'))).toBe(false);
    expect(readFileSync(path.join(groupDir, 'notes.txt'), 'utf8')).toBe('from before\n');
  }, 240_000);
});
