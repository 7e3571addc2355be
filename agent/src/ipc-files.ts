// Reading and writing IPC files: atomic writes with ordered names, and careful, size-capped reads.
import { randomUUID } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import {
  encodeIpcFile,
  type InputFile,
  type IpcResult,
  ipcFileName,
  MAX_IPC_FILE_BYTES,
  type OutputFile,
  parseIpcFile,
} from '../../src/ipc-protocol.js';

/** Writes output files into one directory, each under the next sequence number. */
export interface OutputWriter {
  /** Resolves with the file name once the file is in place; rejects when the file is invalid or the write fails. */
  write(file: OutputFile): Promise<string>;
}

export function createOutputWriter(directory: string): OutputWriter {
  let sequence = 0;
  // Writes go one after another, so a file never appears before one with a smaller sequence number.
  let tail: Promise<unknown> = Promise.resolve();
  return {
    write(file) {
      const encoded = encodeIpcFile('output', file);
      if (!encoded.ok)
        return Promise.reject(new Error(`refusing to write ${file.type} file: ${encoded.error}`));
      sequence += 1;
      const name = ipcFileName(sequence, randomUUID());
      const written = tail.then(() => writeAtomic(directory, name, encoded.value)).then(() => name);
      tail = written.catch(() => {});
      return written;
    },
  };
}

/** Writes to a dot-temp name in the same directory, then renames: a reader sees the whole file or nothing. */
export async function writeAtomic(directory: string, name: string, text: string): Promise<void> {
  const temp = path.join(directory, `.tmp-${randomUUID()}`);
  try {
    await fs.writeFile(temp, text, { flag: 'wx', mode: 0o644 });
    await fs.rename(temp, path.join(directory, name));
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => {});
    throw error;
  }
}

/**
 * Reads and parses one input file. Never throws. Refuses symlinks and anything but a regular file (O_NOFOLLOW),
 * and never reads more than the cap, whatever the file claims.
 */
export async function readInputFile(filePath: string): Promise<IpcResult<InputFile>> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, error: `cannot open: ${(error as NodeJS.ErrnoException).code ?? String(error)}` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { ok: false, error: 'not a regular file' };
    if (stat.size > MAX_IPC_FILE_BYTES) return { ok: false, error: 'file too large' };
    // One byte more than the size stat reported: a file that grows while we read is refused, not truncated.
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > stat.size) return { ok: false, error: 'file changed while being read' };
    return parseIpcFile('input', buffer.subarray(0, length).toString('utf8'));
  } catch (error) {
    return { ok: false, error: `cannot read: ${String(error)}` };
  } finally {
    await handle.close().catch(() => {});
  }
}
