// A run's IPC folder on the host: making and clearing it, and reading what the agent writes to output/ safely.
// Reads refuse symlinks and oversized files; caps and a tamper check bound what one run can make the host do.
import { chmodSync, chownSync, promises as fs, lstatSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { IPC_INPUT_DIR, IPC_OUTPUT_DIR, isIpcFileName, MAX_IPC_FILE_BYTES } from './ipc-protocol.js';
import { readIpcFileText, watchFolder } from './ipc-read.js';
import type { Logger } from './log.js';

/** Output files one run may hand the host in total; past it everything is refused unread. */
export const MAX_IPC_FILES_PER_RUN = 5_000;
/** Output files the host reads in any one second of a run; the rest of a burst is refused unread. */
export const MAX_IPC_FILES_PER_SECOND = 50;
/** fs.watch misses events on some file systems; this slow scan is the safety net, not the main path. */
export const IPC_FALLBACK_SCAN_MS = 1_500;

export interface OutputWatcherDeps {
  outputDir: string;
  log: Logger;
  now(): number;
  /** Must not throw. */
  audit(action: string, decision: 'allow' | 'deny', detail: Record<string, unknown>): void;
  /** The agent flooded the host with files or tampered with the folder. Must not throw. */
  reportAbuse(reason: string): void;
  /** A file was read whole; it is removed once this returns. */
  onFile(name: string, text: string): void;
  /** A file was refused before it could be read (bad name, symlink, too large …). */
  onRejected(name: string, error: string): void;
  fallbackScanMs?: number;
  maxFilesPerRun?: number;
  maxFilesPerSecond?: number;
}

export interface OutputWatcher {
  /** Starts watching output/ (and scans once). */
  start(): void;
  /** Processes every file in output/ now; resolves once they are handled. Never rejects. */
  scan(): Promise<void>;
  /** Stops watching. A later scan() still works (for the last files after the container ended). */
  close(): void;
}

/**
 * Creates `<runDir>/{input,output}` empty, removing whatever an earlier run left there. input/ is the host's
 * (the container only reads it); output/ belongs to the container's user, who writes it.
 */
export function prepareRunDirs(
  runDir: string,
  containerUser: { uid: number; gid: number },
): { inputDir: string; outputDir: string } {
  const inputDir = path.join(runDir, IPC_INPUT_DIR);
  const outputDir = path.join(runDir, IPC_OUTPUT_DIR);
  mkdirSync(runDir, { recursive: true });
  // rm does not follow symlinks: a link the agent left in place of a folder goes, not its target.
  rmSync(inputDir, { recursive: true, force: true });
  rmSync(outputDir, { recursive: true, force: true });
  // The run folder and input/ need only be traversable and readable by the container's user.
  chmodSync(runDir, 0o755);
  mkdirSync(inputDir, { mode: 0o755 });
  mkdirSync(outputDir, { mode: 0o700 });
  chmodSync(inputDir, 0o755);
  chmodSync(outputDir, 0o700);
  if (process.getuid?.() === 0) chownSync(outputDir, containerUser.uid, containerUser.gid);
  return { inputDir, outputDir };
}

/** Removes a finished run's files (prompts hold chat text that need not outlive the run). Never throws. */
export function clearRunDirs(runDir: string): void {
  for (const dir of [IPC_INPUT_DIR, IPC_OUTPUT_DIR]) {
    try {
      rmSync(path.join(runDir, dir), { recursive: true, force: true });
    } catch {
      // Left for the next run's prepareRunDirs.
    }
  }
}

/** Watches a run's output/ and hands each new file, read safely and counted against the caps, to the caller. */
export function createOutputWatcher(deps: OutputWatcherDeps): OutputWatcher {
  const { outputDir, log } = deps;
  const maxPerRun = deps.maxFilesPerRun ?? MAX_IPC_FILES_PER_RUN;
  const maxPerSecond = deps.maxFilesPerSecond ?? MAX_IPC_FILES_PER_SECOND;
  /** Names already handled: a file whose removal failed is never handled twice. */
  const seen = new Set<string>();
  const recentReads: number[] = [];
  let filesTaken = 0;
  let floodReason: string | null = null;
  let outputIdentity: { dev: number; ino: number } | null = null;
  let isTamperReported = false;
  let refusedInFlood = 0;

  /**
   * output/ must still be the folder prepareRunDirs made. The container mounts it on its own (a mount point cannot
   * be renamed), so a swap for a symlink to a host folder should be impossible; if it happens anyway, nothing in
   * it is read or removed.
   */
  async function isOutputDirIntact(): Promise<boolean> {
    let stat: Awaited<ReturnType<typeof fs.lstat>>;
    try {
      stat = await fs.lstat(outputDir);
    } catch (error) {
      log.warn({ err: error }, 'cannot stat IPC output folder');
      return false;
    }
    outputIdentity ??= { dev: stat.dev, ino: stat.ino };
    if (stat.isDirectory() && stat.dev === outputIdentity.dev && stat.ino === outputIdentity.ino) return true;
    if (!isTamperReported) {
      isTamperReported = true;
      const reason = 'the IPC output folder was replaced';
      log.error({ outputDir }, 'IPC output folder replaced; refusing to read it');
      deps.audit('ipc-folder', 'deny', { reason });
      deps.reportAbuse(reason);
    }
    return false;
  }

  /** Counts a file against the caps. Returns the reason to refuse it unread, or null to read it. */
  function checkFlood(): string | null {
    if (floodReason) return floodReason;
    const now = deps.now();
    while (recentReads.length > 0 && (recentReads[0] as number) <= now - 1000) recentReads.shift();
    if (filesTaken >= maxPerRun) floodReason = `more than ${maxPerRun} IPC files in one run`;
    else if (recentReads.length >= maxPerSecond)
      floodReason = `more than ${maxPerSecond} IPC files in one second`;
    if (floodReason) {
      log.warn(
        { reason: floodReason },
        'agent is flooding the host with IPC files; refusing the rest of this run',
      );
      deps.audit('ipc-flood', 'deny', { reason: floodReason });
      deps.reportAbuse(floodReason);
      return floodReason;
    }
    filesTaken += 1;
    recentReads.push(now);
    return null;
  }

  async function handleName(name: string): Promise<void> {
    const filePath = path.join(outputDir, name);
    const flood = checkFlood();
    if (flood) {
      refusedInFlood += 1;
      return;
    }
    const read = await readIpcFileText(filePath, MAX_IPC_FILE_BYTES);
    if (!read.ok) {
      deps.onRejected(name, read.error);
      return;
    }
    deps.onFile(name, read.text);
  }

  async function scanOnce(): Promise<void> {
    if (!(await isOutputDirIntact())) return;
    let names: string[];
    try {
      names = await fs.readdir(outputDir);
    } catch (error) {
      log.warn({ err: error }, 'cannot list IPC output folder');
      return;
    }
    for (const name of names.sort()) {
      if (seen.has(name)) continue;
      // Temp files are still being written; the rename that follows brings them back as real names.
      if (name.startsWith('.tmp-')) continue;
      seen.add(name);
      if (isIpcFileName(name)) await handleName(name);
      else deps.onRejected(name, 'unexpected file name');
      await fs.rm(path.join(outputDir, name), { recursive: true, force: true }).catch((error: unknown) => {
        log.warn({ err: error, file: name }, 'cannot remove processed IPC file');
      });
    }
    if (refusedInFlood > 0) {
      log.warn({ refused: refusedInFlood, reason: floodReason }, 'IPC files refused unread');
      refusedInFlood = 0;
    }
  }

  try {
    const stat = lstatSync(outputDir);
    if (stat.isDirectory()) outputIdentity = { dev: stat.dev, ino: stat.ino };
  } catch {
    // Checked again (and reported) on the first scan.
  }

  const folder = watchFolder({
    directory: outputDir,
    label: 'IPC output folder',
    fallbackScanMs: deps.fallbackScanMs ?? IPC_FALLBACK_SCAN_MS,
    log,
    scanOnce,
  });
  return {
    start() {
      void folder.start();
    },
    scan: folder.scan,
    close: folder.close,
  };
}
