// The owner's operations in one table: registering, pairing, mounts, quotas, tasks and global memory. Each one is
// authorized and audited here, once; the front ends (the admin chat's commands, the CLI) only parse and print.
import path from 'node:path';
import { buildMounts, loadMountAllowlist } from '../sandbox/mounts.js';
import { type ChatAddress, formatChatAddress, type Group } from '../store/records.js';
import { type AuditEntry, type Store, StoreError, type Task } from '../store/store.js';
import { createTaskOps, describeNextRun } from '../tasks/tasks.js';
import type { MemoryProposals } from './memory-proposals.js';
import { formatPending, type Pairing } from './pairing.js';
import { registerGroup, shareGroup } from './registration.js';

/** Who asks: the CLI (whoever can open the database is the owner) or a person in a chat of some group. */
export type OwnerActor = { kind: 'cli' } | { kind: 'chat'; id: string; group: Group };

export type OpResult = { ok: true; text: string; group?: string } | { ok: false; text: string };

export interface OwnerOpsDeps {
  store: Store;
  dataDir: string;
  now(): number;
  audit(entry: AuditEntry): void;
  pairing: Pairing;
  /** The owner's timezone (new task runs, texts). */
  timezone: string;
  defaultDiskQuotaMb: number;
  mountAllowlistPath: string;
  /** Host paths no mount may expose (the package itself). */
  protectedPaths: string[];
  /** Global memory proposals; without them the memory operations say so. */
  memory?: Pick<MemoryProposals, 'pending' | 'decide'>;
  /** Something the running host acts on changed (tasks, outbox): wake it. Must not throw. */
  onChange(): void;
}

type TaskAction = 'pause' | 'resume' | 'cancel' | 'run-now';

/** Every operation and its arguments; front ends build these from what a person typed. */
export type OwnerOp =
  | {
      op: 'register-chat';
      chat: ChatAddress;
      folder: string;
      name?: string | undefined;
      trigger: Group['trigger'];
      triggerWord?: string | null | undefined;
      isDirect?: boolean | undefined;
    }
  | { op: 'share-chat'; chat: ChatAddress; folder: string; isDirect?: boolean | undefined }
  | { op: 'remove-group'; folder: string }
  | { op: 'mount'; folder: string; hostPath: string; as?: string | undefined; isReadOnly: boolean }
  | { op: 'unmount'; folder: string; name: string }
  | { op: 'set-quota'; folder: string; mb: number | null }
  | { op: 'pairing-list' }
  | { op: 'pairing-approve'; code: string; folder?: string | undefined; share?: string | undefined }
  | { op: 'pairing-deny'; code: string }
  | { op: `task-${TaskAction}`; id: string }
  | { op: 'memory-list' }
  | { op: 'global-memory-approve' | 'global-memory-reject'; id: number };

/**
 * Results not audited here: the read-only operations (nothing changes), and those whose module audits what they
 * did with what only it knows (pairing.ts: the sender; memory-proposals.ts: the bytes written, a stale base).
 * Every refusal is audited here, whichever the operation.
 */
const AUDITED_ELSEWHERE = new Set<OwnerOp['op']>([
  'pairing-list',
  'memory-list',
  'pairing-approve',
  'pairing-deny',
  'global-memory-approve',
  'global-memory-reject',
]);

/** A refusal with words for the owner (an unknown group, a bad code): audited as a denial, never a crash. */
class Refusal extends Error {}

