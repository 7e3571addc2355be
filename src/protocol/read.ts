// Reading IPC files safely (one file, or a folder scanned as files arrive) and writing them atomically: the host's
// and the runner's one way to do either. Shared with the agent image like ipc.ts; imports only node built-ins.
import { randomUUID } from 'node:crypto';
import fs, { type FSWatcher } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

export type ReadResult = { ok: true; text: string } | { ok: false; error: string };

const readAt = promisify(fs.read);

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
export function openRegularFile(filePath: string) {
  const fd = fs.openSync(filePath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  const stat = fs.fstatSync(fd);
  if (stat.isFile()) return { fd, stat };
  fs.closeSync(fd);
  throw Object.assign(new Error(`not a regular file: ${filePath}`), { code: 'ENOTREG' });
}

/**
 * Reads a regular file (openRegularFile) as UTF-8 text. Never throws. Refuses files over maxBytes, without reading
 * more than maxBytes + 1 whatever the file claims.
 */
export async function readIpcFileText(filePath: string, maxBytes: number): Promise<ReadResult> {
  let file: ReturnType<typeof openRegularFile>;
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
    fs.closeSync(fd);
  }
}

/**
 * Writes the text under a new dot-temp name (never an existing file opened), then renames it into place: a reader
 * sees all or nothing. 0644: the other side's user must read it (the 0700 data directory keeps others out). Throws.
 */
export function writeAtomic(directory: string, name: string, text: string): void {
  const temp = path.join(directory, `.tmp-${randomUUID()}`);
  try {
    fs.writeFileSync(temp, text, { flag: 'wx', mode: 0o644 });
    fs.renameSync(temp, path.join(directory, name));
  } catch (error) {
    try {
      fs.rmSync(temp, { force: true });
    } catch {
      // The write's own error is the one to report; a leftover temp file is only clutter.
    }
    throw error;
  }
}

export type FolderWatch = ReturnType<typeof watchFolder>;

/**
 * Runs scanOnce whenever the folder changes (fs.watch) and every fallbackScanMs besides, as fs.watch misses events on
 * some mounts. Scans never overlap; a request during one makes it go round once more, so no file is missed.
 */
export function watchFolder(options: {
  directory: string;
  /** Names the folder in log lines, e.g. 'input folder'. */
  label: string;
  fallbackScanMs: number;
  /** The host's pino logger and the runner's log both fit. */
  log: Record<'warn' | 'error', (fields: Record<string, unknown>, message: string) => void>;
  /** isClosed: true once close() was called; a scan should stop handing files over then. */
  scanOnce(isClosed: () => boolean): Promise<void>;
}) {
  const { log, label } = options;
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let isRescanNeeded = false;
  let isClosed = false;

  /** Scans now; resolves when every file present at the call has been handled. */
  function scan(): Promise<void> {
    if (running) {
      isRescanNeeded = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          isRescanNeeded = false;
          await options.scanOnce(() => isClosed);
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
    /** Starts watching; resolves after the first scan. */
    async start(): Promise<void> {
      try {
        watcher = fs.watch(options.directory, { persistent: false }, () => void scan());
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
    /** Stops watching; a scan under way stops going round again. */
    close(): void {
      isClosed = true;
      watcher?.close();
      watcher = null;
      clearInterval(timer);
    },
  };
}
