// Owner commands typed into the admin chat (/register, /approve, /deny, /pending, /memory), handled before any agent runs.
import { parseArgs } from 'node:util';
import type { Logger } from '../log.js';
import { formatChatAddress, parseChatAddress, registerGroup, shareGroup } from '../sandbox/group-folder.js';
import type { ChatAddress, Group } from '../store/records.js';
import { type AuditEntry, type Store, StoreError } from '../store/store.js';
import type { InboundMessage } from '../types.js';
import type { MemoryProposals } from './memory-proposals.js';
import { formatPending, type Pairing } from './pairing.js';

export const ADMIN_COMMANDS = ['/register', '/approve', '/deny', '/pending', '/memory'] as const;
type AdminCommand = (typeof ADMIN_COMMANDS)[number];

const USAGE: Record<AdminCommand, string> = {
  '/register':
    'usage: /register CHANNEL:CHAT FOLDER [--name "Name"] [--trigger mention|always] [--trigger-word WORD]\n' +
    '   or: /register CHANNEL:CHAT --share FOLDER',
  '/approve': 'usage: /approve CODE [FOLDER] or /approve CODE --share FOLDER',
  '/deny': 'usage: /deny CODE',
  '/pending': 'usage: /pending',
  '/memory': 'usage: /memory, /memory approve N or /memory reject N',
};

/** Splits a command line into words; "double quotes" keep spaces. */
export function splitWords(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? '');
}

/** The command a message starts with (a Telegram-style "/approve@bot" counts), or null. */
export function commandOf(text: string): AdminCommand | null {
  const first = text.trim().split(/\s+/, 1)[0]?.replace(/@\S+$/, '').toLowerCase() ?? '';
  return (ADMIN_COMMANDS as readonly string[]).includes(first) ? (first as AdminCommand) : null;
}

export interface AdminCommandDeps {
  store: Store;
  dataDir: string;
  pairing: Pairing;
  log: Logger;
  now(): number;
  audit(entry: AuditEntry): void;
  /** Queues the answer to the chat the command came from (idempotent by key). */
  enqueue(chat: ChatAddress, key: string, text: string): void;
  /** Global memory changes agents proposed; without it /memory says so. */
  memory?: Pick<MemoryProposals, 'pending' | 'decide'>;
}