export function createOwnerOps(deps: OwnerOpsDeps) {
  const { store } = deps;
  const tasks = createTaskOps({ store, now: deps.now, defaultTimezone: deps.timezone });

  const groupNamed = (folder: string): Group => {
    const group = store.groups.byFolder(folder);
    if (!group) throw new Refusal(`no group '${folder}' (see \`warren groups list\`)`);
    return group;
  };

  function mount(request: Extract<OwnerOp, { op: 'mount' | 'unmount' }>): OpResult {
    const group = groupNamed(request.folder);
    const current = store.groups.extraMounts(group.id);
    if (request.op === 'unmount') {
      const kept = current.filter(
        (entry) => entry.containerName !== request.name && entry.hostPath !== request.name,
      );
      if (kept.length === current.length) {
        throw new Refusal(`group '${group.folder}' has no extra mount '${request.name}'`);
      }
      store.groups.setExtraMounts(group.id, kept);
      return {
        ok: true,
        group: group.folder,
        text: `Group '${group.folder}' no longer asks for ${request.name} (from its next run).`,
      };
    }
    const wanted = {
      hostPath: path.resolve(request.hostPath),
      containerName: request.as,
      isReadOnly: request.isReadOnly,
    };
    // Checked now for a clear answer; the allowlist decides again at every container start (it may change).
    const allowlist = loadMountAllowlist(deps.mountAllowlistPath);
    if (!allowlist.ok) throw new Refusal(allowlist.reason);
    const check = buildMounts({
      dataDir: deps.dataDir,
      groupFolder: group.folder,
      isAdmin: group.isAdmin,
      extraMounts: [wanted],
      allowlist: allowlist.allowlist,
      protectedPaths: deps.protectedPaths,
    });
    if (check.denials.length > 0) {
      const reasons = check.denials.map((denial) => denial.reason).join('; ');
      throw new Refusal(`the mount allowlist (${deps.mountAllowlistPath}) does not allow it: ${reasons}`);
    }
    store.groups.setExtraMounts(group.id, [
      ...current.filter((entry) => entry.hostPath !== wanted.hostPath),
      wanted,
    ]);
    return {
      ok: true,
      group: group.folder,
      text: `Group '${group.folder}' will see ${wanted.hostPath} ${wanted.isReadOnly ? 'read-only' : 'read-write'} under /workspace/extra/ (from its next run).`,
    };
  }

  function task(action: TaskAction, id: string): OpResult {
    const found = store.tasks.byId(id);
    if (!found) throw new Refusal(`no task '${id}' (see \`warren tasks list --all\`)`);
    const result =
      action === 'pause'
        ? tasks.pause(found, 'paused by the owner')
        : action === 'resume'
          ? tasks.resume(found)
          : action === 'cancel'
            ? tasks.cancel(found)
            : tasks.runNow(found);
    if (!result.ok) throw new Refusal(result.error);
    deps.onChange();
    const after = store.tasks.byId(id) as Task;
    const text = {
      pause: `Paused task ${id}.`,
      resume: `Resumed task ${id}; next run ${describeNextRun(after, store, deps.now())}.`,
      cancel: `Cancelled task ${id}.`,
      'run-now': `Queued a run of task ${id} now; \`warren tasks show ${id}\` shows how it went.`,
    }[action];
    return { ok: true, group: found.groupFolder, text };
  }

  function pendingText(): string {
    const requests = formatPending(deps.pairing.listPending(), deps.now());
    const chats = store.chats
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

  function memoryList(): string {
    const waiting = deps.memory?.pending() ?? [];
    if (waiting.length === 0) return 'No global memory proposals are waiting.';
    return [
      'Global memory proposals waiting for you (each came with its diff):',
      ...waiting.map(
        (proposal) =>
          `  #${proposal.id} from group '${proposal.groupFolder}', ${new Date(proposal.createdAt).toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
          `${Buffer.byteLength(proposal.content, 'utf8')} bytes: /memory approve ${proposal.id} or /memory reject ${proposal.id}`,
      ),
    ].join('\n');
  }

  async function run(request: OwnerOp, actor: string): Promise<OpResult> {
    const now = deps.now();
    switch (request.op) {
      case 'register-chat': {
        const known = store.chats.get(request.chat.channel, request.chat.chatId);
        const group = registerGroup(
          store,
          deps.dataDir,
          {
            folder: request.folder,
            name: request.name ?? known?.name ?? request.folder,
            chat: request.chat,
            isDirect: request.isDirect ?? known?.isDirect ?? false,
            trigger: request.trigger,
            triggerWord: request.triggerWord ?? null,
          },
          now,
        );
        const answers = group.trigger === 'always' ? 'every message' : 'when named';
        return {
          ok: true,
          group: group.folder,
          text: `Registered ${formatChatAddress(request.chat)} as group '${group.folder}' (answers ${answers}).`,
        };
      }
      case 'share-chat': {
        const known = store.chats.get(request.chat.channel, request.chat.chatId);
        const isDirect = request.isDirect || (known?.isDirect ?? false);
        const group = shareGroup(store, { chat: request.chat, folder: request.folder, isDirect }, now);
        return {
          ok: true,
          group: group.folder,
          text: `${formatChatAddress(request.chat)} now shares group '${group.folder}' (its agent, folder and memory).`,
        };
      }
      case 'remove-group': {
        if (groupNamed(request.folder).isAdmin) throw new Refusal('the admin group cannot be removed');
        store.groups.remove(request.folder);
        return {
          ok: true,
          group: request.folder,
          text: `Removed group '${request.folder}'. Its folder was kept on disk.`,
        };
      }
      case 'mount':
      case 'unmount':
        return mount(request);
      case 'set-quota': {
        if (!store.groups.setDiskQuotaMb(request.folder, request.mb)) groupNamed(request.folder);
        const what =
          request.mb === null
            ? `has the default disk quota again (${deps.defaultDiskQuotaMb} MiB)`
            : `may use ${request.mb} MiB of disk (0: no quota)`;
        return {
          ok: true,
          group: request.folder,
          text: `Group '${request.folder}' ${what}. It applies from the next check, at once for a running agent.`,
        };
      }
      case 'pairing-list':
        return { ok: true, text: pendingText() };
      case 'pairing-approve': {
        const outcome = deps.pairing.approve({
          code: request.code,
          folder: request.folder,
          shareFolder: request.share,
          actor,
        });
        if (outcome.status !== 'approved')
          throw new Refusal(outcome.status === 'failed' ? outcome.reason : 'not approved');
        const who = `${outcome.request.senderName} (${outcome.request.channel}:${outcome.request.chatId})`;
        return {
          ok: true,
          group: outcome.group.folder,
          text: `${who} can talk to the agent of group '${outcome.group.folder}' now.`,
        };
      }
      case 'pairing-deny': {
        const outcome = deps.pairing.deny({ code: request.code, actor });
        if (outcome.status !== 'denied')
          throw new Refusal(outcome.status === 'failed' ? outcome.reason : 'not denied');
        return {
          ok: true,
          text: `Denied ${outcome.request.senderName} (${outcome.request.channel}:${outcome.request.chatId}); they stay ignored.`,
        };
      }
      case 'task-pause':
      case 'task-resume':
      case 'task-cancel':
      case 'task-run-now':
        return task(request.op.slice('task-'.length) as TaskAction, request.id);
      case 'memory-list':
        if (!deps.memory) throw new Refusal('global memory proposals are not available here');
        return { ok: true, text: memoryList() };
      case 'global-memory-approve':
      case 'global-memory-reject': {
        if (!deps.memory) throw new Refusal('global memory proposals are not available here');
        const decision = request.op === 'global-memory-approve' ? 'approve' : 'reject';
        const result = await deps.memory.decide(request.id, decision, actor);
        if (result.status === 'failed') throw new Refusal(result.message);
        return {
          ok: true,
          ...(result.proposal ? { group: result.proposal.groupFolder } : {}),
          text: result.message,
        };
      }
    }
  }

  /** Only the CLI and people in the admin group's chat are the owner; anyone else is refused, and audited. */
  function authorize(actor: OwnerActor, action: string): boolean {
    if (actor.kind === 'cli' || actor.group.isAdmin) return true;
    deps.audit({
      groupFolder: actor.group.folder,
      actor: actor.id,
      action,
      decision: 'deny',
      detail: { reason: 'owner commands work only in the admin chat' },
    });
    return false;
  }

  return {
    authorize,
    /** Authorizes, runs and audits one operation. Never rejects for a refusal; rejects only on a bug. */
    async perform(request: OwnerOp, actor: OwnerActor): Promise<OpResult> {
      if (!authorize(actor, request.op))
        return { ok: false, text: 'owner commands work only in the admin chat' };
      const who = actor.kind === 'cli' ? 'cli' : actor.id;
      const audit = (decision: 'allow' | 'deny', group: string | null, detail: Record<string, unknown>) =>
        deps.audit({ groupFolder: group, actor: who, action: request.op, decision, detail });
      const { op: _op, ...args } = request;
      try {
        const result = await run(request, who);
        if (!AUDITED_ELSEWHERE.has(request.op)) {
          audit(result.ok ? 'allow' : 'deny', result.ok ? (result.group ?? null) : null, {
            ...args,
            ...(result.ok ? {} : { reason: result.text }),
          });
        }
        return result;
      } catch (error) {
        if (!(error instanceof Refusal || error instanceof StoreError)) throw error;
        audit('deny', actor.kind === 'chat' ? actor.group.folder : null, { ...args, reason: error.message });
        return { ok: false, text: error.message };
      }
    },
  };
}

export type OwnerOps = ReturnType<typeof createOwnerOps>;
