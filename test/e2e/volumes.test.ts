// End to end: a group on a file system of its own (the hard disk limit, volumes.ts), with the real engine, the real
// agent image and SDK. Needs root on Linux, as CI has: it fails (never skips) elsewhere, saying so.
import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseVolumes, readMounts } from '../../src/volumes.js';
import { type E2eWarren, latestToolResult, startE2eWarren, waitFor } from './e2e-harness.js';

const QUOTA_MB = 64;
let host: E2eWarren;

beforeAll(async () => {
  if (!canUseVolumes()) {
    throw new Error('this test needs Linux, root, and e2fsprogs (mkfs.ext4, resize2fs) with losetup');
  }
  host = await startE2eWarren({
    env: { WARREN_DISK_QUOTA_MODE: 'volume', WARREN_DISK_QUOTA_MB: String(QUOTA_MB) },
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
});
