// The model API secret: the one place that reads it (it goes to the credential proxy and nowhere else), and the
// check that keeps it out of a container's environment.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { RUN_ENV } from '../protocol/ipc.js';

export type ModelCredential = { kind: 'api-key'; apiKey: string } | { kind: 'oauth'; token: string };

/**
 * Names that could carry a secret: no such header goes upstream, no such env into a container. Whatever credential
 * the container sends stays at the proxy: upstream sees only the host's, so every call is metered and refusable.
 */
export const CREDENTIAL_LIKE_NAME = /api[-_]?key|auth|token|secret|passw|cookie|credential/i;

/** ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) from env or cwd's .env; never copied into any process's env. */
export function readModelCredential(
  env: Record<string, string | undefined>,
  cwd: string,
): ModelCredential | null {
  const dotEnvPath = join(cwd, '.env');
  const dotEnv = existsSync(dotEnvPath) ? (parseEnv(readFileSync(dotEnvPath, 'utf8')) as typeof env) : {};
  const pick = (key: string) => env[key]?.trim() || dotEnv[key]?.trim();
  const apiKey = pick('ANTHROPIC_API_KEY');
  if (apiKey) return { kind: 'api-key', apiKey };
  const token = pick('CLAUDE_CODE_OAUTH_TOKEN');
  return token ? { kind: 'oauth', token } : null;
}

/** Env for agent containers, checked: a reserved or credential-like name, or a value holding the secret, throws. */
export function checkAgentEnv(env: Record<string, string>, credential: ModelCredential | null) {
  const secret = credential ? (credential.kind === 'api-key' ? credential.apiKey : credential.token) : null;
  const reserved = new Set<string>(Object.values(RUN_ENV));
  for (const [name, value] of Object.entries(env)) {
    if (CREDENTIAL_LIKE_NAME.test(name) || reserved.has(name))
      throw new Error(`agentEnv may not set ${name}: it is reserved or looks like a credential`);
    if (secret && value.includes(secret)) throw new Error(`agentEnv ${name} holds the model credential`);
  }
  return { ...env };
}
