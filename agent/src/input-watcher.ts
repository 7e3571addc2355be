// Watches the input folder: hands each host file to the runner once, in name (= creation) order.
import { type FSWatcher, promises as fs, watch } from 'node:fs';
import path from 'node:path';
import { type InputFile, isIpcFileName } from '../../src/ipc-protocol.js';
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
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let isClosed = false;
  let running: Promise<void> | null = null;
  let isRescanNeeded = false;

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

  // One scan at a time; a request during a scan runs one more scan after it, so no event is lost.
  function scan(): Promise<void> {
    if (running) {
      isRescanNeeded = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          isRescanNeeded = false;
          await scanOnce();
        } while (isRescanNeeded && !isClosed);
      } catch (error) {
        log.error({ err: error }, 'input scan failed');
      } finally {
        running = null;
      }
    })();
    return running;
  }

  return {
    async start() {
      try {
        watcher = watch(directory, { persistent: false }, () => void scan());
        watcher.on('error', (error) => {
          log.warn({ err: error }, 'input watch failed; relying on the fallback scan');
          watcher?.close();
          watcher = null;
        });
      } catch (error) {
        log.warn({ err: error }, 'cannot watch input folder; relying on the fallback scan');
      }
      timer = setInterval(() => void scan(), options.fallbackScanMs ?? DEFAULT_FALLBACK_SCAN_MS);
      timer.unref();
      await scan();
    },
    // A call during a running scan makes that scan go round once more, so the promise covers every file present now.
    scan,
    close() {
      isClosed = true;
      watcher?.close();
      watcher = null;
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
