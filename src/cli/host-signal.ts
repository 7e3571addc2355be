// Wakes a running host when the CLI changed the database from another process (tasks, pairing): no polling.
import { type FSWatcher, mkdirSync, renameSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** `<dataDir>/signals/`: only the host and the CLI write here; no container ever sees it. */
function signalDir(dataDir: string): string {
  const dir = join(dataDir, 'signals');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Called by the CLI after it changed tasks or queued a message. Best effort: a stopped host finds it at start. */
export function signalHost(dataDir: string, now: number): void {
  const dir = signalDir(dataDir);
  const temp = join(dir, `.tasks-${process.pid}`);
  writeFileSync(temp, String(now), { mode: 0o600 });
  renameSync(temp, join(dir, 'tasks'));
}

/** Calls onChange whenever the CLI signals; returns the function that stops watching. Never throws. */
export function watchHostSignals(dataDir: string, onChange: () => void, log: Logger): () => void {
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(signalDir(dataDir), { persistent: false }, () => onChange());
    watcher.on('error', (error) => {
      log.warn(
        { err: error },
        'host signal watch failed: CLI changes apply at the next scheduled time or start',
      );
      watcher?.close();
    });
  } catch (error) {
    log.warn(
      { err: error },
      'cannot watch for host signals: CLI changes apply at the next scheduled time or start',
    );
  }
  return () => watcher?.close();
}
