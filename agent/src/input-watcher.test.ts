import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type InputFile, ipcFileName } from '../../src/protocol/ipc.js';
import { writeAtomic } from '../../src/protocol/read.js';
import { createInputWatcher } from './ipc-files.js';
import { silentLog } from './log.js';

let directory: string;
let watcher: ReturnType<typeof createInputWatcher> | null;
let received: string[];
let invalid: string[];

beforeEach(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'warren-input-'));
  watcher = null;
  received = [];
  invalid = [];
});
afterEach(async () => {
  watcher?.close();
  await fs.rm(directory, { recursive: true, force: true });
});

function start(fallbackScanMs = 60_000): Promise<void> {
  watcher = createInputWatcher({
    directory,
    log: silentLog(),
    fallbackScanMs,
    onFile: (file: InputFile) => received.push(file.type === 'prompt' ? file.batchId : file.type),
    onInvalid: (name) => invalid.push(name),
  });
  return watcher.start();
}

const prompt = (batchId: string) => JSON.stringify({ type: 'prompt', batchId, text: `text of ${batchId}` });

async function waitUntil(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('input watcher', () => {
  it('picks up files written before it started, in name order', async () => {
    await writeAtomic(directory, ipcFileName(2, randomUUID()), prompt('b2'));
    await writeAtomic(directory, ipcFileName(1, randomUUID()), prompt('b1'));
    await writeAtomic(directory, ipcFileName(10, randomUUID()), prompt('b10'));
    await start();
    expect(received).toEqual(['b1', 'b2', 'b10']);
  });

  it('sees a file written later without waiting for the fallback scan', async () => {
    await start();
    await writeAtomic(directory, ipcFileName(1, randomUUID()), prompt('b1'));
    await waitUntil(() => received.length === 1);
    expect(received).toEqual(['b1']);
  });

  it('hands over each file once, however many scans see it', async () => {
    await writeAtomic(directory, ipcFileName(1, randomUUID()), prompt('b1'));
    await start(20);
    await Promise.all([watcher?.scan(), watcher?.scan()]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual(['b1']);
  });

  it('never reads a temp file that is still being written', async () => {
    await start(20);
    await fs.writeFile(path.join(directory, '.tmp-123'), '{"type":"prom');
    await fs.writeFile(path.join(directory, 'notes.txt'), 'not ipc');
    await watcher?.scan();
    expect(received).toEqual([]);
    expect(invalid).toEqual([]);
    await fs.writeFile(path.join(directory, '.tmp-123'), prompt('b1'));
    await fs.rename(path.join(directory, '.tmp-123'), path.join(directory, ipcFileName(1, 'abc')));
    await watcher?.scan();
    expect(received).toEqual(['b1']);
  });

  it('reports a malformed file once and goes on with the next', async () => {
    await writeAtomic(directory, ipcFileName(1, randomUUID()), '{oops');
    await writeAtomic(directory, ipcFileName(2, randomUUID()), prompt('b2'));
    await start();
    await watcher?.scan();
    expect(invalid).toHaveLength(1);
    expect(received).toEqual(['b2']);
  });

  it('scan() resolves only after files present at the call are handed over', async () => {
    await start();
    for (let sequence = 1; sequence <= 20; sequence += 1) {
      await writeAtomic(directory, ipcFileName(sequence, randomUUID()), prompt(`b${sequence}`));
    }
    await watcher?.scan();
    expect(received).toEqual(Array.from({ length: 20 }, (_, index) => `b${index + 1}`));
  });

  it('reads nothing after close', async () => {
    await start(20);
    watcher?.close();
    await writeAtomic(directory, ipcFileName(1, randomUUID()), prompt('b1'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual([]);
  });
});
