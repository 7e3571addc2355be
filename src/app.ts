// Builds and wires one Warren host: store, router, group queue, delivery and channels. No global state.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalChannel } from './channels/local.js';
import { createMediaSaver } from './channels/media.js';
import { watchHostSignals } from './cli/host-signal.js';
import type { Config } from './config.js';
import { createAdminCommands } from './intake/admin-commands.js';
import { createAdminNotifier, createChannelStatus } from './intake/admin-notices.js';
import { createMemoryProposals } from './intake/memory-proposals.js';
import { createOwnerOps, type OwnerOp } from './intake/owner-ops.js';
import { createPairing } from './intake/pairing.js';
import { registerGroup } from './intake/registration.js';
import { createRouter } from './intake/router.js';
import type { Logger } from './log.js';
import { createDelivery } from './queue/delivery.js';
import { createGroupQueue } from './queue/group-queue.js';
import { createWork } from './queue/work.js';
import { createEgressQuestions } from './sandbox/egress/questions.js';
import { prepareGlobalMemory } from './sandbox/global-memory.js';
import { containerUserFor } from './sandbox/group-folder.js';
import { type ChatAddress, isSameChat } from './store/records.js';
import { startRetention } from './store/retention.js';
import { type AuditEntry, openStore, type Store } from './store/store.js';
import { createScheduler, type Timers } from './tasks/scheduler.js';
import { createTaskTools } from './tasks/task-requests.js';
import type { AgentRunner, Channel, HostContext, InboundMessage, OwnerWindow } from './types.js';

export const ADMIN_CHAT: ChatAddress = { channel: 'local', chatId: 'main' };

/** Where the host's own notices for the owner go: the admin group's chat on an enabled channel. */
function adminChatOf(store: Store, channels: ReadonlyMap<string, Channel>): ChatAddress {
  const admin = store.groups.admin();
  const chats = admin ? store.chats.ofGroup(admin.id) : [];
  return chats.find((chat) => channels.has(chat.channel)) ?? ADMIN_CHAT;
}

export interface WarrenOptions {
  config: Config;
  log: Logger;
  /** Builds the agent runner once the store exists (it meters usage and audits through it). */
  createRunner(context: HostContext): AgentRunner;
  /** Builds the enabled channels once the store exists (adapters audit their denials through it). */
  createChannels(context: HostContext): Channel[];
  /** The scheduler's timers (tests drive them). */
  timers?: Timers;
  now?: () => number;
  newId?: () => string;
  /** Host paths no extra mount may expose (the package itself). */
  protectedPaths?: string[];
}

export function databasePath(dataDir: string): string {
  return join(dataDir, 'warren.db');
}

