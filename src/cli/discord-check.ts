// `warren doctor`'s Discord check: the bot token accepted (GET /users/@me) and the Message Content intent turned on.
import { z } from 'zod';
import type { Config } from '../config.js';

export interface DiscordCheck {
  isOk: boolean;
  detail: string;
  fix?: string;
}

const PORTAL = 'https://discord.com/developers/applications';
/** The application's flags that say the Message Content intent is on (verified bots, and bots under 100 servers). */
const MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19);
const userSchema = z.object({ username: z.string() });
const applicationSchema = z.object({ flags: z.number().optional() });

async function get(root: string, path: string, token: string, timeoutMs: number) {
  try {
    const response = await fetch(`${root.replace(/\/+$/, '')}/v10${path}`, {
      headers: { authorization: `Bot ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: response.status, body: (await response.json().catch(() => null)) as unknown };
  } catch (error) {
    return { status: 0, body: null, error: `unreachable (${(error as Error).message})` };
  }
}

/** Null when Discord is off (no token). */
export async function checkDiscord(
  config: Pick<Config, 'discordBotToken' | 'discordApiRoot'>,
  timeoutMs = 10_000,
): Promise<DiscordCheck | null> {
  const { discordBotToken: token, discordApiRoot: root } = config;
  if (!token) return null;
  const me = await get(root, '/users/@me', token, timeoutMs);
  const user = userSchema.safeParse(me.body);
  if (me.status !== 200 || !user.success) {
    return {
      isOk: false,
      detail: `Discord refused WARREN_DISCORD_BOT_TOKEN: ${me.error ?? `HTTP ${me.status}`}`,
      fix: `reset the token under ${PORTAL} → your application → Bot, and put it in .env as WARREN_DISCORD_BOT_TOKEN`,
    };
  }
  const application = applicationSchema.safeParse(
    (await get(root, '/applications/@me', token, timeoutMs)).body,
  );
  if (application.success && !((application.data.flags ?? 0) & MESSAGE_CONTENT_FLAGS)) {
    return {
      isOk: false,
      detail: `the token works (bot @${user.data.username}) but the Message Content intent is off: messages would arrive empty`,
      fix: `turn on Message Content Intent under ${PORTAL} → your application → Bot → Privileged Gateway Intents`,
    };
  }
  return { isOk: true, detail: `token accepted (bot @${user.data.username})` };
}
