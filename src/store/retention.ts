// Retention: the daily pruning of answered messages, sent replies and old audit rows.
import type { Logger } from 'pino';
import type { Store } from './store.js';

const DAY_MS = 24 * 60 * 60_000;

/**
 * At start and then once a day, forgets answered messages and finished outbox items older than
 * `days`, and audit rows whose last entry is older than `auditDays` (0 keeps them forever). Returns the function
 * that stops the timer.
 */
export function startRetention(deps: {
  store: Store;
  log: Logger;
  now(): number;
  days: number;
  auditDays: number;
}): () => void {
  if (deps.days === 0 && deps.auditDays === 0) return () => {};
  const pruneMessages = () => {
    try {
      const before = deps.now() - deps.days * DAY_MS;
      const messages = deps.store.messages.pruneFinished(before);
      const outbox = deps.store.outbox.pruneFinished(before);
      if (messages + outbox > 0) deps.log.info({ messages, outbox, days: deps.days }, 'pruned old messages');
    } catch (error) {
      deps.log.error({ err: error }, 'pruning old messages failed');
    }
  };
  const pruneAudit = () => {
    try {
      const now = deps.now();
      const before = now - deps.auditDays * DAY_MS;
      // One transaction: audit rows never disappear without an entry saying how many went and up to when.
      const rows = deps.store.transaction(() => {
        const pruned = deps.store.audit.prune(before);
        if (pruned > 0) {
          deps.store.audit.record(
            {
              groupFolder: null,
              actor: 'host',
              action: 'audit-prune',
              decision: 'allow',
              detail: { rows: pruned, before },
            },
            now,
          );
        }
        return pruned;
      });
      if (rows > 0) deps.log.info({ rows, before, days: deps.auditDays }, 'pruned old audit entries');
    } catch (error) {
      deps.log.error({ err: error }, 'pruning old audit entries failed');
    }
  };
  const prune = () => {
    if (deps.days > 0) pruneMessages();
    if (deps.auditDays > 0) pruneAudit();
  };
  prune();
  const timer = setInterval(prune, DAY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
