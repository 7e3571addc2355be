// The credential proxy's own cost: the same streamed model request through a group's proxy socket and straight to
// the fake model, from the driver, alternating. The difference is the host's proxy hop (the agent's relay aside).
import http from 'node:http';
import type { BenchModel } from './model.js';
import { markerFor } from './model.js';
import { monotonicMs } from './protocol.js';

/** About the size of the Claude Code requests the fake sees (system prompt and tool definitions). */
const BODY_BYTES = 43_000;
const REQUEST_TIMEOUT_MS = 30_000;

function post(target: { socketPath: string } | { url: string }, apiKey: string, id: string): Promise<number> {
  const body = JSON.stringify({
    model: 'claude-bench',
    max_tokens: 16,
    stream: true,
    messages: [{ role: 'user', content: `${markerFor(id)} ${'x'.repeat(BODY_BYTES)}` }],
  });
  const location =
    'socketPath' in target
      ? { socketPath: target.socketPath, host: 'localhost' }
      : { host: new URL(target.url).hostname, port: Number(new URL(target.url).port) };
  const started = monotonicMs();
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        ...location,
        method: 'POST',
        path: '/v1/messages?beta=true',
        timeout: REQUEST_TIMEOUT_MS,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'anthropic-version': '2023-06-01',
          'x-api-key': apiKey,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () =>
          response.statusCode === 200
            ? resolve(monotonicMs() - started)
            : reject(new Error(`proxy hop: HTTP ${response.statusCode}`)),
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error('proxy hop: timed out')));
    request.on('error', reject);
    request.end(body);
  });
}

/** Round trips (request written → whole streamed answer read) through the proxy minus straight to the fake. */
export async function measureProxyHop(
  model: BenchModel,
  apiSocket: string,
  rounds: number,
): Promise<number[]> {
  const extra: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // The agent's own key never leaves the host: through the socket it is a placeholder the proxy replaces.
    const proxied = await post({ socketPath: apiSocket }, 'warren-proxy', `hop-proxied-${round}`);
    const direct = await post({ url: model.url }, model.apiKey, `hop-direct-${round}`);
    extra.push(proxied - direct);
  }
  return extra;
}
