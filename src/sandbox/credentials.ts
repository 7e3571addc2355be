// The one place that reads the model API secret. It goes to the credential proxy and nowhere else.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import type { ModelCredential } from './credential-proxy.js';

export const CREDENTIAL_KEYS = ['ANTHROPIC_API_KEY', 'CLAUDE_CODE_OAUTH_TOKEN'] as const;

/**
 * Reads ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) from the environment or the .env file in cwd.
 * Returns null when neither is set. The value is never copied into process.env or any child's environment.
 */
export function readModelCredential(
  env: Record<string, string | undefined>,
  cwd: string,
): ModelCredential | null {
  const dotEnvPath = join(cwd, '.env');
  const dotEnv = existsSync(dotEnvPath)
    ? (parseEnv(readFileSync(dotEnvPath, 'utf8')) as Record<string, string>)
    : {};
  const pick = (key: string) => (env[key]?.trim() || dotEnv[key]?.trim()) ?? '';
  const apiKey = pick('ANTHROPIC_API_KEY');
  if (apiKey) return { kind: 'api-key', apiKey };
  const token = pick('CLAUDE_CODE_OAUTH_TOKEN');
  if (token) return { kind: 'oauth', token };
  return null;
}
