// The CLI's door to the owner's operations over a real store in a temporary data directory with one group (sales):
// what the tests of `warren net`, `warren mcp`, `warren secrets` and `warren pairing` start from.
import { join } from 'node:path';
import { createCliOwnerOps } from '../../src/cli/owner.js';
import { openStore } from '../../src/store/store.js';
import { registerTestGroup, tempDir } from '../harness.js';

export function cliOpsFixture(now: () => number) {
  const dataDir = tempDir();
  const store = openStore(join(dataDir, 'warren.db'));
  registerTestGroup(store, dataDir, 'sales', { now: now() });
  const ops = () =>
    createCliOwnerOps({
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
  return { dataDir, store, ops };
}
