// Retention: the daily pruning of answered messages, sent replies and old audit rows.
import type { Logger } from 'pino';
import type { Store } from './store.js';

const DAY_MS = 24 * 60 * 60_000;

/**
 * At start and then once a day, forgets answered messages and finished outbox items older than `days`, and audit
 * rows whose last entry is older than `auditDays` (0 keeps them forever). Returns the function that stops it.
 */
export function startRetention(deps: {
  store: Store;
  log: Logger;
  now(): number;
  days: number;
  auditDays: number;
}): () => void {
  const { store, log, days, auditDays } = deps;
  if (days === 0 && auditDays === 0) return () => {};
  const attempt = (what: string, keepDays: number, prune: (before: number, now: number) => void) => {
    if (keepDays === 0) return;
    const now = deps.now();
    try {
      prune(now - keepDays * DAY_MS, now);
    } catch (error) {
      log.error({ err: error }, `pruning ${what} failed`);
    }
  };
  const prune = () => {
    attempt('old messages', days, (before) => {
      const messages = store.messages.pruneFinished(before);
      const outbox = store.outbox.pruneFinished(before);
      if (messages + outbox > 0) log.info({ messages, outbox, days }, 'pruned old messages');
    });
    attempt('old audit entries', auditDays, (before, now) => {
      // One transaction: audit rows never disappear without an entry saying how many went and up to when.
      const rows = store.transaction(() => {
        const pruned = store.audit.prune(before);
        const entry = { groupFolder: null, actor: 'host', action: 'audit-prune', decision: 'allow' as const };
        if (pruned > 0) store.audit.record({ ...entry, detail: { rows: pruned, before } }, now);
        return pruned;
      });
      if (rows > 0) log.info({ rows, before, days: auditDays }, 'pruned old audit entries');
    });
  };
  prune();
  const timer = setInterval(prune, DAY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
