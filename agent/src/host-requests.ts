// Tool requests to the host: write a request file, wait for the matching response file, never hang forever.
import { randomUUID } from 'node:crypto';
import type { RequestFile, ResponseFile } from '../../src/protocol/ipc.js';
import type { OutputWriter } from './ipc-files.js';
import { errorMessage } from './log.js';

export type HostAnswer = { ok: true; result?: string } | { ok: false; error: string };

/** A request as a tool makes it (any of the host's tools); the id and envelope are added here. */
export type ToolRequest = {
  [Tool in RequestFile['tool']]: Pick<Extract<RequestFile, { tool: Tool }>, 'tool' | 'args'>;
}[RequestFile['tool']];

export type HostRequests = ReturnType<typeof createHostRequests>;

export function createHostRequests(deps: { output: OutputWriter; timeoutMs: number }) {
  const pending = new Map<string, (answer: HostAnswer) => void>();
  return {
    /** Writes the request and waits for the host's answer. Never rejects: failures and timeouts are answers too. */
    send(request: ToolRequest): Promise<HostAnswer> {
      const id = randomUUID();
      const silence = `the host did not answer within ${Math.round(deps.timeoutMs / 1000)} s`;
      return new Promise((resolve) => {
        const finish = (answer: HostAnswer) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(answer);
        };
        const timer = setTimeout(() => finish({ ok: false, error: silence }), deps.timeoutMs);
        // Registered before the file exists, so a fast response cannot arrive before anyone waits for it.
        pending.set(id, finish);
        const notSent = (error: unknown) =>
          finish({ ok: false, error: `request not sent: ${errorMessage(error)}` });
        deps.output.write({ type: 'request', id, ...request }).catch(notSent);
      });
    },
    /** Hands a response file to the request waiting for it. Returns false when nothing waits for that id. */
    resolve(response: ResponseFile): boolean {
      const finish = pending.get(response.id);
      const error = response.error ?? 'refused by the host';
      finish?.(response.ok ? { ok: true, result: response.result } : { ok: false, error });
      return finish !== undefined;
    },
    /** How many requests are still waiting for the host. */
    pendingCount: () => pending.size,
    /** Answers every waiting request with an error (the run is ending). */
    cancelAll(reason: string): void {
      for (const finish of [...pending.values()]) finish({ ok: false, error: reason });
    },
  };
}