export function createAdminCommands(deps: AdminCommandDeps) {
  function register(words: string[], actor: string): string {
    const { values, positionals } = parseArgs({
      args: words,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        trigger: { type: 'string', default: 'mention' },
        'trigger-word': { type: 'string' },
        share: { type: 'string' },
      },
    });
    const chat = positionals[0] ? parseChatAddress(positionals[0]) : null;
    if (!chat) throw new UsageError(USAGE['/register']);
    const known = deps.store.chats.get(chat.channel, chat.chatId);
    const isDirect = known?.isDirect ?? false;
    let group: Group;
    if (values.share) {
      group = shareGroup(deps.store, { chat, folder: values.share, isDirect }, deps.now());
    } else {
      const folder = positionals[1];
      if (!folder) throw new UsageError(USAGE['/register']);
      if (values.trigger !== 'mention' && values.trigger !== 'always') {
        throw new UsageError("--trigger must be 'mention' or 'always'");
      }
      group = registerGroup(
        deps.store,
        deps.dataDir,
        {
          folder,
          name: values.name ?? known?.name ?? folder,
          chat,
          isDirect,
          trigger: values.trigger,
          triggerWord: values['trigger-word'] ?? null,
        },
        deps.now(),
      );
    }
    deps.audit({
      groupFolder: group.folder,
      actor,
      action: 'register-chat',
      decision: 'allow',
      detail: { chat: formatChatAddress(chat), isShared: Boolean(values.share) },
    });
    return values.share
      ? `✅ ${formatChatAddress(chat)} now shares group '${group.folder}'.`
      : `✅ Registered ${formatChatAddress(chat)} as group '${group.folder}' (answers ${
          group.trigger === 'always' ? 'every message' : 'when named'
        }).`;
  }

  function approve(words: string[], actor: string): string {
    const { values, positionals } = parseArgs({
      args: words,
      allowPositionals: true,
      options: { share: { type: 'string' } },
    });
    if (!positionals[0]) throw new UsageError(USAGE['/approve']);
    const outcome = deps.pairing.approve({
      code: positionals[0],
      folder: positionals[1],
      shareFolder: values.share,
      actor,
    });
    if (outcome.status !== 'approved') {
      throw new UsageError(outcome.status === 'failed' ? outcome.reason : 'not approved');
    }
    return `✅ ${outcome.request.senderName} (${outcome.request.channel}:${outcome.request.chatId}) can talk to the agent of group '${outcome.group.folder}' now.`;
  }

  function pending(): string {
    const requests = formatPending(deps.pairing.listPending(), deps.now());
    const chats = deps.store.chats
      .list()
      .filter((chat) => chat.groupId === null && !chat.isDirect)
      .slice(0, 10)
      .map((chat) => `${formatChatAddress(chat)}${chat.name ? ` (${chat.name})` : ''}`);
    return [
      requests.length > 0 ? 'Pairing requests:' : 'No pairing requests.',
      ...requests.map((line) => `  ${line}`),
      ...(chats.length > 0 ? ['Chats that are not registered:', ...chats.map((line) => `  ${line}`)] : []),
    ].join('\n');
  }

  /** /memory lists what waits; /memory approve|reject N decides (memory-proposals.ts writes and audits). */
  function memory(words: string[], actor: string): string | Promise<string> {
    const proposals = deps.memory;
    if (!proposals) throw new UsageError('global memory proposals are not available in this host');
    if (words.length === 0) {
      const waiting = proposals.pending();
      if (waiting.length === 0) return 'No global memory proposals are waiting.';
      return [
        'Global memory proposals waiting for you (each came with its diff):',
        ...waiting.map(
          (proposal) =>
            `  #${proposal.id} from group '${proposal.groupFolder}', ${formatTime(proposal.createdAt)}, ` +
            `${Buffer.byteLength(proposal.content, 'utf8')} bytes: /memory approve ${proposal.id} or /memory reject ${proposal.id}`,
        ),
      ].join('\n');
    }
    const [verb, number, ...rest] = words;
    if (
      (verb !== 'approve' && verb !== 'reject') ||
      !number ||
      !/^\d{1,9}$/.test(number) ||
      rest.length > 0
    ) {
      throw new UsageError(USAGE['/memory']);
    }
    return proposals.decide(Number(number), verb, actor).then((result) => {
      if (result.status === 'failed') throw new UsageError(result.message);
      return result.message;
    });
  }

  function run(command: AdminCommand, words: string[], actor: string): string | Promise<string> {
    switch (command) {
      case '/register':
        return register(words, actor);
      case '/approve':
        return approve(words, actor);
      case '/deny': {
        if (!words[0] || words.length > 1) throw new UsageError(USAGE['/deny']);
        const outcome = deps.pairing.deny({ code: words[0], actor });
        if (outcome.status !== 'denied') {
          throw new UsageError(outcome.status === 'failed' ? outcome.reason : 'not denied');
        }
        return `🚫 Denied ${outcome.request.senderName} (${outcome.request.channel}:${outcome.request.chatId}); they stay ignored.`;
      }
      case '/pending':
        return pending();
      case '/memory':
        return memory(words, actor);
    }
  }

  return {
    /**
     * Runs an owner command. Returns true when the message was one and was handled (nothing is stored and no
     * agent runs); false otherwise. Commands count only in the admin group: elsewhere they are audited and the
     * message goes on as ordinary text. Must not throw.
     */
    handle(message: InboundMessage, group: Group): boolean {
      const command = commandOf(message.text);
      if (!command) return false;
      const actor = `${message.channel}:${message.senderId}`;
      if (!group.isAdmin) {
        deps.audit({
          groupFolder: group.folder,
          actor,
          action: command.slice(1),
          decision: 'deny',
          detail: { reason: 'owner commands work only in the admin chat' },
        });
        return false;
      }
      const failed = (error: unknown): string => {
        const isExpected =
          error instanceof UsageError ||
          error instanceof StoreError ||
          (error instanceof TypeError &&
            String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS'));
        if (!isExpected) deps.log.error({ err: error, command }, 'admin command failed');
        deps.audit({
          groupFolder: group.folder,
          actor,
          action: command.slice(1),
          decision: 'deny',
          detail: { reason: (error as Error).message },
        });
        return isExpected ? `❌ ${(error as Error).message}` : '❌ The command failed; see the log.';
      };
      const reply = (answer: string) =>
        deps.enqueue(message, `command:${message.channel}:${message.chatId}:${message.externalId}`, answer);
      let answer: string | Promise<string>;
      try {
        answer = run(command, splitWords(message.text).slice(1), actor);
      } catch (error) {
        answer = failed(error);
      }
      if (typeof answer === 'string') {
        reply(answer);
        return true;
      }
      // A command that waits for the disk (/memory approve) answers when it is done; this still never throws.
      answer
        .catch(failed)
        .then(reply)
        .catch((error: unknown) => deps.log.error({ err: error, command }, 'admin command answer failed'));
      return true;
    },
  };
}

class UsageError extends Error {}

/** A time for the owner, to the minute, e.g. "2025-06-02 09:00 UTC". */
function formatTime(at: number): string {
  return `${new Date(at).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
