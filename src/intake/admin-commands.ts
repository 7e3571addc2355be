// The admin chat's front end to the owner's operations (owner-ops.ts): /register, /approve, /deny, /pending,
// /memory, /budget, /net, /allow, /secrets, /mcp, /stop, /resume. It only parses a command into an operation and
// queues the answer; the operation authorizes and audits.
import { parseArgs } from 'node:util';
import type { Logger } from '../log.js';
import { type ChatAddress, type Group, parseChatAddress } from '../store/records.js';
import type { InboundMessage } from '../types.js';
import { parseHostPort } from './net-ops.js';
import type { OwnerActor, OwnerOp, OwnerOps } from './owner-ops.js';

const USAGE = {
  '/register':
    'usage: /register CHANNEL:CHAT FOLDER [--name "Name"] [--trigger mention|always] [--trigger-word WORD]\n' +
    '   or: /register CHANNEL:CHAT --share FOLDER',
  '/approve': 'usage: /approve CODE [FOLDER] or /approve CODE --share FOLDER',
  '/deny': 'usage: /deny CODE (a pairing code) or /deny ID (a question about a host)',
  '/pending': 'usage: /pending',
  '/memory': 'usage: /memory, /memory approve N or /memory reject N',
  '/budget': 'usage: /budget FOLDER [--daily AMOUNT|0|default] [--monthly AMOUNT|0|default]',
  '/net':
    'usage: /net list FOLDER, /net allow FOLDER HOST[:PORT] [--lan], /net deny FOLDER HOST[:PORT]\n' +
    '   or: /net remove FOLDER HOST[:PORT], /net websearch FOLDER on|off, /net ask FOLDER on|off\n' +
    'HOST: api.example.com, *.example.com or an IP address; port 443 by default',
  '/allow':
    'usage: /allow ID (this once) or /allow ID always (adds the host to its list); ID: from the question',
  '/secrets':
    'usage: /secrets list, /secrets bind NAME FOLDER HOST[:PORT] [--header NAME] [--template "Bearer {secret}"]\n' +
    '   or: /secrets unbind FOLDER HOST[:PORT] [--header NAME], /secrets remove NAME [--force]',
  '/mcp': 'usage: /mcp list FOLDER, /mcp add FOLDER NAME URL or /mcp remove FOLDER NAME',
  '/stop': 'usage: /stop (every agent stops at once; nothing starts until /resume)',
  '/resume': 'usage: /resume',
};
type AdminCommand = keyof typeof USAGE;

/** The gateway's question ids are 6 hex digits (sandbox/egress/questions.ts); a pairing code has 8 characters. */
const QUESTION_ID = /^[0-9a-f]{6}$/i;

/** A budget as typed in a front end: an amount like 2.50, 0 for no limit, 'default', or not given (undefined). */
export function parseBudget(text: string | undefined): number | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'default') return null;
  if (!/^\d{1,9}(\.\d{1,4})?$/.test(text))
    throw new Error(`'${text}' is not an amount like 2.50, 0 (no limit) or 'default'`);
  return Number(text);
}

/** Splits a command line into words; "double quotes" keep spaces. */
export function splitWords(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2] ?? '');
}

/** The command a message starts with (a Telegram-style "/approve@bot" counts), or null. */
export function commandOf(text: string): AdminCommand | null {
  const first = text.trim().split(/\s+/, 1)[0]?.replace(/@\S+$/, '').toLowerCase() ?? '';
  return Object.hasOwn(USAGE, first) ? (first as AdminCommand) : null;
}

