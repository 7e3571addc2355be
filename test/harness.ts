// Starts a real Warren host (temp data dir, real SQLite) with a fake channel and a fake agent runner.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarren, type Warren } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { registerGroup } from '../src/intake/registration.js';
import { silentLogger } from '../src/log.js';
import type { Group } from '../src/store/records.js';
import type { Store } from '../src/store/store.js';
import type { Channel, HostContext } from '../src/types.js';
import { FakeAgentRunner } from './fake-agent-runner.js';
import { FakeChannel } from './fake-channel.js';

export interface TestWarren {
  warren: Warren;
  channel: FakeChannel;
  runner: FakeAgentRunner;
  dataDir: string;
  addGroup(
    folder: string,
    options?: Partial<Pick<Group, 'trigger' | 'triggerWord'>> & { isDirect?: boolean },
  ): Group;
  stop(): Promise<void>;
}

/** The statuses of a fake chat's stored messages, in order. */
export function statusesOf(h: { warren: Warren }, folder: string): string[] {
  const chat = h.warren.store.chats.get('fake', folder);
  return h.warren.store.messages.ofChat(chat?.id ?? -1).map((message) => message.status);
}

export function tempDir(prefix = 'warren-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Registers a group that answers every message in the fake chat named like its folder. */
export function registerTestGroup(
  store: Store,
  dataDir: string,
  folder: string,
  options: { isAdmin?: boolean; now?: number } = {},
): Group {
  const chat = { channel: 'fake', chatId: folder };
  const input = { folder, name: folder, chat, isDirect: false, trigger: 'always' as const };
  return registerGroup(
    store,
    dataDir,
    { ...input, isAdmin: options.isAdmin ?? false },
    options.now ?? Date.now(),
  );
}

export async function startTestWarren(
  options: {
    runner?: FakeAgentRunner;
    env?: Record<string, string>;
    dataDir?: string;
    channels?: (context: HostContext) => Channel[];
  } = {},
): Promise<TestWarren> {
  const dataDir = options.dataDir ?? tempDir();
  const config = loadConfig({
    env: { WARREN_DATA_DIR: dataDir, WARREN_RETRY_BASE_MS: '20', WARREN_TIMEZONE: 'UTC', ...options.env },
    cwd: dataDir,
  });
  const channel = new FakeChannel();
  const runner = options.runner ?? new FakeAgentRunner();
  const warren = await startWarren({
    config,
    log: silentLogger(),
    createRunner: () => runner,
    createChannels: (context) => [channel, ...(options.channels?.(context) ?? [])],
  });
  return {
    warren,
    channel,
    runner,
    dataDir,
    addGroup(folder, groupOptions = {}) {
      return registerGroup(
        warren.store,
        dataDir,
        {
          folder,
          name: folder,
          chat: { channel: channel.name, chatId: folder },
          isDirect: groupOptions.isDirect ?? false,
          trigger: groupOptions.trigger ?? 'always',
          triggerWord: groupOptions.triggerWord ?? null,
        },
        Date.now(),
      );
    },
    stop: () => warren.stop(),
  };
}
