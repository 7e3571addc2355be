// The table of channel adapters. Each factory returns null when its channel is not configured.
import type { HostContext } from '../app.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Channel } from '../types.js';
import { createLocalChannel } from './local.js';

export interface ChannelFactoryInput extends HostContext {
  config: Config;
  log: Logger;
  /** The local chat's access token (from the data directory). */
  localToken: string;
}

export const channelFactories: ReadonlyArray<{
  name: string;
  create(input: ChannelFactoryInput): Channel | null;
}> = [
  {
    name: 'local',
    create: (input) =>
      input.config.isLocalChatEnabled
        ? createLocalChannel({
            port: input.config.localPort,
            token: input.localToken,
            assistantName: input.config.assistantName,
            log: input.log.child({ channel: 'local' }),
            onDenied: (denial) =>
              input.audit({
                groupFolder: null,
                actor: `local:${denial.remoteAddress ?? 'unknown'}`,
                action: 'local-chat-request',
                decision: 'deny',
                detail: { ...denial },
              }),
          })
        : null,
  },
];

export function createChannels(input: ChannelFactoryInput): Channel[] {
  return channelFactories.map((factory) => factory.create(input)).filter((channel) => channel !== null);
}
