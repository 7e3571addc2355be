import { describe, expect, it } from 'vitest';
import type { OutputFile } from '../../src/protocol/ipc.js';
import { createHostRequests } from './host-requests.js';
import type { OutputWriter } from './ipc-files.js';

function recordingWriter(): OutputWriter & { files: OutputFile[] } {
  const files: OutputFile[] = [];
  return {
    files,
    async write(file) {
      files.push(file);
      return `file-${files.length}`;
    },
  };
}

const message = { tool: 'send_message' as const, args: { text: 'hello' } };

describe('host requests', () => {
  it('writes a request file and resolves with the host response', async () => {
    const output = recordingWriter();
    const requests = createHostRequests({ output, timeoutMs: 5_000 });
    const answer = requests.send(message);
    await Promise.resolve();
    const request = output.files[0];
    if (request?.type !== 'request') throw new Error('no request written');
    expect(request.args).toEqual({ text: 'hello' });
    expect(requests.resolve({ type: 'response', id: request.id, ok: false, error: 'not allowed' })).toBe(
      true,
    );
    expect(await answer).toEqual({ ok: false, error: 'not allowed' });
    expect(requests.pendingCount()).toBe(0);
  });

  it('answers with an error when the host stays silent', async () => {
    const requests = createHostRequests({ output: recordingWriter(), timeoutMs: 20 });
    expect(await requests.send(message)).toMatchObject({
      ok: false,
      error: expect.stringContaining('did not answer'),
    });
  });

  it('answers with an error when the request file cannot be written', async () => {
    const output: OutputWriter = { write: () => Promise.reject(new Error('disk full')) };
    const requests = createHostRequests({ output, timeoutMs: 5_000 });
    expect(await requests.send(message)).toEqual({ ok: false, error: 'request not sent: disk full' });
  });

  it('ignores a response for an id nobody waits for', () => {
    const requests = createHostRequests({ output: recordingWriter(), timeoutMs: 5_000 });
    expect(requests.resolve({ type: 'response', id: 'unknown', ok: true })).toBe(false);
  });

  it('cancelAll answers every waiting request', async () => {
    const requests = createHostRequests({ output: recordingWriter(), timeoutMs: 5_000 });
    const answers = [requests.send(message), requests.send(message)];
    requests.cancelAll('the run is ending');
    expect(await Promise.all(answers)).toEqual([
      { ok: false, error: 'the run is ending' },
      { ok: false, error: 'the run is ending' },
    ]);
  });
});