/** Creates the data directory layout (private to this user) and the global memory file. */
export function prepareDataDir(dataDir: string): void {
  for (const dir of [dataDir, join(dataDir, 'groups'), join(dataDir, 'logs')]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  prepareGlobalMemory(join(dataDir, 'global'));
}

/** The first start registers the owner's admin chat (the local chat) so there is always one place with privilege. */
export function ensureAdminGroup(store: Store, dataDir: string, now: number): void {
  if (store.groups.admin()) return;
  const admin = { folder: 'main', name: 'Main (admin)', chat: ADMIN_CHAT, isDirect: true, isAdmin: true };
  registerGroup(store, dataDir, { ...admin, trigger: 'always' }, now);
}

export async function startWarren(options: WarrenOptions) {
  const { config } = options;
  const log = options.log;
  const now = options.now ?? Date.now;
  const newId = options.newId ?? randomUUID;
  prepareDataDir(config.dataDir);
  const store = openStore(databasePath(config.dataDir));
  ensureAdminGroup(store, config.dataDir, now());

  const audit = (entry: AuditEntry) => {
    try {
      store.audit.record(entry, now());
    } catch (error) {
      log.error({ err: error, action: entry.action }, 'failed to write an audit entry');
    }
  };
  const { dataDir, timezone } = config;
  const base = { store, log, now };
  const taskTools = createTaskTools({ ...base, audit, timezone, onChange: () => scheduler.kick() });
  // Through the admin notifier, like every notice to the owner: once per proposal, rate-limited.
  const notifyAdmin = (key: string, text: string) => notifier.notify(key, text);
  const memoryProposals = createMemoryProposals({ ...base, dataDir, audit, notifyAdmin });
  // Called only once start-up is done, when ownerOps and queue exist.
  const ownerWindow: OwnerWindow = {
    perform: (request) => ownerOps.perform(request as OwnerOp, { kind: 'web' }),
    agents: () => queue.snapshot(),
  };
  const notifyOwner = notifyAdmin;
  const egressQuestions = createEgressQuestions({ now, notifyOwner, waitMs: config.egressAskSeconds * 1000 });
  const context: HostContext = {
    ...{ store, audit, now, taskTools, memoryProposals, notifyOwner, ownerWindow },
    egressQuestions,
  };
  const channels = new Map(options.createChannels(context).map((channel) => [channel.name, channel]));
  const local = channels.get('local');
  if (local && 'setApi' in local) {
    const maxBytes = config.mediaMaxMb * 1024 * 1024;
    const media = createMediaSaver({ ...base, dataDir, maxBytes, owner: containerUserFor() });
    (local as LocalChannel).setApi({ store, window: ownerWindow, config, media, maxUploadBytes: maxBytes });
  }
  const runner = options.createRunner(context);
  const { retryBaseMs } = config;
  const delivery = createDelivery({
    ...base,
    channels,
    giveUpMs: config.deliveryGiveUpHours * 3_600_000,
    baseDelayMs: retryBaseMs,
    maxDelayMs: 5 * 60_000,
    // Never only logged: the owner hears of it, unless it was for the admin chat itself (it would fail alike).
    onGiveUp: (item, reason) => {
      if (isSameChat(item, adminChatOf(store, channels))) return;
      const what = item.kind === 'reply' ? 'A reply' : 'A notice';
      const text = `⚠️ ${what} to ${item.channel} chat ${item.chatId} could not be delivered (${reason}); gave up.`;
      notifier.notify(`delivery-failed:${item.id}`, text);
    },
  });
  const onWork = (groupId: number) => queue.enqueue(groupId);
  const scheduler = createScheduler({
    ...base,
    onWork,
    ...(options.timers ? { timers: options.timers } : {}),
  });
  const work = createWork({
    ...base,
    newId,
    contextLimit: config.contextMessages,
    timezone,
    maxAttempts: config.maxAttempts,
    retryBaseMs,
    onOutbox: () => delivery.kick(),
    onTaskChange: () => scheduler.kick(),
  });
  const onBusy = (chat: ChatAddress, isBusy: boolean) =>
    channels
      .get(chat.channel)
      ?.setTyping?.(chat.chatId, isBusy)
      .catch((error: unknown) => log.debug({ err: error }, 'typing indicator failed'));
  const maxConcurrent = config.maxConcurrentAgents;
  const queue = createGroupQueue({ ...base, work, runner, newId, maxConcurrent, onBusy });
  // Letting chats in: notices to the owner, pairing codes for unknown senders, owner commands in the admin chat.
  const enqueue = (chat: ChatAddress, key: string, text: string) => {
    const item = {
      idempotencyKey: key,
      channel: chat.channel,
      chatId: chat.chatId,
      text,
      kind: 'notice' as const,
    };
    store.outbox.enqueue(item, now());
    delivery.kick();
  };
  const notifier = createAdminNotifier({ ...base, enqueue, adminChat: () => adminChatOf(store, channels) });
  const silentChannels = config.whatsappUnknownSenders === 'ignore' ? ['whatsapp'] : [];
  const { assistantName } = config;
  const pairing = createPairing({
    ...base,
    dataDir,
    assistantName,
    audit,
    enqueue,
    notifier,
    silentChannels,
  });
  // The owner changed something (the admin chat, or the CLI through a signal): act on it now.
  const kickAll = () => {
    queue.sync();
    scheduler.kick();
    delivery.kick();
  };
  const ownerOps = createOwnerOps({
    store,
    dataDir,
    now,
    audit,
    pairing,
    memory: memoryProposals,
    timezone,
    defaultDiskQuotaMb: config.diskQuotaMb,
    budgets: config,
    mountAllowlistPath: config.mountAllowlistPath,
    protectedPaths: options.protectedPaths ?? [],
    onChange: kickAll,
    stopAgent: (groupId) => queue.stopTurn(groupId),
    egressQuestions,
  });
  const commands = createAdminCommands({ ops: ownerOps, log, enqueue });
  const channelStatus = createChannelStatus({ ...base, notifier });
  const router = createRouter({
    ...base,
    assistantName,
    onTrigger: onWork,
    // Audits the denial; tells the owner, or gives an unknown direct sender a pairing code.
    onUnregistered: (message) => pairing.onUnknownMessage(message),
    onCommand: (message, group) => commands.handle(message, group),
  });

  let isStopped = false;
  const onMessage = (message: InboundMessage) => {
    if (isStopped) return;
    try {
      router.handleInbound(message);
    } catch (error) {
      log.error({ err: error, channel: message.channel }, 'failed to store an inbound message');
    }
  };

  delivery.start();
  // What a dead host left claimed is recovered (task runs end as interrupted) before anything new starts.
  queue.resume();
  scheduler.start();
  const stopRetention = startRetention({
    ...base,
    days: config.retentionDays,
    auditDays: config.auditRetentionDays,
  });
  const stopTaskSignals = watchHostSignals(dataDir, kickAll, log);
  const isConnected = new Map<string, boolean>();
  for (const channel of channels.values()) {
    await channel.connect({
      onMessage,
      onStateChange: (state) => {
        channelStatus.report(channel.name, state);
        isConnected.set(channel.name, state.status === 'connected');
        delivery.setConnected(channel.name, state.status === 'connected');
      },
      onChatEvent: (event) => {
        if (isStopped) return;
        if (event.type === 'chat-joined') pairing.onChatJoined(event);
        else {
          pairing.onChatMoved(event);
          // Replies waiting for the old id are due again, now addressed to the new one.
          delivery.kick();
        }
      },
    });
    log.info({ channel: channel.name }, 'channel connected');
    // Replies waiting for this channel go out now (unless it came up offline and says so); before, they waited
    // without using tries.
    delivery.setConnected(channel.name, isConnected.get(channel.name) ?? true);
  }

  return {
    store,
    audit,
    queue,
    scheduler,
    delivery,
    router,
    channels,
    memoryProposals,
    ownerOps,
    /** Stops intake and agents, lets a send under way finish, leaves everything else pending, closes the store. */
    async stop(): Promise<void> {
      if (isStopped) return;
      stopTaskSignals();
      stopRetention();
      scheduler.stop();
      await Promise.all([queue.shutdown(), delivery.stop()]);
      // Channels still hand over messages while they disconnect (an adapter may already have confirmed them to
      // its service): they are stored as pending and answered after the next start.
      await Promise.all(
        [...channels.values()].map((channel) =>
          channel
            .disconnect()
            .catch((error: unknown) => log.warn({ err: error, channel: channel.name }, 'disconnect failed')),
        ),
      );
      isStopped = true;
      channelStatus.stop();
      store.close();
      log.info('warren stopped');
    },
  };
}

export type Warren = Awaited<ReturnType<typeof startWarren>>;
