import { describe, expect, it } from 'vitest';
import type { Work } from './work.js';
import { effectOf, type RunView } from './work.js';

const chat = { channel: 'fake', chatId: 'team' };
const work = (batchId: string, kind: Work['kind']): Work => ({
  batchId,
  kind,
  chat,
  prompt: 'p',
  preCheck: null,
  isIsolated: false,
  size: 1,
});
const run = (open: Work[], isIsolated = false): RunView => ({
  runId: 'r1',
  chat,
  open: new Map(open.map((item) => [item.batchId, item])),
  isIsolated,
});
const turnEnd = (batchIds: string[], extra: Record<string, unknown> = {}) =>
  ({
    type: 'turn-end',
    id: 'e1',
    batchIds,
    result: 'done',
    sessionId: 's1',
    isError: false,
    ...extra,
  }) as never;

describe('what an agent event means for its run', () => {
  it('closes only the work this run holds, with one reply keyed by the event', () => {
    const effect = effectOf(turnEnd(['b1', 'forged']), run([work('b1', 'messages')]));
    expect(effect).toMatchObject({
      type: 'close',
      works: [expect.objectContaining({ batchId: 'b1' })],
      outcome: { status: 'succeeded', result: 'done' },
      reply: { key: 'r1:e1', chat },
      sessionId: 's1',
      isKeptWarm: true,
    });
    expect((effect as { works: Work[] }).works).toHaveLength(1);
  });

  it("never keeps an isolated run's session as the group's, nor keeps that agent warm", () => {
    const effect = effectOf(turnEnd(['b1']), run([work('b1', 'task')], true));
    expect(effect).toMatchObject({ type: 'close', isKeptWarm: false });
    expect(effect).not.toHaveProperty('sessionId');
  });

  it('a failed turn sends no reply; a pre-check ends only a task run', () => {
    const failed = effectOf(turnEnd(['b1'], { isError: true, error: 'boom' }), run([work('b1', 'messages')]));
    expect(failed).toMatchObject({ outcome: { status: 'failed', error: 'boom', isRetryable: true } });
    expect(failed).not.toHaveProperty('reply');
    const check = { type: 'pre-check', id: 'e2', batchId: 'b1', outcome: 'skip' } as never;
    expect(effectOf(check, run([work('b1', 'messages')]))).toEqual({ type: 'none' });
    expect(effectOf(check, run([work('b1', 'task')]))).toMatchObject({ outcome: { status: 'skipped' } });
  });
});
