// Exponential backoff: how long to wait before a retry, doubling from a base up to a ceiling.

export interface BackoffOptions {
  /** The wait before the first retry. */
  baseMs: number;
  /** No wait is longer than this (before jitter). */
  maxMs: number;
  /** Spreads each wait over ± this fraction (0.25: 75–125 %), so clients that failed together do not retry together. */
  jitter?: number;
  /** A number in [0, 1); Math.random unless a test passes its own. */
  random?: () => number;
}

/** The wait before retry number `attempt` (1 for the first): baseMs doubled attempt − 1 times, at most maxMs. */
export function backoffMs(attempt: number, options: BackoffOptions): number {
  const wait = Math.min(options.baseMs * 2 ** Math.max(attempt - 1, 0), options.maxMs);
  if (!options.jitter) return wait;
  const random = options.random ?? Math.random;
  return wait * (1 - options.jitter + random() * 2 * options.jitter);
}

/** Waits ms, or less when the signal aborts (a reconnect loop's pause that a disconnect cuts short). Never rejects. */
export const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
