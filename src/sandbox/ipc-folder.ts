// A run's IPC folder on the host: making and clearing it, and reading what the agent writes to output/ safely.
// Everything in output/ goes through the folder's descriptor (safe-fs.ts); caps bound what one run can make the host do.
import { randomUUID } from 'node:crypto';
import { closeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { IPC_INPUT_DIR, IPC_OUTPUT_DIR, isIpcFileName, MAX_IPC_FILE_BYTES } from '../protocol/ipc.js';
import { type FolderWatch, type ReadResult, readIpcFileText, watchFolder } from '../protocol/read.js';
import type { ContainerUser } from './group-folder.js';
import {
  chownDescriptor,
  inFolder,
  listDirectory,
  openDirectoryIn,
  pathIn,
  renameIn,
  unlinkIn,
  withDirectory,
} from './safe-fs.js';

/** Output files one run may hand the host, in all and in any one second; past either the rest is refused unread. */
const MAX_IPC_FILES_PER_RUN = 5_000;
const MAX_IPC_FILES_PER_SECOND = 50;
/** fs.watch misses events on some file systems; this slow scan is the safety net, not the main path. */
const IPC_FALLBACK_SCAN_MS = 1_500;
/** Names one listing of output/ reads at most; more at once is a flood (a working runner leaves a handful). */
const MAX_IPC_FOLDER_ENTRIES = 1_000;
/** Prefix of a run folder set aside because it still held folders (for the clean-up container). */
const SET_ASIDE_PREFIX = 'trash-';

export interface OutputWatcherDeps {
  outputDir: string;
  log: Logger;
  now(): number;
  /** Each new name within the caps, read whole or refused unread with the reason; removed once this settles. */
  onFile(name: string, read: ReadResult): void | Promise<void>;
  /** The agent flooded the host with files: the rest of this run's are refused unread. Must not throw. */
  onFlood(reason: string): void;
  fallbackScanMs?: number;
  maxFilesPerRun?: number;
  maxFilesPerSecond?: number;
}

/** Creates `<runDir>/{input,output}` empty (clearRunDirs); returns the folders set aside for clean-up. */
export function prepareRunDirs(runDir: string, containerUser: ContainerUser) {
  const setAside = clearRunDirs(runDir);
  // The run folder and input/ are the host's, only readable by the container's user; output/ is that user's.
  inFolder(runDir, 0o755, (runFd) => {
    closeSync(openDirectoryIn(runFd, IPC_INPUT_DIR, 0o755));
    const outputFd = openDirectoryIn(runFd, IPC_OUTPUT_DIR, 0o700);
    try {
      if (process.getuid?.() === 0) chownDescriptor(outputFd, containerUser);
    } finally {
      closeSync(outputFd);
    }
  });
  const inputDir = path.join(runDir, IPC_INPUT_DIR);
  return { inputDir, outputDir: path.join(runDir, IPC_OUTPUT_DIR), setAside };
}

/**
 * Empties a finished run's input/ and output/ (prompts hold chat text) unwalked: names that are not folders are
 * unlinked through the folder's descriptor (unlink never follows a link); a folder holding folders is renamed aside
 * whole, in the host-only run folder, for a clean-up container with no more reach than the agent. Returns every
 * set-aside folder waiting. Never throws.
 */
export function clearRunDirs(runDir: string): string[] {
  try {
    return withDirectory(runDir, (runFd) => {
      for (const name of [IPC_INPUT_DIR, IPC_OUTPUT_DIR]) emptyOrSetAside(runFd, name);
      return listDirectory(runFd, MAX_IPC_FOLDER_ENTRIES)
        .entries.filter((entry) => entry.isDirectory && entry.name.startsWith(SET_ASIDE_PREFIX))
        .map((entry) => path.join(runDir, entry.name));
    });
  } catch {
    // Missing (first run) or unusable: prepareRunDirs makes it, or fails with the reason.
    return [];
  }
}

/** Unlinks a name (never its target); the error code if that failed, but not because the name was gone. */
function unlinkFailure(dirFd: number, name: string): string | null {
  try {
    unlinkIn(dirFd, name);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    return code === 'ENOENT' ? null : code;
  }
}

function emptyOrSetAside(runFd: number, name: string): void {
  let fd: number;
  try {
    fd = openDirectoryIn(runFd, name);
  } catch (error) {
    // Not a folder (a link or file in its place): the name itself goes.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') unlinkIn(runFd, name);
    return;
  }
  // A folder inside, or more names than one listing reads, and it goes aside unwalked. So does one whose unlink
  // fails (EISDIR, EPERM): a folder the listing could not tell apart (file systems without entry types).
  let isSetAside: boolean;
  try {
    const { entries, isComplete } = listDirectory(fd, MAX_IPC_FOLDER_ENTRIES);
    isSetAside =
      !isComplete ||
      entries.some((entry) => entry.isDirectory) ||
      !entries.every((entry) => unlinkFailure(fd, entry.name) === null);
  } finally {
    closeSync(fd);
  }
  if (isSetAside) renameIn(runFd, name, `${SET_ASIDE_PREFIX}${randomUUID()}`);
}

/** Watches a run's output/ and hands each new file, read safely and counted against the caps, to the caller. */
export function createOutputWatcher(deps: OutputWatcherDeps): FolderWatch {
  const { outputDir, log } = deps;
  const maxPerRun = deps.maxFilesPerRun ?? MAX_IPC_FILES_PER_RUN;
  const maxPerSecond = deps.maxFilesPerSecond ?? MAX_IPC_FILES_PER_SECOND;
  /** Names already handled: a file whose removal failed is never handled twice. */
  const seen = new Set<string>();
  const recentReads: number[] = [];
  let filesTaken = 0;
  let floodReason: string | null = null;
  let refusedInFlood = 0;

  function flood(reason: string): string {
    floodReason = reason;
    deps.onFlood(reason);
    return reason;
  }

  /** Counts a name against the caps, whatever it is. Returns the reason to refuse it unread, or null to read it. */
  function checkFlood(): string | null {
    if (floodReason) return floodReason;
    const now = deps.now();
    while (recentReads.length > 0 && (recentReads[0] as number) <= now - 1000) recentReads.shift();
    if (filesTaken >= maxPerRun) return flood(`more than ${maxPerRun} IPC files in one run`);
    if (recentReads.length >= maxPerSecond) return flood(`more than ${maxPerSecond} IPC files in one second`);
    filesTaken += 1;
    recentReads.push(now);
    return null;
  }

  async function handle(outputFd: number, name: string, isDirectory: boolean): Promise<void> {
    if (checkFlood()) {
      refusedInFlood += 1;
      return;
    }
    const refuse = (error: string) => deps.onFile(name, { ok: false, error });
    if (isDirectory) return refuse('a folder, not a file (cleared after the run)');
    if (!isIpcFileName(name)) return refuse('unexpected file name');
    await deps.onFile(name, await readIpcFileText(pathIn(outputFd, name), MAX_IPC_FILE_BYTES));
  }

  async function scanOnce(): Promise<void> {
    try {
      // Its parent is the host's alone, so only output/ itself is checked: a folder, not a link.
      await withDirectory(outputDir, async (outputFd) => {
        const listing = listDirectory(outputFd, MAX_IPC_FOLDER_ENTRIES);
        if (!listing.isComplete && !floodReason) {
          flood(`more than ${MAX_IPC_FOLDER_ENTRIES} entries at once in the IPC output folder`);
        }
        for (const entry of listing.entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
          if (seen.has(entry.name)) continue;
          // Temp files are still being written; the rename that follows brings them back as real names.
          if (entry.name.startsWith('.tmp-') && !entry.isDirectory && !floodReason) continue;
          seen.add(entry.name);
          await handle(outputFd, entry.name, entry.isDirectory);
          // A handled name goes; a folder stays for the clean-up after the run (the host never walks one).
          if (entry.isDirectory) continue;
          const failure = unlinkFailure(outputFd, entry.name);
          if (failure !== null && failure !== 'EISDIR' && failure !== 'EPERM') {
            log.warn({ file: entry.name, code: failure }, 'cannot remove processed IPC file');
          }
        }
      });
    } catch (error) {
      return log.warn({ err: error }, 'cannot read the IPC output folder');
    }
    if (refusedInFlood > 0) {
      log.warn({ refused: refusedInFlood, reason: floodReason }, 'IPC files refused unread');
      refusedInFlood = 0;
    }
  }

  return watchFolder({
    directory: outputDir,
    label: 'IPC output folder',
    fallbackScanMs: deps.fallbackScanMs ?? IPC_FALLBACK_SCAN_MS,
    log,
    scanOnce,
  });
}
