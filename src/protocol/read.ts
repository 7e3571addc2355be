// Reading what the other side of the IPC wrote: the host reads the agent's output/, the runner the host's input/.
// One file, safely; and a folder, scanned as files arrive. Shared with the agent image like ipc.ts; imports only
// node built-ins.
import { closeSync, constants, type FSWatcher, fstatSync, openSync, read, type Stats, watch } from 'node:fs';
import { promisify } from 'node:util';

export type ReadResult = { ok: true; text: string } | { ok: false; error: string };

const readAt = promisify(read);

/** JSON.parse that gives undefined for what is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Opens a file for reading only if it is a regular file: never through a link (O_NOFOLLOW: ELOOP), never blocking
 * (O_NONBLOCK: a FIFO opens at once), its type checked on the descriptor before anything is read; anything else is
 * closed unread (code ENOTREG). The one way the host (safe-fs.ts) and the runner open a file the other side wrote.
 */
export function openRegularFile(filePath: string): { fd: number; stat: Stats } {
  const fd = openSync(filePath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  const stat = fstatSync(fd);
  if (stat.isFile()) return { fd, stat };
  closeSync(fd);
  throw Object.assign(new Error(`not a regular file: ${filePath}`), { code: 'ENOTREG' });
}

/**
 * Reads a regular file (openRegularFile) as UTF-8 text. Never throws. Refuses files over maxBytes, without reading
 * more than maxBytes + 1 whatever the file claims.
 */
export async function readIpcFileText(filePath: string, maxBytes: number): Promise<ReadResult> {
  let file: { fd: number; stat: Stats };
  try {
    file = openRegularFile(filePath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTREG') return { ok: false, error: 'not a regular file' };
    return { ok: false, error: code === 'ELOOP' ? 'symlink refused' : `cannot open (${code ?? error})` };
  }
  const { fd, stat } = file;
  try {
    if (stat.size > maxBytes) return { ok: false, error: `file too large (${stat.size} bytes)` };
    // One byte more than stat said: a file that grows while it is read is refused, not cut.
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await readAt(fd, buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > stat.size) return { ok: false, error: 'file changed while being read' };
    return { ok: true, text: buffer.subarray(0, length).toString('utf8') };
  } catch (error) {
    return { ok: false, error: `cannot read (${String(error)})` };
  } finally {
    closeSync(fd);
  }
}

/** The part of a logger the folder watch uses (the host's pino logger and the runner's log both fit). */
export interface WatchLog {
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface FolderWatch {
  /** Starts watching; resolves after the first scan. */
  start(): Promise<void>;
  /** Scans now; resolves when every file present at the call has been handled. */
  scan(): Promise<void>;
  /** Stops watching; a scan under way stops going round again. */
  close(): void;
}

/**
 * Runs scanOnce whenever the folder changes (fs.watch) and every fallbackScanMs besides: fs.watch misses events on
 * some mounts (network file systems, some VM file sharing), so the slow scan is the safety net, not the main path.
 * Scans never overlap; a request during one makes it go round once more, so no file is missed.
 */
export function watchFolder(options: {
  directory: string;
  /** Names the folder in log lines, e.g. 'input folder'. */
  label: string;
  fallbackScanMs: number;
  log: WatchLog;
  scanOnce(): Promise<void>;
}): FolderWatch {
  const { log, label } = options;
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let isRescanNeeded = false;
  let isClosed = false;

  function scan(): Promise<void> {
    if (running) {
      isRescanNeeded = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          isRescanNeeded = false;
          await options.scanOnce();
        } while (isRescanNeeded && !isClosed);
      } catch (error) {
        log.error({ err: error }, `${label} scan failed`);
      } finally {
        running = null;
      }
    })();
    return running;
  }

  return {
    async start() {
      try {
        watcher = watch(options.directory, { persistent: false }, () => void scan());
        watcher.on('error', (error) => {
          log.warn({ err: error }, `${label} watch failed; relying on the fallback scan`);
          watcher?.close();
          watcher = null;
        });
      } catch (error) {
        log.warn({ err: error }, `cannot watch the ${label}; relying on the fallback scan`);
      }
      timer = setInterval(() => void scan(), options.fallbackScanMs);
      timer.unref();
      await scan();
    },
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
