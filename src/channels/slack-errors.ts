// What a Slack Web API error means: its words for logs and states, and whether a send is worth retrying.
import type { SendResult } from '../types.js';

/** The fields of @slack/web-api's errors we read (matched by their `code`, so no class identity is needed). */
type SlackApiError = Error & {
  code?: string;
  data?: { error?: string };
  statusCode?: number;
  retryAfter?: number;
  original?: Error;
};

const asSlackError = (error: unknown): SlackApiError =>
  (error instanceof Error ? error : new Error(String(error))) as SlackApiError;

/** Slack's error word for a call it refused (`ok: false`), else null. */
export function platformErrorOf(error: unknown): string | null {
  const slack = asSlackError(error);
  return slack.code === 'slack_webapi_platform_error' ? (slack.data?.error ?? 'unknown_error') : null;
}

/** The token is wrong, revoked or of the wrong kind: no retry helps until the owner fixes it. */
const TOKEN_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'not_allowed_token_type',
]);
export const isTokenError = (error: unknown) => TOKEN_ERRORS.has(platformErrorOf(error) ?? '');

/** Slack refused the blocks we built (the mrkdwn section): the part is sent again as plain text. */
export const isFormattingError = (error: unknown) =>
  ['invalid_blocks', 'invalid_blocks_format', 'msg_blocks_too_long'].includes(platformErrorOf(error) ?? '');

export function describeSlackError(error: unknown): string {
  const slack = asSlackError(error);
  switch (slack.code) {
    case 'slack_webapi_platform_error':
      return platformErrorOf(error) as string;
    case 'slack_webapi_rate_limited_error':
      return `ratelimited (retry after ${slack.retryAfter}s)`;
    case 'slack_webapi_http_error':
      return `HTTP ${slack.statusCode}`;
    case 'slack_webapi_request_error':
      return `network: ${slack.original?.message ?? slack.message}`;
    default:
      return slack.message;
  }
}

/** Errors Slack itself says are passing. */
const PASSING_ERRORS = new Set([
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'ratelimited',
]);

export function toFailure(error: unknown): SendResult {
  const reason = describeSlackError(error);
  const word = platformErrorOf(error);
  // A refused call (channel_not_found, not_in_channel, is_archived …) will not get better by trying again; a bad
  // token will once the owner fixes it, like a network failure, a 5xx or a rate limit.
  const isRetryable = word === null || PASSING_ERRORS.has(word) || TOKEN_ERRORS.has(word);
  return { status: 'failed', reason, isRetryable };
}
