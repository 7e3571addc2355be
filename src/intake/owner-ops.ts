// The owner's operations in one table: registering, pairing, mounts, quotas, network rules, secrets, MCP servers,
// tasks and global memory. Each one is authorized and audited here, once; the front ends (the admin chat's
// commands, the CLI) only parse and print.
import type { Config } from '../config.js';
import type { EgressQuestions } from '../sandbox/egress/questions.js';
import { removeGroupFiles } from '../sandbox/run-folders.js';
import { type ChatAddress, formatChatAddress, type Group } from '../store/records.js';
import { type AuditEntry, type PairingRequest, type Store, StoreError, type Task } from '../store/store.js';
import { createTaskOps, describeNextRun } from '../tasks/tasks.js';
import { type McpOp, mcpOp } from './mcp-ops.js';
import type { MemoryProposals } from './memory-proposals.js';
import { type MountOp, mountOp } from './mount-ops.js';
import { type NetOp, netOp } from './net-ops.js';
import { memoryList, pendingText } from './owner-lists.js';
import type { Pairing } from './pairing.js';
import { registerGroup, shareGroup } from './registration.js';
import { type SecretOp, secretOp } from './secret-ops.js';

/** Who asks: the CLI (who can open the database), the owner's web page (who holds its token), or a chat member. */
export type OwnerActor = { kind: 'cli' } | { kind: 'web' } | { kind: 'chat'; id: string; group: Group };

export type OpResult = { ok: boolean; text: string };
/** What an operation did: a sentence for the owner; for the audit, its group (else the request's) and details. */
type Done = string | { text: string; group?: string; detail?: object; isDenied?: boolean };

export interface OwnerOpsDeps {
  store: Store;
  dataDir: string;
  now(): number;
  audit(entry: AuditEntry): void;
  pairing: Pairing;
  /** The owner's timezone (new task runs, texts). */
  timezone: string;
  defaultDiskQuotaMb: number;
  budgets: Pick<Config, 'groupDailyBudget' | 'groupMonthlyBudget' | 'currency'>;
  mountAllowlistPath: string;
  /** Host paths no mount may expose (the package itself). */
  protectedPaths: string[];
  /** Without them the memory operations say so. */
  memory?: Pick<MemoryProposals, 'pending' | 'decide'>;
  /** Something the running host acts on changed (tasks, outbox): wake it. Must not throw. */
  onChange(): void;
  /** Stops a group's running agent, ending its turn unanswered; false when none runs. Only a running host has it. */
  stopAgent?(groupId: number): boolean;
  /** The gateway's open questions to the owner (destinations not on a list). Only a running host has them. */
  egressQuestions?: Pick<EgressQuestions, 'answer' | 'list'>;
}

type TaskAction = 'pause' | 'resume' | 'cancel' | 'run-now';

/** Every operation and its arguments; front ends build these from what a person typed. */
export type OwnerOp =
  | {
      op: 'register-chat';
      chat: ChatAddress;
      folder: string;
      name?: string;
      trigger: Group['trigger'];
      triggerWord?: string | null;
      isDirect?: boolean;
    }
  | { op: 'share-chat'; chat: ChatAddress; folder: string; isDirect?: boolean }
  /** purge: its rows (but the audit) and its files on disk go too, for good; without, its folder is kept. */
  | { op: 'remove-group'; folder: string; purge?: boolean }
  | MountOp
  | { op: 'set-quota'; folder: string; mb: number | null }
  /** An amount per day or month: null is the configured default, 0 no limit, undefined leaves it as it is. */
  | { op: 'set-budget'; folder: string; daily?: number | null; monthly?: number | null }
  | { op: 'pairing-list' }
  | { op: 'pairing-approve'; code: string; folder?: string; share?: string }
  | { op: 'pairing-deny'; code: string }
  | { op: `task-${TaskAction}`; id: string }
  | { op: 'memory-list' }
  | { op: 'emergency-stop' | 'resume-all' }
  /** stop-turn ends what the group's agent is doing; new-session also forgets its conversation. */
  | { op: 'stop-turn' | 'new-session'; folder: string }
  | { op: 'global-memory-approve' | 'global-memory-reject'; id: number }
  /** A group's egress rules (net-ops.ts): allow, deny, remove, list; web search; asking about other hosts. */
  | NetOp
  /** The owner's secrets and which group's requests to which host carry them (secret-ops.ts); set: CLI only. */
  | SecretOp
  | McpOp;

