// Watches the input folder: hands each host file to the runner once, in name (= creation) order.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type InputFile, isIpcFileName } from '../../src/protocol/ipc.js';
import { watchFolder } from '../../src/protocol/read.js';
import { readInputFile } from './ipc-files.js';
import type { Log } from './log.js';

export interface InputWatcherOptions {
  directory: string;
  /** Called once per file, in name order. Must not throw. */
  onFile(file: InputFile, name: string): void;
  /** A file that could not be read or parsed; it is skipped for good (fail closed, no retry loop). */
  onInvalid(name: string, error: string): void;
  log: Log;
  /**
   * fs.watch misses events on some mounts (network file systems, some VM file sharing), so the folder is also
   * scanned this often. Slow on purpose: it is a safety net, not the main path.
   */
  fallbackScanMs?: number;
}

export interface InputWatcher {
  /** Starts watching and resolves after the first scan (which picks up the prompt written before the start). */
  start(): Promise<void>;
  /** Scans now; resolves when every file present at the call has been handed over. */
  scan(): Promise<void>;
  /** Stops watching. Files arriving later are not read. */
  close(): void;
}

export const DEFAULT_FALLBACK_SCAN_MS = 2_000;

export function createInputWatcher(options: InputWatcherOptions): InputWatcher {
  const { directory, log } = options;
  // The runner never deletes input files (input/ is mounted read-only), so it remembers what it has read.
  const seen = new Set<string>();
  let isClosed = false;

  async function scanOnce(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(directory);
    } catch (error) {
      log.warn({ err: error, directory }, 'cannot list input folder');
      return;
    }
    const fresh = names.filter((name) => isIpcFileName(name) && !seen.has(name)).sort();
    for (const name of fresh) {
      if (isClosed) return;
      seen.add(name);
      const result = await readInputFile(path.join(directory, name));
      if (isClosed) return;
      if (result.ok) options.onFile(result.value, name);
      else options.onInvalid(name, result.error);
    }
  }

  const folder = watchFolder({
    directory,
    label: 'input folder',
    fallbackScanMs: options.fallbackScanMs ?? DEFAULT_FALLBACK_SCAN_MS,
    log,
    scanOnce,
  });
  return {
    start: folder.start,
    scan: folder.scan,
    close() {
      isClosed = true;
      folder.close();
    },
  };
}
