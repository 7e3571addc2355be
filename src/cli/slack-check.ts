// `warren doctor`'s Slack check: both tokens present, and each accepted by Slack for what it is used for.
import { z } from 'zod';
import type { Config } from '../config.js';

export interface SlackCheck {
  isOk: boolean;
  detail: string;
  fix?: string;
}

const answerSchema = z.object({ ok: z.boolean(), error: z.string().optional(), user: z.string().optional() });
const APP_SETTINGS = 'https://api.slack.com/apps';

/** Calls one Web API method with a token; Slack's error word, or the answer. */
async function call(root: string, method: string, token: string, timeoutMs: number) {
  try {
    const response = await fetch(`${root.replace(/\/+$/, '')}/${method}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const parsed = answerSchema.safeParse(await response.json().catch(() => null));
    if (!parsed.success) return { error: `HTTP ${response.status} without a Slack answer` };
    return parsed.data.ok ? { user: parsed.data.user } : { error: parsed.data.error ?? 'unknown_error' };
  } catch (error) {
    return { error: `unreachable (${(error as Error).message})` };
  }
}

/** Null when Slack is off (neither token set). */
export async function checkSlack(
  config: Pick<Config, 'slackBotToken' | 'slackAppToken' | 'slackApiRoot'>,
  timeoutMs = 10_000,
): Promise<SlackCheck | null> {
  const { slackBotToken: bot, slackAppToken: app, slackApiRoot: root } = config;
  if (!bot && !app) return null;
  const missing = bot ? 'WARREN_SLACK_APP_TOKEN' : 'WARREN_SLACK_BOT_TOKEN';
  if (!bot || !app) {
    return {
      isOk: false,
      detail: `${missing} is not set; Slack needs both tokens`,
      fix: `put ${missing}=${bot ? 'xapp-…' : 'xoxb-…'} in .env (see docs/channels/slack.md)`,
    };
  }
  const identity = await call(root, 'auth.test', bot, timeoutMs);
  if (identity.error) {
    return {
      isOk: false,
      detail: `Slack refused WARREN_SLACK_BOT_TOKEN: ${identity.error}`,
      fix: `copy the Bot User OAuth Token (xoxb-…) from ${APP_SETTINGS} → your app → OAuth & Permissions into .env`,
    };
  }
  // apps.connections.open only hands out a URL; nothing connects to it.
  const socket = await call(root, 'apps.connections.open', app, timeoutMs);
  if (socket.error) {
    return {
      isOk: false,
      detail: `Slack refused WARREN_SLACK_APP_TOKEN: ${socket.error}`,
      fix: `make an app-level token with connections:write under ${APP_SETTINGS} → your app → Basic Information, turn Socket Mode on, and put it in .env`,
    };
  }
  return { isOk: true, detail: `both tokens accepted (bot user @${identity.user ?? 'unknown'})` };
}
