import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type InputFile,
  IPC_PROTOCOL_VERSION,
  ipcFileName,
  type OutputFile,
  parseIpcFile,
} from '../../src/protocol/ipc.js';
import { writeAtomic } from '../../src/protocol/read.js';
import type { AgentLoop, LoopEnd, LoopTurn } from './agent-loop.js';
import { createHostRequests } from './host-requests.js';
import { createOutputWriter } from './ipc-files.js';
import { silentLog } from './log.js';
import type { QueuedPrompt } from './prompt-queue.js';
import { startRunner, toReplyText } from './runner.js';

type Runner = ReturnType<typeof startRunner>;

/** A model loop that answers each prompt with "echo: <text>" and can be told to fail a resume. */
function fakeLoop(
  options: { failResumeOf?: string; answer?: (prompt: QueuedPrompt) => Partial<LoopTurn> } = {},
) {
  const runs: Array<string | null> = [];
  let isClosed = false;
  const loop: AgentLoop = {
    async run({ prompts, resumeSessionId, onTurnEnd }): Promise<LoopEnd> {
      runs.push(resumeSessionId);
      isClosed = false;
      const sessionId = resumeSessionId ?? `fresh-${runs.length}`;
      for await (const prompt of prompts) {
        if (resumeSessionId !== null && resumeSessionId === options.failResumeOf) {
          return { status: 'resume-failed', error: 'No conversation found' };
        }
        if (isClosed) break;
        onTurnEnd({
          promptUuids: [prompt.uuid],
          result: `echo: ${prompt.text}`,
          sessionId,
          isError: false,
          ...options.answer?.(prompt),
        });
      }
      return { status: 'ended' };
    },
    close() {
      isClosed = true;
    },
  };
  return { loop, runs };
}

let root: string;
let input: string;
let output: string;
let sequence: number;
let runner: Runner | null;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'warren-runner-'));
  input = path.join(root, 'input');
  output = path.join(root, 'output');
  await fs.mkdir(input);
  await fs.mkdir(output);
  sequence = 0;
  runner = null;
});
afterEach(async () => {
  runner?.stop('signal');
  await runner?.done;
  await fs.rm(root, { recursive: true, force: true });
});

async function writeInput(file: InputFile): Promise<void> {
  sequence += 1;
  await writeAtomic(input, ipcFileName(sequence, randomUUID()), JSON.stringify(file));
}

async function readOutput(): Promise<OutputFile[]> {
  const names = (await fs.readdir(output)).filter((name) => name.endsWith('.json')).sort();
  return Promise.all(
    names.map(async (name) => {
      const parsed = parseIpcFile('output', await fs.readFile(path.join(output, name), 'utf8'));
      if (!parsed.ok) throw new Error(`${name}: ${parsed.error}`);
      return parsed.value;
    }),
  );
}

