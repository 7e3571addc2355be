// The runner's side of the IPC files: output written atomically under ordered names; input read carefully
// (size-capped, regular files only) and watched, each file handed over once, in name (= creation) order.
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  encodeIpcFile,
  type InputFile,
  type IpcResult,
  ipcFileName,
  isIpcFileName,
  MAX_IPC_FILE_BYTES,
  MAX_SHORT_CHARS,
  type OutputFile,
  parseIpcFile,
} from '../../src/protocol/ipc.js';
import { readIpcFileText, watchFolder, writeAtomic } from '../../src/protocol/read.js';
import type { Log } from './log.js';

export type OutputWriter = ReturnType<typeof createOutputWriter>;

/** Writes output files into one directory, each under the next sequence number. */
export function createOutputWriter(directory: string) {
  let sequence = 0;
  // Writes go one after another, so a file never appears before one with a smaller sequence number.
  let tail: Promise<unknown> = Promise.resolve();
  return {
    /** Resolves with the file name once the file is in place; rejects when the file is invalid or the write fails. */
    write(file: OutputFile): Promise<string> {
      const encoded = encodeIpcFile('output', file);
      if (!encoded.ok)
        return Promise.reject(new Error(`refusing to write ${file.type} file: ${encoded.error}`));
      const name = ipcFileName(++sequence, randomUUID());
      const written = tail.then(() => writeAtomic(directory, name, encoded.value)).then(() => name);
      tail = written.catch(() => {});
      return written;
    },
  };
}

/** Reads and parses one input file. Never throws; refuses what readIpcFileText refuses. */
export async function readInputFile(filePath: string): Promise<IpcResult<InputFile>> {
  const read = await readIpcFileText(filePath, MAX_IPC_FILE_BYTES);
  return read.ok ? parseIpcFile('input', read.text) : read;
}

export function createInputWatcher(options: {
  directory: string;
  /** Called once per file, in name order. Must not throw. */
  onFile(file: InputFile, name: string): void;
  /** A file that could not be read or parsed; it is skipped for good (fail closed, no retry loop). */
  onInvalid(name: string, error: string): void;
  log: Log;
  fallbackScanMs?: number;
}) {
  const { directory, log } = options;
  // The runner never deletes input files (input/ is mounted read-only), so it remembers what it has read.
  const seen = new Set<string>();
  return watchFolder({
    directory,
    label: 'input folder',
    fallbackScanMs: options.fallbackScanMs ?? 2_000,
    log,
    async scanOnce(isClosed) {
      const names = await fs.readdir(directory).catch((error: unknown) => {
        log.warn({ err: error, directory }, 'cannot list input folder');
        return [];
      });
      for (const name of names.filter((name) => isIpcFileName(name) && !seen.has(name)).sort()) {
        if (isClosed()) return;
        seen.add(name);
        const result = await readInputFile(path.join(directory, name));
        if (isClosed()) return;
        if (result.ok) options.onFile(result.value, name);
        else options.onInvalid(name, result.error);
      }
    },
  });
}

/** Text cut to fit a protocol field (a short text unless told). */
export function truncate(text: string, max = MAX_SHORT_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * A failed turn's error in words for the chat: Claude Code's "API Error: 502 …" becomes the model API's own message,
 * without Claude Code's advice that names the relay inside the container (127.0.0.1:port), which means nothing to
 * the person reading and is Warren's inside.
 */
export function plainError(text: string): string {
  const api = /^API Error: (\d{3}) ([\s\S]*?)(?:\s+This is a server-side issue[\s\S]*)?$/.exec(text.trim());
  let plain = text;
  if (api) {
    const [, status, body = ''] = api;
    let message = body.replace(/^Warren: /, '').replace(/\.$/, '');
    try {
      const parsed = JSON.parse(body) as { error?: { message?: unknown } };
      if (typeof parsed.error?.message === 'string') message = parsed.error.message;
    } catch {}
    plain = message.startsWith('the model API') ? message : `the model API answered ${status}: ${message}`;
  }
  return plain.replace(/\b(?:127\.0\.0\.1|localhost)(?::\d+)?\b/g, 'the relay');
}
