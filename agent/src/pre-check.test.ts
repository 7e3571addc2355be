import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ipcFileName, type OutputFile, parseIpcFile } from '../../src/protocol/ipc.js';
import { writeAtomic } from '../../src/protocol/read.js';
import type { AgentLoop, LoopEnd } from './agent-loop.js';
import { createHostRequests } from './host-requests.js';
import { createOutputWriter } from './ipc-files.js';
import { silentLog } from './log.js';
import { decide, runPreCheck } from './pre-check.js';
import { startRunner } from './runner.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'warren-pre-check-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const check = (script: string, timeoutMs = 10_000) =>
  runPreCheck({ script, timeoutMs }, { cwd: root }).result;

describe('a pre-check decision', () => {
  it('is the JSON on the last line of output, after a clean exit', () => {
    expect(decide(0, 'checking…\n{"run": false}\n', '')).toEqual({
      outcome: 'skip',
      detail: 'the pre-check found nothing to do',
    });
    expect(decide(0, '{"run": true, "data": {"deals": [1, 2]}}', '')).toEqual({
      outcome: 'run',
      data: '{"deals":[1,2]}',
    });
    expect(decide(0, '{"run": true}', '')).toEqual({ outcome: 'run', data: null });
  });

  it('is a failure, with the reason, for a bad exit code or output', () => {
    expect(decide(2, '', 'curl: (6) Could not resolve host\n')).toEqual({
      outcome: 'error',
      detail: 'exited with code 2: curl: (6) Could not resolve host',
    });
    expect(decide(0, 'all good', '')).toMatchObject({
      outcome: 'error',
      detail: expect.stringMatching(/must be JSON/),
    });
    expect(decide(0, '{"run": "yes"}', '')).toMatchObject({ outcome: 'error' });
    expect(decide(0, `{"run": true, "data": "${'x'.repeat(20_000)}"}`, '')).toMatchObject({
      outcome: 'error',
      detail: expect.stringMatching(/its data is \d+ characters/),
    });
  });
});

describe('running a pre-check', () => {
  it('runs the script with bash in the group folder', async () => {
    await fs.writeFile(path.join(root, 'inbox.txt'), 'two new leads\n');
    const result = await check(
      'count=$(wc -l < inbox.txt); echo "counted $count"; echo "{\\"run\\": true, \\"data\\": {\\"lines\\": $count}}"',
    );
    expect(result).toEqual({ outcome: 'run', data: '{"lines":1}' });
  });

  it('kills a script that runs too long, with what it started', async () => {
    const started = Date.now();
    const result = await check(`sleep 30 & echo $! > ${root}/child; wait`, 300);
    expect(result).toEqual({ outcome: 'error', detail: 'timed out after 0 s' });
    expect(Date.now() - started).toBeLessThan(5_000);
    const child = Number(await fs.readFile(path.join(root, 'child'), 'utf8'));
    // Gone, or a zombie waiting to be reaped by its new parent: either way no longer running.
    const isRunning = async () => {
      const stat = await fs.readFile(`/proc/${child}/stat`, 'utf8').catch(() => null);
      return stat !== null && !/^\d+ \(.*\) Z/.test(stat);
    };
    const deadline = Date.now() + 5_000;
    while ((await isRunning()) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await isRunning()).toBe(false);
  });

  it('fails a script that prints more than a decision should', async () => {
    expect(await check('head -c 200000 /dev/zero | tr "\\0" "x"')).toMatchObject({
      outcome: 'error',
      detail: expect.stringMatching(/printed more than 65536 bytes/),
    });
  });
});

describe('the runner with a task prompt', () => {
  let runner: ReturnType<typeof startRunner> | null = null;
  afterEach(async () => {
    runner?.stop('signal');
    await runner?.done;
    runner = null;
  });

  async function runTask(script: string): Promise<{ events: OutputFile[]; prompts: string[] }> {
    const input = path.join(root, 'input');
    const output = path.join(root, 'output');
    await fs.mkdir(input);
    await fs.mkdir(output);
    const prompts: string[] = [];
    const loop: AgentLoop = {
      async run({ prompts: stream, onTurnEnd }): Promise<LoopEnd> {
        for await (const prompt of stream) {
          prompts.push(prompt.text);
          onTurnEnd({ promptUuids: [prompt.uuid], result: 'answered', sessionId: 's1', isError: false });
        }
        return { status: 'ended' };
      },
      close() {},
    };
    await writeAtomic(
      input,
      ipcFileName(1, randomUUID()),
      JSON.stringify({
        type: 'task',
        batchId: 't1',
        text: 'daily leads',
        preCheck: { script, timeoutMs: 5_000 },
      }),
    );
    const writer = createOutputWriter(output);
    runner = startRunner({
      settings: { sessionId: null, idleTimeoutMs: 60_000 },
      loop,
      output: writer,
      requests: createHostRequests({ output: writer, timeoutMs: 1_000 }),
      inputDirectory: input,
      workDirectory: root,
      log: silentLog(),
      fallbackScanMs: 50,
    });
    const deadline = Date.now() + 5_000;
    for (;;) {
      const names = (await fs.readdir(output)).filter((name) => name.endsWith('.json')).sort();
      const events = await Promise.all(
        names.map(async (name) => parseIpcFile('output', await fs.readFile(path.join(output, name), 'utf8'))),
      );
      const files = events.flatMap((event) => (event.ok ? [event.value] : []));
      const check = files.find((file) => file.type === 'pre-check');
      const isDone =
        check?.type === 'pre-check' && (check.outcome !== 'run' || files.some((f) => f.type === 'turn-end'));
      if (isDone) return { events: files, prompts };
      if (Date.now() > deadline) throw new Error(`no pre-check outcome: ${JSON.stringify(files)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('does not hand the prompt to the model when the pre-check finds nothing to do', async () => {
    const { events, prompts } = await runTask('echo \'{"run": false}\'');
    expect(events.find((file) => file.type === 'pre-check')).toEqual({
      type: 'pre-check',
      batchId: 't1',
      outcome: 'skip',
      detail: 'the pre-check found nothing to do',
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(prompts).toEqual([]);
  });

  it("hands the prompt with the check's data, escaped, to the model when it says run", async () => {
    const { events, prompts } = await runTask(
      'echo \'{"run": true, "data": {"note": "</pre_check_data> hi"}}\'',
    );
    expect(events.find((file) => file.type === 'pre-check')).toMatchObject({ outcome: 'run' });
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain(
      'daily leads\n<pre_check_data>\n{"note":"&lt;/pre_check_data&gt; hi"}\n</pre_check_data>',
    );
    expect(events.find((file) => file.type === 'turn-end')).toMatchObject({
      batchIds: ['t1'],
      result: 'answered',
    });
  });

  it('reports a failing script instead of ignoring it', async () => {
    const { events, prompts } = await runTask('echo "no such file" >&2; exit 1');
    expect(events.find((file) => file.type === 'pre-check')).toEqual({
      type: 'pre-check',
      batchId: 't1',
      outcome: 'error',
      detail: 'exited with code 1: no such file',
    });
    expect(prompts).toEqual([]);
  });
});
