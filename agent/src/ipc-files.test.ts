import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_IPC_FILE_BYTES, parseIpcFile } from '../../src/protocol/ipc.js';
import { createOutputWriter, plainError, readInputFile } from './ipc-files.js';

let directory: string;
beforeEach(async () => {
  directory = await fs.mkdtemp(path.join(os.tmpdir(), 'warren-ipc-files-'));
});
afterEach(async () => {
  await fs.rm(directory, { recursive: true, force: true });
});

describe('createOutputWriter', () => {
  it('writes files whose names sort in write order and leaves no temp files', async () => {
    const writer = createOutputWriter(directory);
    await Promise.all([
      writer.write({ type: 'ready', protocolVersion: 1 }),
      writer.write({ type: 'log', level: 'info', message: 'second' }),
      writer.write({ type: 'exit', reason: 'idle' }),
    ]);
    const names = (await fs.readdir(directory)).sort();
    expect(names).toHaveLength(3);
    const types = await Promise.all(
      names.map(async (name) => {
        const parsed = parseIpcFile('output', await fs.readFile(path.join(directory, name), 'utf8'));
        return parsed.ok ? parsed.value.type : parsed.error;
      }),
    );
    expect(types).toEqual(['ready', 'log', 'exit']);
  });

  it('refuses an invalid file instead of writing it', async () => {
    const writer = createOutputWriter(directory);
    await expect(writer.write({ type: 'log', level: 'info', message: 'x'.repeat(5_000) })).rejects.toThrow(
      /refusing/,
    );
    expect(await fs.readdir(directory)).toEqual([]);
  });
});

describe('readInputFile', () => {
  it('reads and parses a host file', async () => {
    const file = path.join(directory, 'prompt.json');
    await fs.writeFile(file, JSON.stringify({ type: 'stop', reason: 'bye' }));
    expect(await readInputFile(file)).toEqual({ ok: true, value: { type: 'stop', reason: 'bye' } });
  });

  it('refuses a symlink, even to a valid file', async () => {
    const target = path.join(directory, 'target.json');
    await fs.writeFile(target, JSON.stringify({ type: 'stop', reason: 'bye' }));
    await fs.symlink(target, path.join(directory, 'link.json'));
    expect(await readInputFile(path.join(directory, 'link.json'))).toEqual({
      ok: false,
      error: 'symlink refused',
    });
  });

  it('refuses a file over the cap without reading it', async () => {
    const file = path.join(directory, 'big.json');
    await fs.writeFile(file, Buffer.alloc(MAX_IPC_FILE_BYTES + 10, 0x20));
    expect(await readInputFile(file)).toEqual({
      ok: false,
      error: `file too large (${MAX_IPC_FILE_BYTES + 10} bytes)`,
    });
  });

  it('refuses a fifo instead of blocking on it', async () => {
    const fifo = path.join(directory, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    expect(await readInputFile(fifo)).toEqual({ ok: false, error: 'not a regular file' });
  });

  it('reports a missing file as an error', async () => {
    expect(await readInputFile(path.join(directory, 'gone.json'))).toMatchObject({ ok: false });
  });
});

describe('plainError', () => {
  it("turns Claude Code's API error into the model API's words, without the relay's address", () => {
    const fromProxy =
      'API Error: 502 Warren: the model API at https://api.example.test could not be reached (ECONNREFUSED). This is a ' +
      'server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway ' +
      '(127.0.0.1:34991).';
    expect(plainError(fromProxy)).toBe(
      'the model API at https://api.example.test could not be reached (ECONNREFUSED)',
    );
    const upstream =
      'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
    expect(plainError(upstream)).toBe('the model API answered 529: Overloaded');
    expect(plainError('Request to http://127.0.0.1:4100/v1/messages failed')).toBe(
      'Request to http://the relay/v1/messages failed',
    );
    expect(plainError('the agent reported an error')).toBe('the agent reported an error');
  });
});
