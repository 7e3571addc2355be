import { describe, expect, it } from 'vitest';
import { createEgressQuestions } from './questions.js';

function setUp(waitMs = 60_000) {
  const notices: Array<{ key: string; text: string }> = [];
  const questions = createEgressQuestions({
    now: () => 1_000,
    notifyOwner: (key, text) => notices.push({ key, text }),
    waitMs,
  });
  const idOf = (index: number) => /\/allow (\w+) /.exec(notices[index]?.text ?? '')?.[1] ?? '';
  return { questions, notices, idOf };
}

describe('egress questions', () => {
  it('asks the owner once per destination, and the connections waiting on it get the answer', async () => {
    const { questions, notices, idOf } = setUp();
    const first = questions.ask('sales', 'api.example.com', 443);
    const second = questions.ask('sales', 'api.example.com', 443);
    expect(notices).toHaveLength(1);
    expect(notices[0]?.text).toMatch(
      /Group sales wants to connect to api.example.com:443.*\/allow \w+ always.*\/deny \w+/,
    );
    expect(questions.answer(idOf(0), 'once')).toMatchObject({
      groupFolder: 'sales',
      host: 'api.example.com',
    });
    expect(await first).toBe('once');
    expect(await second).toBe('once');
    // Answered: the id is spent, and the next connection asks again.
    expect(questions.answer(idOf(0), 'always')).toBeNull();
    void questions.ask('sales', 'api.example.com', 443);
    expect(notices).toHaveLength(2);
  });

  it('refuses when no answer comes in time, when asking is off, and past a few open questions', async () => {
    const late = setUp(30);
    expect(await late.questions.ask('sales', 'a.example', 443)).toBe('deny');
    expect(late.questions.list()).toEqual([]);
    expect(await setUp(0).questions.ask('sales', 'a.example', 443)).toBe('deny');
    const { questions, notices } = setUp();
    for (const host of ['a.example', 'b.example', 'c.example']) void questions.ask('sales', host, 443);
    expect(await questions.ask('sales', 'd.example', 443)).toBe('deny');
    expect(notices).toHaveLength(3);
    // Another group has its own few.
    void questions.ask('family', 'd.example', 443);
    expect(notices).toHaveLength(4);
  });
});
