// The owner's operations over a real store in a temporary data directory, with an admin group (main) and one more
// (sales), every audit entry and wake-up recorded: what the tests of the operations' own modules start from.
import path from 'node:path';
import { createOwnerOps, type OwnerOpsDeps } from '../../src/intake/owner-ops.js';
import { createPairing } from '../../src/intake/pairing.js';
import { silentLogger } from '../../src/log.js';
import { type AuditEntry, openStore } from '../../src/store/store.js';
import { registerTestGroup, tempDir } from '../harness.js';

/** extra: what only a running host has (stopAgent, egressQuestions). */
export function ownerOpsFixture(
  now: number,
  extra: Pick<OwnerOpsDeps, 'stopAgent' | 'egressQuestions'> = {},
) {
  const dataDir = tempDir();
  const store = openStore(path.join(dataDir, 'warren.db'));
  const audits: AuditEntry[] = [];
  const audit = (entry: AuditEntry) => audits.push(entry);
  const woken = { count: 0 };
  const pairing = createPairing({
    store,
    dataDir,
    assistantName: 'Warren',
    log: silentLogger(),
    now: () => now,
    audit,
    enqueue: () => {},
    notifier: { notify: () => false },
  });
  const ops = createOwnerOps({
    store,
    dataDir,
    now: () => now,
    audit,
    pairing,
    timezone: 'UTC',
    defaultDiskQuotaMb: 4096,
    budgets: { groupDailyBudget: 5, groupMonthlyBudget: 50, currency: 'USD' },
    mountAllowlistPath: path.join(dataDir, 'mount-allowlist.json'),
    protectedPaths: [],
    onChange: () => {
      woken.count++;
    },
    ...extra,
  });
  registerTestGroup(store, dataDir, 'main', { isAdmin: true, now });
  registerTestGroup(store, dataDir, 'sales', { now });
  return { store, dataDir, audits, ops, woken };
}
