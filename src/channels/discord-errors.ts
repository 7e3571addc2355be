// What a Discord REST error means: its words for logs and states, and whether a send is worth retrying.
import type { SendResult } from '../types.js';

/** The fields of @discordjs/rest's errors we read (DiscordAPIError, HTTPError, RateLimitError), matched by shape. */
type DiscordError = Error & {
  status?: number;
  code?: number | string;
  rawError?: unknown;
  timeToReset?: number;
};

const asDiscordError = (error: unknown): DiscordError =>
  (error instanceof Error ? error : new Error(String(error))) as DiscordError;

/** Discord's JSON error code (50035 Invalid Form Body, 10003 Unknown Channel …) when it refused a call. */
export function apiCodeOf(error: unknown): number | null {
  const discord = asDiscordError(error);
  return discord.rawError !== undefined && typeof discord.code === 'number' ? discord.code : null;
}

/** The token is wrong or revoked (401; discord.js's TokenInvalid when logging in). */
export const isTokenError = (error: unknown) =>
  asDiscordError(error).status === 401 || asDiscordError(error).code === 'TokenInvalid';

/** Discord refused the message's content as formed (Invalid Form Body): the part is sent again as plain text. */
export const isFormattingError = (error: unknown) => apiCodeOf(error) === 50035;

export function describeDiscordError(error: unknown): string {
  const discord = asDiscordError(error);
  if (discord.timeToReset !== undefined) return `rate limited (retry after ${discord.timeToReset} ms)`;
  const code = apiCodeOf(error);
  if (code !== null) return `${discord.message} (code ${code}, HTTP ${discord.status})`;
  if (typeof discord.status === 'number') return `HTTP ${discord.status}`;
  const cause = (discord as { cause?: Error }).cause;
  return cause?.message ? `${discord.message}: ${cause.message}` : discord.message;
}

export function toFailure(error: unknown): SendResult {
  const status = asDiscordError(error).status;
  // A refused call (unknown channel, missing access or permissions, a bad body) will not get better by trying again;
  // a bad token will once the owner fixes it, like a network failure, a 5xx or a rate limit.
  const isRetryable = status === undefined || status >= 500 || status === 429 || status === 401;
  return { status: 'failed', reason: describeDiscordError(error), isRetryable };
}
