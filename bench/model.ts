// The fake model API as the bench uses it: answers at once, and times each request by the message it answers.
import { type FakeModelApi, type FakeRequest, startFakeModelApi } from '../test/fake-model-api.js';
import { monotonicMs } from './protocol.js';

/** Put into a chat message; the model's answer to it is `re:<id>`, so every interval can be matched by id. */
export const markerFor = (id: string) => `#bench:${id}`;
const MARKER = /#bench:([\w-]+)/g;

export interface ModelTiming {
  /** The request had fully arrived at the fake. */
  requestAt: number;
  /** The fake had written the whole streamed answer (SSE) to its socket. */
  responseEndAt: number;
}

export interface BenchModel {
  readonly url: string;
  readonly apiKey: string;
  /** The first model request that carried a marker (later ones for the same id are retries, counted apart). */
  timing(id: string): ModelTiming | undefined;
  /** Requests with no marker in their last user message (the SDK's own calls; expected: none). */
  readonly unmatched: number;
  readonly repeated: number;
  close(): Promise<void>;
}

export async function startBenchModel(apiKey: string): Promise<BenchModel> {
  const fake: FakeModelApi = await startFakeModelApi({ expectedApiKey: apiKey });
  const timings = new Map<string, ModelTiming>();
  let unmatched = 0;
  let repeated = 0;
  fake.setDefault((request) => {
    const requestAt = monotonicMs();
    const id = lastMarker(request);
    if (id === null) {
      unmatched += 1;
      return { text: 'ok' };
    }
    if (timings.has(id)) repeated += 1;
    else {
      const timing = { requestAt, responseEndAt: Number.NaN };
      timings.set(id, timing);
      // The fake writes the whole stream synchronously after this returns; setImmediate runs once it has.
      setImmediate(() => {
        timing.responseEndAt = monotonicMs();
      });
    }
    return { text: `re:${id}` };
  });
  return {
    url: fake.url,
    apiKey,
    timing: (id) => timings.get(id),
    get unmatched() {
      return unmatched;
    },
    get repeated() {
      return repeated;
    },
    close: () => fake.close(),
  };
}

/** The marker in the newest user message of a request (earlier turns of the session carry older markers). */
function lastMarker(request: FakeRequest): string | null {
  const body = request.body as { messages?: Array<{ role?: string; content?: unknown }> } | null;
  const lastUser = [...(body?.messages ?? [])].reverse().find((message) => message.role === 'user');
  if (!lastUser) return null;
  const text = JSON.stringify(lastUser.content ?? '');
  const found = [...text.matchAll(MARKER)].at(-1);
  return found?.[1] ?? null;
}