/** The operation a command asks for, or the usage text when it is malformed (parseArgs may also throw). */
function parseCommand(command: AdminCommand, words: string[]): OwnerOp | string {
  switch (command) {
    case '/register': {
      const options = {
        name: { type: 'string' },
        trigger: { type: 'string', default: 'mention' },
        'trigger-word': { type: 'string' },
        share: { type: 'string' },
      } as const;
      const { values, positionals } = parseArgs({ args: words, allowPositionals: true, options });
      const chat = positionals[0] ? parseChatAddress(positionals[0]) : null;
      if (!chat) return USAGE[command];
      if (values.share) return { op: 'share-chat', chat, folder: values.share };
      if (!positionals[1]) return USAGE[command];
      if (values.trigger !== 'mention' && values.trigger !== 'always') {
        return "--trigger must be 'mention' or 'always'";
      }
      return {
        op: 'register-chat',
        chat,
        folder: positionals[1],
        name: values.name,
        trigger: values.trigger,
        triggerWord: values['trigger-word'],
      };
    }
    case '/approve': {
      const options = { share: { type: 'string' } } as const;
      const { values, positionals } = parseArgs({ args: words, allowPositionals: true, options });
      if (!positionals[0]) return USAGE[command];
      return { op: 'pairing-approve', code: positionals[0], folder: positionals[1], share: values.share };
    }
    case '/deny': {
      const [id = '', ...rest] = words;
      if (!id || rest.length > 0) return USAGE[command];
      return QUESTION_ID.test(id)
        ? { op: 'net-answer', id: id.toLowerCase(), answer: 'deny' }
        : { op: 'pairing-deny', code: id };
    }
    case '/allow': {
      const [id = '', always, ...rest] = words;
      if (!id || (always !== undefined && always !== 'always') || rest.length > 0) return USAGE[command];
      return { op: 'net-answer', id: id.toLowerCase(), answer: always ? 'always' : 'once' };
    }
    case '/pending':
      return { op: 'pairing-list' };
    case '/stop':
    case '/resume':
      return words.length > 0
        ? USAGE[command]
        : { op: command === '/stop' ? 'emergency-stop' : 'resume-all' };
    case '/memory': {
      if (words.length === 0) return { op: 'memory-list' };
      const [verb, number, ...rest] = words;
      if ((verb !== 'approve' && verb !== 'reject') || !/^\d{1,9}$/.test(number ?? '') || rest.length > 0) {
        return USAGE[command];
      }
      return { op: `global-memory-${verb}`, id: Number(number) };
    }
    case '/budget': {
      const options = { daily: { type: 'string' }, monthly: { type: 'string' } } as const;
      const { values, positionals } = parseArgs({ args: words, allowPositionals: true, options });
      const [folder, ...rest] = positionals;
      if (!folder || rest.length > 0 || (!values.daily && !values.monthly)) return USAGE[command];
      return {
        op: 'set-budget',
        folder,
        daily: parseBudget(values.daily),
        monthly: parseBudget(values.monthly),
      };
    }
    case '/net': {
      const options = { lan: { type: 'boolean' } } as const;
      const { values, positionals } = parseArgs({ args: words, allowPositionals: true, options });
      const [verb, folder, target, ...rest] = positionals;
      if (!folder || rest.length > 0) return USAGE[command];
      if (verb === 'list') return target || values.lan ? USAGE[command] : { op: 'net-list', folder };
      if ((verb === 'websearch' || verb === 'ask') && (target === 'on' || target === 'off') && !values.lan)
        return { op: `net-${verb}`, folder, isOn: target === 'on' };
      if ((verb !== 'allow' && verb !== 'deny' && verb !== 'remove') || !target) return USAGE[command];
      if (values.lan && verb !== 'allow') return '--lan is only for allow rules';
      const where = parseHostPort(target); // throws on a bad port: the answer says so
      if (verb === 'allow') return { op: 'net-allow', folder, ...where, isLan: values.lan ?? false };
      return { op: `net-${verb}`, folder, ...where };
    }
    case '/secrets':
      return parseSecrets(words);
    case '/mcp': {
      const [verb, folder = '', name = '', url, ...rest] = words;
      if (verb === 'list' && folder && !name) return { op: 'mcp-list', folder };
      if (verb === 'remove' && name && url === undefined) return { op: 'mcp-remove', folder, name };
      if (verb === 'add' && url && rest.length === 0) return { op: 'mcp-add', folder, name, url };
      return USAGE[command];
    }
  }
}

