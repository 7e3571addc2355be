// One host per data directory. A second `warren start` on the same data would recreate the IPC folders and stop the
// first host's agents as orphans; it must touch nothing. The lock is an exclusive SQLite lock on its own file, held
// for the process's life: the kernel releases it when the process ends, however it ends (SIGKILL included).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './db.js';

/** Takes the data directory's lock or throws StoreError naming the process that holds it. */
export function lockDataDir(dataDir: string, pid = process.pid): { release(): void } {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const db = new Database(join(dataDir, 'warren.lock'), { timeout: 0 });
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
    let holder = 'another process';
    try {
      holder = `process ${Number.parseInt(readFileSync(join(dataDir, 'warren.pid'), 'utf8'), 10)}`;
    } catch {}
    throw new StoreError(`Warren is already running on ${dataDir} (${holder}); stop it first`);
  }
  // For the message above only: the lock, not this file, says who runs.
  writeFileSync(join(dataDir, 'warren.pid'), `${pid}\n`, { mode: 0o600 });
  return { release: () => db.close() };
}
