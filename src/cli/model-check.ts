// The model endpoint, checked the way agents reach it: a count_tokens call (free) through a credential proxy of the
// same code, with the same credential, to the same upstream. For `warren doctor` and `warren status`.
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Config } from '../config.js';
import { silentLogger } from '../log.js';
import { createCredentialProxy } from '../sandbox/credential-proxy.js';
import type { ModelCredential } from '../sandbox/credentials.js';

export interface ModelCheck {
  isOk: boolean;
  detail: string;
  fix?: string;
}

const PROBE = JSON.stringify({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'ping' }] });

export async function checkModelEndpoint(
  config: Pick<Config, 'modelBaseUrl'>,
  credential: ModelCredential | null,
  timeoutMs = 10_000,
): Promise<ModelCheck> {
  if (!credential) {
    return { isOk: false, detail: 'not checked: no model credential', fix: 'set ANTHROPIC_API_KEY in .env' };
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'warren-model-check-'));
  const proxy = createCredentialProxy({
    upstreamBaseUrl: config.modelBaseUrl,
    credential,
    log: silentLogger(),
    now: Date.now,
    recordUsage: () => {},
    checkBudget: () => ({ decision: 'allow', release: () => {} }),
    isWebSearchOn: () => false, // the check's call has no tools
    onRefused: () => {},
  });
  const socketPath = path.join(dir, 'proxy.sock');
  const startedAt = Date.now();
  try {
    await proxy.listen('doctor', socketPath);
    const { status, body } = await post(socketPath, timeoutMs);
    const ms = Date.now() - startedAt;
    const where = new URL(config.modelBaseUrl).origin;
    const message = (() => {
      try {
        return String((JSON.parse(body) as { error?: { message?: string } }).error?.message ?? '');
      } catch {
        return body.slice(0, 200);
      }
    })().replace(/^Warren: /, '');
    if (status === 200) return { isOk: true, detail: `${where} answers and takes the credential (${ms} ms)` };
    if (status === 401 || status === 403) {
      const fix = 'check ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) in .env, then restart Warren';
      return { isOk: false, detail: `${where} refused the credential (HTTP ${status}: ${message})`, fix };
    }
    // A gateway may not offer count_tokens: it answered, so it is reachable; messages may still work.
    if (status === 404)
      return { isOk: true, detail: `${where} answers (count_tokens not offered: ${message})` };
    if (status === 429)
      return { isOk: true, detail: `${where} answers, but is rate-limiting now (${message})` };
    const fix =
      status === 502
        ? 'check ANTHROPIC_BASE_URL and this machine’s network'
        : 'try again later (status.claude.com)';
    return { isOk: false, detail: `HTTP ${status}: ${message}`, fix };
  } catch (error) {
    const fix = 'check ANTHROPIC_BASE_URL and this machine’s network';
    return {
      isOk: false,
      detail: `no answer within ${timeoutMs / 1000} s (${(error as Error).message})`,
      fix,
    };
  } finally {
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function post(socketPath: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const req = http.request({
    socketPath,
    method: 'POST',
    path: '/v1/messages/count_tokens',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    timeout: timeoutMs,
  });
  req.on('timeout', () => req.destroy(new Error('timed out')));
  req.end(PROBE);
  return once(req, 'response').then(async (args) => {
    const res = args[0] as http.IncomingMessage;
    let body = '';
    for await (const chunk of res) body += String(chunk);
    return { status: res.statusCode ?? 0, body };
  });
}