async function waitForOutput(predicate: (files: OutputFile[]) => boolean): Promise<OutputFile[]> {
  const start = Date.now();
  while (Date.now() - start < 5_000) {
    const files = await readOutput();
    if (predicate(files)) return files;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out; output so far: ${JSON.stringify(await readOutput())}`);
}

const turnEnds = (files: OutputFile[]) => files.filter((file) => file.type === 'turn-end');

function start(
  loop: AgentLoop,
  settings: { sessionId?: string | null; idleTimeoutMs?: number } = {},
): Runner {
  const writer = createOutputWriter(output);
  runner = startRunner({
    settings: { sessionId: settings.sessionId ?? null, idleTimeoutMs: settings.idleTimeoutMs ?? 60_000 },
    loop,
    output: writer,
    requests: createHostRequests({ output: writer, timeoutMs: 1_000 }),
    inputDirectory: input,
    log: silentLog(),
    fallbackScanMs: 50,
  });
  return runner;
}

describe('runner', () => {
  it('answers the prompt that was waiting before it started, after a ready event', async () => {
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'hello' });
    start(fakeLoop().loop);
    const files = await waitForOutput((all) => turnEnds(all).length === 1);
    expect(files[0]).toEqual({ type: 'ready', protocolVersion: IPC_PROTOCOL_VERSION });
    expect(turnEnds(files)[0]).toMatchObject({
      batchIds: ['b1'],
      result: 'echo: hello',
      sessionId: 'fresh-1',
      isError: false,
    });
  });

  it('feeds a follow-up into the same running loop', async () => {
    const fake = fakeLoop();
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'one' });
    start(fake.loop);
    await waitForOutput((all) => turnEnds(all).length === 1);
    await writeInput({ type: 'prompt', batchId: 'b2', text: 'two' });
    const files = await waitForOutput((all) => turnEnds(all).length === 2);
    expect(turnEnds(files)[1]).toMatchObject({ batchIds: ['b2'], result: 'echo: two' });
    expect(fake.runs).toEqual([null]);
  });

  it('starts a fresh session once when the stored one cannot be resumed, and says so', async () => {
    const fake = fakeLoop({ failResumeOf: 'old-session' });
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'hello' });
    start(fake.loop, { sessionId: 'old-session' });
    const files = await waitForOutput((all) => turnEnds(all).length === 1);
    expect(fake.runs).toEqual(['old-session', null]);
    expect(files.find((file) => file.type === 'log')).toMatchObject({ level: 'warn' });
    expect(turnEnds(files)[0]).toMatchObject({ batchIds: ['b1'], sessionId: 'fresh-2' });
  });

  it('exits after the idle timeout with an exit event', async () => {
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'hello' });
    const running = start(fakeLoop().loop, { idleTimeoutMs: 1_000 });
    const startedAt = Date.now();
    expect(await running.done).toEqual({ reason: 'idle' });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_000);
    expect((await readOutput()).at(-1)).toEqual({ type: 'exit', reason: 'idle' });
  });

  it('does not go idle while a turn is still running', async () => {
    const fake = fakeLoop();
    const slow: AgentLoop = {
      run: ({ prompts, onTurnEnd }) =>
        fake.loop.run({
          prompts,
          resumeSessionId: null,
          onTurnEnd: (turn) => void setTimeout(() => onTurnEnd(turn), 1_500),
        }),
      close: () => fake.loop.close(),
    };
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'hello' });
    const running = start(slow, { idleTimeoutMs: 1_000 });
    expect(await running.done).toEqual({ reason: 'idle' });
    expect(turnEnds(await readOutput())).toMatchObject([{ batchIds: ['b1'], isError: false }]);
  });

  it('on a stop file, reports unanswered prompts and exits', async () => {
    const loop: AgentLoop = {
      // Takes prompts but never finishes a turn.
      async run({ prompts }) {
        for await (const _prompt of prompts) {
          // busy
        }
        return { status: 'ended' };
      },
      close() {},
    };
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'hello' });
    const running = start(loop);
    await waitForOutput((all) => all.some((file) => file.type === 'ready'));
    await writeInput({ type: 'stop', reason: 'host shutting down' });
    expect(await running.done).toEqual({ reason: 'stop' });
    const files = await readOutput();
    expect(turnEnds(files)).toMatchObject([{ batchIds: ['b1'], result: null, isError: true }]);
    expect(files.at(-1)).toEqual({ type: 'exit', reason: 'stop' });
  });

  it('exits with an error when the loop fails by itself', async () => {
    const loop: AgentLoop = {
      run: async () => ({ status: 'failed', error: 'model process crashed' }),
      close() {},
    };
    const running = start(loop);
    expect(await running.done).toEqual({ reason: 'error', error: 'model process crashed' });
    expect((await readOutput()).at(-1)).toEqual({
      type: 'exit',
      reason: 'error',
      error: 'model process crashed',
    });
  });

  it('reports a failed turn as an error without a result to deliver', async () => {
    const fake = fakeLoop({ answer: () => ({ isError: true, result: 'API Error: 402 budget exhausted' }) });
    await writeInput({ type: 'prompt', batchId: 'b1', text: 'hello' });
    start(fake.loop);
    const files = await waitForOutput((all) => turnEnds(all).length === 1);
    expect(turnEnds(files)[0]).toMatchObject({
      batchIds: ['b1'],
      result: null,
      isError: true,
      error: 'the model API answered 402: budget exhausted',
    });
  });
});

describe('toReplyText', () => {
  it('drops internal notes and stays silent when nothing else is left', () => {
    expect(toReplyText('<internal>already sent</internal>')).toBeNull();
    expect(toReplyText('Done. <internal>note to self</internal>')).toBe('Done.');
    expect(toReplyText('   ')).toBeNull();
    expect(toReplyText(null)).toBeNull();
  });
});