/** /secrets: every operation but set, whose value would stay in the chat's history. */
function parseSecrets(words: string[]): OwnerOp | string {
  if (words[0] === 'set') {
    const typed = words.length > 2 ? ' Treat the value you typed as seen: replace it at its source.' : '';
    const how = 'On the host: printf %s "$VALUE" | warren secrets set NAME.';
    return `A secret is never typed into a chat: its history would keep it. ${how}${typed}`;
  }
  const options = {
    header: { type: 'string' },
    template: { type: 'string' },
    force: { type: 'boolean' },
  } as const;
  const { values, positionals } = parseArgs({ args: words, allowPositionals: true, options });
  const { header, template, force } = values;
  const [verb, ...rest] = positionals;
  const [first = '', second = '', third = ''] = rest;
  const takes = (count: number, ...allowed: string[]) =>
    rest.length === count && Object.keys(values).every((option) => allowed.includes(option));
  if (verb === 'list' && takes(0)) return { op: 'secret-list' };
  if (verb === 'remove' && takes(1, 'force'))
    return { op: 'secret-remove', name: first, force: force ?? false };
  // parseHostPort throws on a bad port: the answer says so.
  if (verb === 'bind' && takes(3, 'header', 'template'))
    return { op: 'secret-bind', name: first, folder: second, ...parseHostPort(third), header, template };
  if (verb === 'unbind' && takes(2, 'header'))
    return { op: 'secret-unbind', folder: first, ...parseHostPort(second), header };
  return USAGE['/secrets'];
}

export function createAdminCommands(deps: {
  ops: Pick<OwnerOps, 'authorize' | 'perform'>;
  log: Logger;
  /** Queues the answer to the chat the command came from (idempotent by key). */
  enqueue(chat: ChatAddress, key: string, text: string): void;
}) {
  /** The answer to a command from the admin chat; never rejects. */
  async function answer(command: AdminCommand, text: string, actor: OwnerActor): Promise<string> {
    let request: OwnerOp | string;
    try {
      request = parseCommand(command, splitWords(text).slice(1));
    } catch (error) {
      request = (error as Error).message; // parseArgs: an unknown or malformed option
    }
    if (typeof request === 'string') return `❌ ${request}`;
    try {
      const result = await deps.ops.perform(request, actor);
      if (!result.ok) return `❌ ${result.text}`;
      // A change done gets a tick; lists, and texts that carry their own mark (memory decisions), do not.
      const isMarked = request.op.endsWith('-list') || /^\p{Extended_Pictographic}/u.test(result.text);
      return isMarked ? result.text : `✅ ${result.text}`;
    } catch (error) {
      deps.log.error({ err: error, command }, 'admin command failed');
      return '❌ The command failed; see the log.';
    }
  }

  return {
    /** True when the message was an owner command and was handled (nothing is stored, no agent runs). Never throws. */
    handle(message: InboundMessage, group: Group): boolean {
      const command = commandOf(message.text);
      if (!command) return false;
      const actor = { kind: 'chat' as const, id: `${message.channel}:${message.senderId}`, group };
      // A secret typed into any chat is answered and never stored: no history keeps it, no agent reads it.
      const isSecret = command === '/secrets' && /^\/secrets\s+set\b/i.test(message.text.trim());
      // Elsewhere than the admin chat a command is ordinary text for the agent; the refusal is audited.
      if (!isSecret && !deps.ops.authorize(actor, command.slice(1))) return false;
      const key = `command:${message.channel}:${message.chatId}:${message.externalId}`;
      // An operation that waits for the disk (/memory approve) answers when it is done.
      answer(command, message.text, actor)
        .then((text) => deps.enqueue(message, key, text))
        .catch((error: unknown) => deps.log.error({ err: error, command }, 'admin command answer failed'));
      return true;
    },
  };
}
