// The CLI's door to the owner's operations over a real store in a temporary data directory with one group (sales):
// what the tests of `warren net`, `warren mcp`, `warren secrets` and `warren pairing` start from.
import { join } from 'node:path';
import { createCliOwnerOps } from '../../src/cli/owner.js';
import { openStore, type Store } from '../../src/store/store.js';
import { registerTestGroup, tempDir } from '../harness.js';

export function cliOpsFixture(now: () => number) {
  const dataDir = tempDir();
  const store = openStore(join(dataDir, 'warren.db'));
  registerTestGroup(store, dataDir, 'sales', { now: now() });
  return { dataDir, store, ops: () => cliOwnerOps(store, dataDir, now) };
}

/** The CLI's owner operations over a store, with the settings every CLI test uses. */
export function cliOwnerOps(store: Store, dataDir: string, now: () => number) {
  return createCliOwnerOps({
    store,
    config: {
      dataDir,
      assistantName: 'Warren',
      timezone: 'UTC',
      diskQuotaMb: 4096,
      mountAllowlistPath: join(dataDir, 'no-allowlist.json'),
      groupDailyBudget: 5,
      groupMonthlyBudget: 50,
      currency: 'USD',
    },
    protectedPaths: [],
    now,
  });
}
