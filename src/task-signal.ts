// Wakes a running host's scheduler when `warren tasks …` changed the database from another process (no polling).
import { type FSWatcher, mkdirSync, renameSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './log.js';

/** `<dataDir>/signals/`: only the host and the CLI write here; no container ever sees it. */
function signalDir(dataDir: string): string {
  const dir = join(dataDir, 'signals');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Called by the CLI after it changed tasks. Best effort: a host that is not running finds the change at start. */
export function signalTasksChanged(dataDir: string, now: number): void {
  const dir = signalDir(dataDir);
  const temp = join(dir, `.tasks-${process.pid}`);
  writeFileSync(temp, String(now), { mode: 0o600 });
  renameSync(temp, join(dir, 'tasks'));
}

/** Calls onChange whenever the CLI signals; returns the function that stops watching. Never throws. */
export function watchTaskSignals(dataDir: string, onChange: () => void, log: Logger): () => void {
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(signalDir(dataDir), { persistent: false }, () => onChange());
    watcher.on('error', (error) => {
      log.warn({ err: error }, 'task signal watch failed: CLI task changes apply at the next scheduled time');
      watcher?.close();
    });
  } catch (error) {
    log.warn(
      { err: error },
      'cannot watch for task signals: CLI task changes apply at the next scheduled time',
    );
  }
  return () => watcher?.close();
}
