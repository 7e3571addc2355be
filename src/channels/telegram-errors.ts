// What a Telegram Bot API error means: its words for logs and states, and whether a send is worth retrying.
import type { SendResult } from '../types.js';

export type ApiError = Error & {
  error_code: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
};

export const isApiError = (error: unknown): error is ApiError =>
  error instanceof Error && typeof (error as Partial<ApiError>).error_code === 'number';

/** Telegram refused our HTML (a formatting bug must never lose a reply: the part is sent again as plain text). */
export const isFormattingError = (error: unknown) =>
  isApiError(error) &&
  error.error_code === 400 &&
  /can't parse entities|can't find end|unsupported start tag|unexpected end tag|entit|too long/i.test(
    error.description,
  );

export function describeTelegramError(error: unknown): string {
  if (isApiError(error)) return `${error.error_code} ${error.description}`;
  const cause = (error as { error?: unknown }).error;
  const message = cause instanceof Error ? cause.message : (error as Error).message;
  return `network: ${message}`;
}

export function toFailure(error: unknown): SendResult {
  const reason = describeTelegramError(error);
  if (!isApiError(error)) return { status: 'failed', reason, isRetryable: true };
  // 400 (bad chat id, upgraded group …) and 403 (blocked, kicked) will not get better by trying again.
  const isRetryable = error.error_code === 429 || error.error_code >= 500 || error.error_code === 401;
  return { status: 'failed', reason, isRetryable };
}
