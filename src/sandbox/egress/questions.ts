// Asking the owner about a destination not on a group's list: the connection waits while the admin chat is asked
// ("/allow ID", "/allow ID always", "/deny ID"); no answer in time is a refusal. One question per group, host and
// port at a time (connections to the same place wait on the same answer), a few per group at most.
import { randomBytes } from 'node:crypto';

export type EgressAnswer = 'once' | 'always' | 'deny';
export type EgressQuestion = { id: string; groupFolder: string; host: string; port: number; askedAt: number };

/** More open questions than this for one group: the next destination is refused at once (no flood of questions). */
const MAX_OPEN_PER_GROUP = 3;

export type EgressQuestions = ReturnType<typeof createEgressQuestions>;

export function createEgressQuestions(deps: {
  now(): number;
  /** Tells the owner in the admin chat, once per key. Must not throw. */
  notifyOwner?(key: string, text: string): void;
  waitMs: number;
}) {
  const open = new Map<
    string,
    EgressQuestion & { answer: Promise<EgressAnswer>; settle(answer: EgressAnswer): void }
  >();
  const keyOf = (folder: string, host: string, port: number) => `${folder}\n${host}\n${port}`;

  function settle(id: string, answer: EgressAnswer) {
    const question = open.get(id);
    if (!question) return null;
    open.delete(id);
    question.settle(answer);
    return question;
  }

  return {
    /** The owner's answer, or 'deny' when none came in time (or asking is off: no owner chat, waitMs 0). */
    ask(groupFolder: string, host: string, port: number): Promise<EgressAnswer> {
      if (deps.waitMs <= 0 || !deps.notifyOwner) return Promise.resolve('deny');
      const key = keyOf(groupFolder, host, port);
      const same = [...open.values()].find(
        (question) => keyOf(question.groupFolder, question.host, question.port) === key,
      );
      if (same) return same.answer;
      if (
        [...open.values()].filter((question) => question.groupFolder === groupFolder).length >=
        MAX_OPEN_PER_GROUP
      ) {
        return Promise.resolve('deny');
      }
      let id = randomBytes(3).toString('hex');
      while (open.has(id)) id = randomBytes(3).toString('hex');
      let resolve!: (answer: EgressAnswer) => void;
      const answer = new Promise<EgressAnswer>((done) => {
        resolve = done;
      });
      const timer = setTimeout(() => settle(id, 'deny'), deps.waitMs);
      timer.unref();
      const question = { id, groupFolder, host, port, askedAt: deps.now(), answer };
      open.set(id, {
        ...question,
        settle: (given) => {
          clearTimeout(timer);
          resolve(given);
        },
      });
      const seconds = Math.round(deps.waitMs / 1000);
      deps.notifyOwner(
        `egress-ask:${id}`,
        `🌐 Group ${groupFolder} wants to connect to ${host}:${port}, which is not on its list. ` +
          `/allow ${id} lets it this once, /allow ${id} always adds it to the list, /deny ${id} refuses ` +
          `(no answer in ${seconds} s refuses).`,
      );
      return answer;
    },
    /** Answers a question; the question, or null when there is none by that id (answered, or too late). */
    answer(id: string, answer: EgressAnswer): EgressQuestion | null {
      const question = settle(id, answer);
      return (
        question && {
          id,
          groupFolder: question.groupFolder,
          host: question.host,
          port: question.port,
          askedAt: question.askedAt,
        }
      );
    },
    list: (): EgressQuestion[] =>
      [...open.values()].map(({ answer: _a, settle: _s, ...question }) => question),
  };
}
