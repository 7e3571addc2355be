// The CLI's door to the owner's operations: the same table the admin chat uses (intake/owner-ops.ts), over the
// database on disk. A running host is woken through a signal file to act on what changed.
import type { Config } from '../config.js';
import { createOwnerOps, type OpResult, type OwnerOp, type OwnerOps } from '../intake/owner-ops.js';
import { createPairing } from '../intake/pairing.js';
import { silentLogger } from '../log.js';
import type { Store } from '../store/store.js';
import { signalHost } from './host-signal.js';

export interface CliOwnerDeps {
  store: Store;
  config: Pick<
    Config,
    | 'dataDir'
    | 'assistantName'
    | 'timezone'
    | 'diskQuotaMb'
    | 'mountAllowlistPath'
    | 'groupDailyBudget'
    | 'groupMonthlyBudget'
    | 'currency'
  >;
  /** Host paths no mount may expose (the package itself). */
  protectedPaths: string[];
  now(): number;
}

export function createCliOwnerOps(deps: CliOwnerDeps): OwnerOps {
  const { store, config, now } = deps;
  const audit: Parameters<typeof createOwnerOps>[0]['audit'] = (entry) => store.audit.record(entry, now());
  const pairing = createPairing({
    store,
    dataDir: config.dataDir,
    assistantName: config.assistantName,
    now,
    audit,
    log: silentLogger(),
    // Queued here, sent by the running host, which the signal wakes at once.
    enqueue: (chat, key, text) => {
      store.outbox.enqueue(
        { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind: 'notice' },
        now(),
      );
      signalHost(config.dataDir, now());
    },
    notifier: { notify: () => false },
  });
  return createOwnerOps({
    store,
    dataDir: config.dataDir,
    now,
    audit,
    pairing,
    timezone: config.timezone,
    defaultDiskQuotaMb: config.diskQuotaMb,
    budgets: config,
    mountAllowlistPath: config.mountAllowlistPath,
    protectedPaths: deps.protectedPaths,
    onChange: () => signalHost(config.dataDir, now()),
  });
}

/** code: 0 done, 1 refused; the text is for stdout (0) or stderr (1). */
export async function performFromCli(
  ops: OwnerOps,
  request: OwnerOp,
): Promise<{ code: number; text: string }> {
  const result: OpResult = await ops.perform(request, { kind: 'cli' });
  return { code: result.ok ? 0 : 1, text: result.text };
}