const ONLY_ADMIN = 'owner commands work only in the admin chat';

/** Who asked to pair, for the audit trail. */
const asked = ({ code, senderId: sender, ...chat }: PairingRequest) => ({
  code,
  chat: formatChatAddress(chat),
  sender,
});

export function createOwnerOps(deps: OwnerOpsDeps) {
  const { store } = deps;
  const tasks = createTaskOps({ store, now: deps.now, defaultTimezone: deps.timezone });

  const own = (folder: string) => store.groups.budget(folder) ?? { daily: null, monthly: null };
  // Refusals are StoreErrors: words for the owner, audited as a denial, never a crash.
  const groupNamed = (folder: string): Group => {
    const group = store.groups.byFolder(folder);
    if (!group) throw new StoreError(`no group '${folder}' (see \`warren groups list\`)`);
    return group;
  };

  function task(action: TaskAction, id: string): Done {
    const found = store.tasks.byId(id);
    if (!found) throw new StoreError(`no task '${id}' (see \`warren tasks list --all\`)`);
    const method = action === 'run-now' ? 'runNow' : action;
    const result = method === 'pause' ? tasks.pause(found, 'paused by the owner') : tasks[method](found);
    if (!result.ok) throw new StoreError(result.error);
    deps.onChange();
    const after = store.tasks.byId(id) as Task;
    const text = {
      pause: `Paused task ${id}.`,
      resume: `Resumed task ${id}; next run ${describeNextRun(after, store, deps.now())}.`,
      cancel: `Cancelled task ${id}.`,
      'run-now': `Queued a run of task ${id} now; \`warren tasks show ${id}\` shows how it went.`,
    }[action];
    return { group: found.groupFolder, text };
  }

  const memory = () => {
    if (!deps.memory) throw new StoreError('global memory proposals are not available here');
    return deps.memory;
  };

  /** A client leaves: its rows go (the audit stays), its running agent is stopped, then its files go. */
  async function purge(folder: string): Promise<Done> {
    const purged = store.groupData.purge(folder);
    if (!purged) throw new StoreError(`no group '${folder}' (see \`warren groups list\`)`);
    deps.onChange();
    const { removed, left } = await removeGroupFiles(deps.dataDir, folder, purged.files);
    const { messages, outbox, tasks, usage } = purged.counts;
    const files = removed.length > 0 ? ` and ${removed.join(', ')}` : '';
    const kept = left.length > 0 ? ` Could not remove (delete by hand): ${left.join(', ')}.` : '';
    const text =
      `Purged group '${folder}': deleted ${messages} messages, ${outbox} replies, ${tasks} tasks, ` +
      `${usage} usage rows${files}. The audit keeps that it happened.${kept}`;
    const detail = { purged: true, deleted: purged.counts, removed, left, stagedFiles: purged.files.length };
    return { text, detail };
  }

  async function run(request: OwnerOp, actor: string, isCli: boolean): Promise<Done> {
    const now = deps.now();
    switch (request.op) {
      case 'register-chat': {
        const { chat, folder, trigger, triggerWord } = request;
        const known = store.chats.get(chat.channel, chat.chatId);
        const name = request.name ?? known?.name ?? folder;
        const isDirect = request.isDirect ?? known?.isDirect ?? false;
        const input = { folder, name, chat, isDirect, trigger, triggerWord };
        const group = registerGroup(store, deps.dataDir, input, now);
        const answers = group.trigger === 'always' ? 'every message' : 'when named';
        return `Registered ${formatChatAddress(chat)} as group '${group.folder}' (answers ${answers}).`;
      }
      case 'share-chat': {
        const { chat, folder } = request;
        const isDirect = request.isDirect || (store.chats.get(chat.channel, chat.chatId)?.isDirect ?? false);
        const group = shareGroup(store, { chat, folder, isDirect }, now);
        return `${formatChatAddress(chat)} now shares group '${group.folder}' (its agent, folder and memory).`;
      }
      case 'remove-group':
        if (groupNamed(request.folder).isAdmin) throw new StoreError('the admin group cannot be removed');
        if (request.purge) return purge(request.folder);
        store.groups.remove(request.folder);
        deps.onChange(); // the host stops the group's running agent at once
        return `Removed group '${request.folder}'. Its folder was kept on disk.`;
      case 'mount':
      case 'unmount':
        return mountOp(deps, groupNamed(request.folder), request);
      case 'set-quota': {
        if (!store.groups.setDiskQuotaMb(request.folder, request.mb)) groupNamed(request.folder);
        const what =
          request.mb === null
            ? `has the default disk quota again (${deps.defaultDiskQuotaMb} MiB)`
            : `may use ${request.mb} MiB of disk (0: no quota)`;
        const when = 'It applies from the next check, at once for a running agent.';
        return `Group '${request.folder}' ${what}. ${when}`;
      }
      case 'set-budget': {
        groupNamed(request.folder);
        const { daily = own(request.folder).daily, monthly = own(request.folder).monthly } = request;
        store.groups.setBudget(request.folder, { daily, monthly });
        const { groupDailyBudget, groupMonthlyBudget, currency } = deps.budgets;
        const describe = (amount: number | null | undefined, fallback: number, period: string): string => {
          const value = amount ?? fallback;
          const limit = value === 0 ? `no ${period} limit` : `${value.toFixed(2)} ${currency} ${period}`;
          return amount === null ? `${limit} (the default)` : limit;
        };
        const limits = `${describe(daily, groupDailyBudget, 'daily')}, ${describe(monthly, groupMonthlyBudget, 'monthly')}`;
        const text = `Budget of group '${request.folder}': ${limits}. It applies from its next model call.`;
        return { text, detail: { daily, monthly } };
      }
      case 'emergency-stop': {
        const stopped = store.runs.open().map((run) => store.groups.byId(run.groupId)?.folder ?? '?');
        if (!store.emergencyStop.set(actor, now))
          return 'The emergency stop is already on: /resume lifts it.';
        deps.onChange();
        const what =
          stopped.length > 0 ? `stopped the agents of ${stopped.join(', ')}` : 'no agent was running';
        const held = 'Nothing starts until /resume (`warren resume-all`): new messages are kept, tasks wait.';
        return { text: `🛑 Emergency stop: ${what}. ${held}`, detail: { stopped } };
      }
      case 'stop-turn':
      case 'new-session': {
        const group = groupNamed(request.folder);
        const isNew = request.op === 'new-session';
        if (!deps.stopAgent && !isNew) throw new StoreError('only the running host can stop a turn');
        if (isNew) store.groups.clearSession(group.id);
        // A running agent holds its conversation: it stops so the next message starts a fresh one.
        const stopped = deps.stopAgent?.(group.id) ?? false;
        const what = `${stopped ? 'stopped its agent' : 'no agent was running'}${isNew ? '; a new conversation starts' : ''}`;
        return { text: `Group '${group.folder}': ${what}.`, detail: { stopped } };
      }
      case 'resume-all':
        if (!store.emergencyStop.clear()) return 'The emergency stop is not on.';
        deps.onChange();
        return '▶️ Resumed: agents may run again, and the work held meanwhile goes on now.';
      case 'pairing-list':
        return pendingText(store, deps.pairing, deps.now());
      case 'pairing-approve': {
        const { code, folder, share } = request;
        const { group, request: done } = deps.pairing.approve({ code, folder, shareFolder: share, actor });
        const who = `${done.senderName} (${formatChatAddress(done)})`;
        const text = `${who} can talk to the agent of group '${group.folder}' now.`;
        return { group: group.folder, text, detail: asked(done) };
      }
      case 'pairing-deny': {
        const denied = deps.pairing.deny({ code: request.code, actor });
        const text = `Denied ${denied.senderName} (${formatChatAddress(denied)}); they stay ignored.`;
        return { text, detail: asked(denied) };
      }
      case 'task-pause':
      case 'task-resume':
      case 'task-cancel':
      case 'task-run-now':
        return task(request.op.slice('task-'.length) as TaskAction, request.id);
      case 'net-allow':
      case 'net-deny':
      case 'net-remove':
      case 'net-list':
      case 'net-websearch':
      case 'net-ask':
      case 'net-answer':
        // The egress gateway (the credential proxy, for web search) reads them at every request: nothing to wake.
        if (request.op !== 'net-answer') groupNamed(request.folder);
        return netOp(store, request, now, deps.egressQuestions);
      case 'secret-set':
        // Typed into a chat (or a web page), a secret would stay in its history.
        if (!isCli) throw new StoreError('a secret is set only on the host: warren secrets set NAME');
        return secretOp(store, deps.dataDir, request, now);
      case 'secret-bind':
      case 'secret-unbind':
        groupNamed(request.folder);
        return secretOp(store, deps.dataDir, request, now);
      case 'secret-remove':
      case 'secret-list':
        return secretOp(store, deps.dataDir, request, now);
      case 'memory-list':
        return memoryList(memory().pending());
      case 'global-memory-approve':
      case 'global-memory-reject': {
        const decision = request.op === 'global-memory-approve' ? 'approve' : 'reject';
        const result = await memory().decide(request.id, decision, actor);
        if (result.status === 'failed') throw new StoreError(result.message);
        // A stale proposal is an answer for the owner but not applied: audited as a denial.
        const { proposal, message: text, detail } = result;
        return { group: proposal.groupFolder, text, detail, isDenied: result.status === 'stale' };
      }
      default: // all that is left (the type says so): mcp-add, mcp-remove, mcp-list (mcp-ops.ts)
        return mcpOp(store, groupNamed(request.folder), request, now);
    }
  }

  /** Only the CLI and people in the admin group's chat are the owner; anyone else is refused, and audited. */
  function authorize(actor: OwnerActor, action: string): boolean {
    if (actor.kind !== 'chat' || actor.group.isAdmin) return true;
    const detail = { reason: ONLY_ADMIN };
    deps.audit({ groupFolder: actor.group.folder, actor: actor.id, action, decision: 'deny', detail });
    return false;
  }

  return {
    authorize,
    /** Authorizes, runs and audits one operation. Never rejects for a refusal; rejects only on a bug. */
    async perform(request: OwnerOp, actor: OwnerActor): Promise<OpResult> {
      if (!authorize(actor, request.op)) return { ok: false, text: ONLY_ADMIN };
      const who = actor.kind === 'chat' ? actor.id : actor.kind;
      const audit = (decision: 'allow' | 'deny', group: string | null, detail: Record<string, unknown>) =>
        deps.audit({ groupFolder: group, actor: who, action: request.op, decision, detail });
      // A secret's value is never audited: only its name.
      const { op: _op, ...args } =
        request.op === 'secret-set' ? { op: request.op, name: request.name } : request;
      try {
        const ran = await run(request, who, actor.kind === 'cli');
        const done = typeof ran === 'string' ? { text: ran } : ran;
        const group = done.group ?? ('folder' in request ? request.folder : undefined) ?? null;
        // The lists change nothing; every other success is audited with what it did.
        if (!request.op.endsWith('-list'))
          audit(done.isDenied ? 'deny' : 'allow', group, { ...args, ...done.detail });
        return { ok: true, text: done.text };
      } catch (error) {
        const group = actor.kind === 'chat' ? actor.group.folder : null;
        if (!(error instanceof StoreError)) {
          // A bug, not a refusal: still in the audit trail (nothing is known to have changed), then up to the caller.
          audit('deny', group, { ...args, reason: 'the operation failed (see the log)' });
          throw error;
        }
        audit('deny', group, { ...args, reason: error.message });
        return { ok: false, text: error.message };
      }
    },
  };
}

export type OwnerOps = ReturnType<typeof createOwnerOps>;
