// Reading and writing IPC files: atomic writes with ordered names, and careful, size-capped reads.
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  encodeIpcFile,
  type InputFile,
  type IpcResult,
  ipcFileName,
  MAX_IPC_FILE_BYTES,
  type OutputFile,
  parseIpcFile,
} from '../../src/protocol/ipc.js';
import { readIpcFileText } from '../../src/protocol/read.js';

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

/** Reads and parses one input file. Never throws; refuses what readIpcFileText refuses. */
export async function readInputFile(filePath: string): Promise<IpcResult<InputFile>> {
  const read = await readIpcFileText(filePath, MAX_IPC_FILE_BYTES);
  return read.ok ? parseIpcFile('input', read.text) : read;
}
