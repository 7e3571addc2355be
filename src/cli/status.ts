// `warren status` and `warren groups list`: a read-only view of the store, formatted for a person.
import type { Store } from '../store/store.js';
import { relative } from '../tasks/tasks.js';

export function formatGroups(store: Store): string {
  const groups = store.groups.list();
  if (groups.length === 0) return 'No groups registered.';
  const lines = groups.map((group) => {
    const chats = store.chats.ofGroup(group.id).map((chat) => `${chat.channel}:${chat.chatId}`);
    const trigger =
      group.trigger === 'always' ? 'always' : `when named "${group.triggerWord ?? 'assistant name'}"`;
    return `  ${group.folder.padEnd(16)} ${group.isAdmin ? 'admin ' : '      '} ${trigger.padEnd(28)} ${chats.join(', ')}`;
  });
  const unregistered = store.chats.list().filter((chat) => chat.groupId === null);
  const known = unregistered.map(
    (chat) => `  ${chat.channel}:${chat.chatId}${chat.name ? ` (${chat.name})` : ''}`,
  );
  return [
    `Groups (${groups.length}):`,
    `  ${'FOLDER'.padEnd(16)} ${'      '} ${'TRIGGER'.padEnd(28)} CHATS`,
    ...lines,
    ...(known.length > 0
      ? ['', 'Chats that wrote but are not registered (add with `warren groups add`):', ...known]
      : []),
  ].join('\n');
}

export function formatStatus(store: Store, now: number): string {
  const groups = new Map(store.groups.list().map((group) => [group.id, group.folder]));
  const runs = store.runs.open();
  const counts = store.messages.countByStatus();
  const waitingByGroup = new Map<number, number>();
  for (const row of counts) {
    if (row.groupId !== null && (row.status === 'pending' || row.status === 'processing')) {
      waitingByGroup.set(row.groupId, (waitingByGroup.get(row.groupId) ?? 0) + row.count);
    }
  }
  const failedMessages = counts
    .filter((row) => row.status === 'failed')
    .reduce((sum, row) => sum + row.count, 0);
  const outbox = store.outbox.counts();
  const failedSends = store.outbox.list({ status: 'failed', limit: 5 });
  const pairings = store.pairing.listPending(now);
  const stop = store.emergencyStop.get();
  const lines = [
    ...(stop
      ? [
          `EMERGENCY STOP since ${new Date(stop.at).toISOString()} (${stop.by}): no agent runs; \`warren resume-all\``,
          '',
        ]
      : []),
    formatGroups(store),
    '',
    ...formatChannels(store, now),
    ...(pairings.length > 0
      ? [`Pairing: ${pairings.length} person(s) wait for approval (\`warren pairing list\`)`, '']
      : []),
    `Running agents (${runs.length}):`,
    ...(runs.length === 0 ? ['  none'] : []),
    ...runs.map(
      (run) => `  ${(groups.get(run.groupId) ?? '?').padEnd(16)} started ${relative(run.startedAt, now)}`,
    ),
    '',
    'Queue:',
    ...(waitingByGroup.size === 0 ? ['  nothing waiting'] : []),
    ...[...waitingByGroup].map(
      ([groupId, count]) => `  ${(groups.get(groupId) ?? '?').padEnd(16)} ${count} message(s)`,
    ),
    ...(failedMessages > 0
      ? [`  ${failedMessages} message(s) failed after all retries (the chat was told)`]
      : []),
    '',
    ...formatTasksLine(store, now),
    `Outbox: ${outbox.pending + outbox.sending} waiting, ${outbox.sent} sent, ${outbox.failed} failed`,
    ...failedSends.map(
      (item) =>
        `  failed: ${item.channel}:${item.chatId} ${relative(item.createdAt, now)} after ${item.attempts} tries: ${item.lastError ?? ''}`,
    ),
  ];
  return lines.join('\n');
}

/** Each channel's last reported state; the states of a host that is not running are as it left them. */
/** One line on scheduled tasks; `warren tasks` has the details. */
function formatTasksLine(store: Store, now: number): string[] {
  const tasks = store.tasks.list();
  if (tasks.length === 0) return [];
  const active = tasks.filter((task) => task.status === 'active');
  const next = active
    .map((task) => task.nextRunAt)
    .filter((at): at is number => at !== null)
    .sort((a, b) => a - b)[0];
  const nextText = next === undefined ? '' : `, next run ${next <= now ? 'due now' : relative(next, now)}`;
  return [
    `Tasks: ${active.length} active, ${tasks.length - active.length} paused${nextText} (\`warren tasks\`)`,
    '',
  ];
}

function formatChannels(store: Store, now: number): string[] {
  const states = store.channels.states();
  if (states.length === 0) return [];
  const label: Record<string, string> = {
    connected: 'connected',
    reconnecting: 'reconnecting',
    disconnected: 'disconnected',
    'logged-out': 'logged out — needs you',
  };
  return [
    'Channels:',
    ...states.map(({ channel, state, updatedAt }) => {
      const reason = 'reason' in state && state.reason ? `: ${state.reason}` : '';
      return `  ${channel.padEnd(16)} ${label[state.status] ?? state.status} (reported ${relative(updatedAt, now)})${reason}`;
    }),
    '',
  ];
}
