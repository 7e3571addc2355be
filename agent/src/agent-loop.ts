// The model loop behind one small interface, so another provider's loop can replace the Claude Agent SDK one.
import type { QueuedPrompt } from './prompt-queue.js';

export interface LoopTurn {
  /** The prompts this turn consumed (their uuids); null when the loop cannot tell. */
  promptUuids: string[] | null;
  /** The final text of the turn, or what went wrong when isError; null when there is none. */
  result: string | null;
  sessionId: string | null;
  isError: boolean;
}

/** 'ended': the prompt stream ended or close() was called. 'resume-failed': nothing was answered; a retry may help. */
export type LoopEnd = { status: 'ended' } | { status: 'resume-failed' | 'failed'; error: string };

export interface AgentLoop {
  /**
   * Runs one session until `prompts` ends or close() is called; follow-ups on `prompts` join the running session.
   * Never rejects. onTurnEnd must not throw.
   */
  run(params: {
    prompts: AsyncIterable<QueuedPrompt>;
    resumeSessionId: string | null;
    onTurnEnd(turn: LoopTurn): void;
  }): Promise<LoopEnd>;
  /** Ends a running session now (kills the model process). Safe to call at any time. */
  close(): void;
}
