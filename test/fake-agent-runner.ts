// A fake AgentRunner for host tests: records starts and prompts; tests (or an auto-reply rule) drive the agent.
import type {
  AgentEvent,
  AgentExit,
  AgentRunner,
  AgentSession,
  AgentStartRequest,
  PreCheck,
} from '../src/types.js';

export interface FakeRunnerOptions {
  /** When set, each prompt is answered at once with this text (null: answer nothing). */
  autoReply?: (prompt: string) => string | null;
  /** When set, start() rejects with this error. */
  startError?: Error;
  /**
   * When set, a prompt with a pre-check gets this outcome at once ('run' then goes on to autoReply). Without it,
   * such a prompt waits for the test to call finishPreCheck().
   */
  preCheck?: (check: PreCheck) => 'run' | 'skip' | { error: string };
}

export class FakeAgentSession implements AgentSession {
  readonly prompts: Array<{ prompt: string; batchId: string; preCheck?: PreCheck }> = [];
  readonly stopReasons: string[] = [];
  isClosed = false;
  private resolveExit!: (exit: AgentExit) => void;
  readonly exited: Promise<AgentExit> = new Promise((resolve) => {
    this.resolveExit = resolve;
  });
  private openBatches: string[] = [];
  private eventCount = 0;

  constructor(
    readonly request: AgentStartRequest,
    private readonly options: FakeRunnerOptions,
  ) {
    this.accept(request.prompt, request.batchId, request.preCheck);
  }

  private accept(prompt: string, batchId: string, preCheck?: PreCheck): void {
    this.prompts.push({ prompt, batchId, ...(preCheck ? { preCheck } : {}) });
    this.openBatches.push(batchId);
    const auto = this.options.autoReply;
    const decide = this.options.preCheck;
    if (preCheck) {
      if (!decide) return;
      queueMicrotask(() => {
        const outcome = decide(preCheck);
        this.finishPreCheck(
          batchId,
          typeof outcome === 'string' ? outcome : 'error',
          typeof outcome === 'string' ? undefined : outcome.error,
        );
        if (outcome === 'run' && auto) this.reply(auto(prompt));
      });
      return;
    }
    if (auto) queueMicrotask(() => this.reply(auto(prompt)));
  }

  sendFollowUp(prompt: string, batchId: string, options?: { preCheck?: PreCheck }): boolean {
    if (this.isClosed) return false;
    this.accept(prompt, batchId, options?.preCheck);
    return true;
  }

  /** The container finished a task's pre-check: 'skip' and 'error' end the batch without a model turn. */
  finishPreCheck(batchId: string, outcome: 'run' | 'skip' | 'error', detail?: string): void {
    if (outcome !== 'run') this.openBatches = this.openBatches.filter((open) => open !== batchId);
    this.emit({
      type: 'pre-check',
      id: `e${++this.eventCount}`,
      batchId,
      outcome,
      ...(detail === undefined ? {} : { detail }),
    });
  }

  private emit(event: AgentEvent): void {
    this.request.onEvent(event);
  }

  /** Ends the current turn: every open batch is answered with text. */
  reply(text: string | null, sessionId = 'session-1'): void {
    const batchIds = this.openBatches.splice(0);
    this.emit({
      type: 'turn-end',
      id: `e${++this.eventCount}`,
      batchIds,
      result: text,
      sessionId,
      isError: false,
    });
  }

  /** Ends the current turn with an error. */
  fail(error: string, isRetryable = true): void {
    const batchIds = this.openBatches.splice(0);
    this.emit({
      type: 'turn-end',
      id: `e${++this.eventCount}`,
      batchIds,
      result: null,
      sessionId: null,
      isError: true,
      error,
      isRetryable,
    });
  }

  message(text: string): void {
    this.emit({ type: 'agent-message', id: `e${++this.eventCount}`, chat: this.request.chat, text });
  }

  crash(reason = 'exit code 137', options: { isRetryable?: false } = {}): void {
    this.isClosed = true;
    this.resolveExit({ status: 'crashed', reason, ...options });
  }

  exit(reason = 'idle'): void {
    this.isClosed = true;
    this.resolveExit({ status: 'exited', reason });
  }

  /** As the real runner does: prompts still unanswered get an error turn-end, then the agent exits. */
  async stop(reason: string): Promise<void> {
    this.stopReasons.push(reason);
    if (!this.isClosed && this.openBatches.length > 0)
      this.fail('the run ended (stop) before these prompts were answered');
    this.exit(`stopped: ${reason}`);
  }
}

export class FakeAgentRunner implements AgentRunner {
  readonly sessions: FakeAgentSession[] = [];
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(readonly options: FakeRunnerOptions = {}) {}

  async start(request: AgentStartRequest): Promise<AgentSession> {
    if (this.options.startError) throw this.options.startError;
    const session = new FakeAgentSession(request, this.options);
    this.sessions.push(session);
    for (const waiter of this.waiters.filter((w) => this.sessions.length >= w.count)) waiter.resolve();
    return session;
  }

  get live(): FakeAgentSession[] {
    return this.sessions.filter((session) => !session.isClosed);
  }

  /** Resolves once count sessions have been started in total. */
  waitForSessions(count: number, timeoutMs = 2000): Promise<void> {
    if (this.sessions.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${this.sessions.length} of ${count} sessions started`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/** Waits until check() is true (polling a few ms at a time, for tests only). */
export async function eventually(check: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
