// `warren logs [--follow]`: the host's log file (<dataDir>/logs/current.log, rolled by size; src/log.ts), readable
// on a terminal (pino-pretty) or as the JSON lines it is. --follow keeps printing what the host writes, across rolls.
import { closeSync, type FSWatcher, openSync, readSync, realpathSync, watch } from 'node:fs';
import { prettyFactory } from 'pino-pretty';
import { currentLogFile } from '../log.js';

export interface LogsOptions {
  logDir: string;
  isFollow: boolean;
  isPretty: boolean;
  write(text: string): void;
  /** Ends --follow. */
  signal?: AbortSignal;
}

/** Prints the log; with isFollow, resolves when the signal aborts. False when there is no log yet. */
export async function showLogs(options: LogsOptions): Promise<boolean> {
  const format = options.isPretty ? prettyFactory({ translateTime: 'SYS:yyyy-mm-dd HH:MM:ss' }) : null;
  let file: string;
  try {
    file = realpathSync(currentLogFile(options.logDir));
  } catch {
    return false;
  }
  let offset = 0;
  let partial = '';
  const buffer = Buffer.alloc(64 * 1024);
  /** Prints what was appended to the file since the last read; a roll to a new file starts it from its top. */
  const drain = () => {
    const now = realpathSync(currentLogFile(options.logDir));
    if (now !== file) [file, offset] = [now, 0];
    const fd = openSync(file, 'r');
    try {
      for (let read = readSync(fd, buffer, 0, buffer.length, offset); read > 0; ) {
        offset += read;
        const lines = (partial + buffer.subarray(0, read).toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line) options.write(format ? format(line) : `${line}\n`);
        read = readSync(fd, buffer, 0, buffer.length, offset);
      }
    } finally {
      closeSync(fd);
    }
  };
  drain();
  if (!options.isFollow) return true;
  await new Promise<void>((resolve) => {
    const watcher: FSWatcher = watch(options.logDir, () => {
      try {
        drain();
      } catch {
        // Mid-roll: the link points at a file not there yet; the next event reads it.
      }
    });
    options.signal?.addEventListener('abort', () => {
      watcher.close();
      resolve();
    });
  });
  return true;
}
