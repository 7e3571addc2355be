// Changes to global memory (global/CLAUDE.md) an agent proposes: held until the owner approves one in the admin
// chat, then written safely.
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTwoFilesPatch } from 'diff';
import type { Logger } from '../log.js';
import { MAX_GLOBAL_MEMORY_BYTES, MAX_IPC_FILE_BYTES } from '../protocol/ipc.js';
import { type ReadResult, readIpcFileText } from '../protocol/read.js';
import { createFileIn, renameIn, unlinkIn, withDirectory } from '../sandbox/safe-fs.js';
import type { Group } from '../store/records.js';
import type { AuditEntry, MemoryProposal, Store } from '../store/store.js';
import type { ToolAnswer } from '../types.js';

/** Proposals one group may have waiting: more are refused, so an agent cannot flood the owner. */
export const MAX_PENDING_PROPOSALS_PER_GROUP = 5;
/** The diff in the owner's notice is cut past these, with a note: a chat is no place for a long review. */
const MAX_DIFF_LINES = 80;
const MAX_DIFF_CHARS = 3_500;
/** The diff runs on the host's event loop; text built to make it slow gets the plain start of the text instead. */
const DIFF_TIMEOUT_MS = 500;
/** Characters that do not show, or reorder what is shown, so a diff can look harmless while it is not. */
const HIDDEN_CHARACTERS = /\p{Cf}|(?![\t\n\r])\p{Cc}/u;

type Decision = 'approve' | 'reject';

/** What deciding did: a sentence for the owner, and what the owner's operation (owner-ops.ts) audits. */
type Decided =
  | { status: 'approved' | 'rejected' | 'stale'; proposal: MemoryProposal; message: string; detail?: object }
  | { status: 'failed'; message: string };
const failed = (message: string): Decided => ({ status: 'failed', message });
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const byteLength = (text: string) => Buffer.byteLength(text, 'utf8');

export function createMemoryProposals(deps: {
  store: Store;
  dataDir: string;
  audit(entry: AuditEntry): void;
  now(): number;
  log: Logger;
  /** Tells the owner in the admin chat (once per key, rate-limited). Returns false when the notice was not queued. */
  notifyAdmin(key: string, text: string): boolean;
}) {
  const { store } = deps;
  const log = deps.log.child({ module: 'memory-proposals' });
  const globalDir = path.join(deps.dataDir, 'global');
  let decisions: Promise<unknown> = Promise.resolve();

  const auditAgent = (group: Group, decision: 'allow' | 'deny', detail: Record<string, unknown>) => {
    const actor = `agent:${group.folder}`;
    deps.audit({ groupFolder: group.folder, actor, action: 'global-memory', decision, detail });
  };
  function deny(group: Group, error: string): ToolAnswer {
    log.warn({ group: group.folder, reason: error }, 'global memory proposal refused');
    auditAgent(group, 'deny', { reason: error });
    return { ok: false, error };
  }

  // The file's text, never through a link (Warren replaces one at start). The owner may have made it longer by
  // hand than an agent may propose; past the IPC file cap it is refused.
  async function readCurrent(): Promise<ReadResult> {
    const read = await readIpcFileText(path.join(globalDir, 'CLAUDE.md'), MAX_IPC_FILE_BYTES);
    if (read.ok) return read;
    if (read.error.includes('ENOENT')) return { ok: true, text: '' };
    return { ok: false, error: `global/CLAUDE.md cannot be read: ${read.error}` };
  }

  async function propose(door: Group, content: string): Promise<ToolAnswer> {
    // Read fresh: a group demoted while its agent runs loses the privilege at once.
    const group = store.groups.byFolder(door.folder);
    if (!group?.isAdmin) return deny(door, 'only the admin group may propose changes to global memory');
    // The schema caps it already; checked again because this is the last step before the owner's chat.
    if (byteLength(content) > MAX_GLOBAL_MEMORY_BYTES) {
      return deny(group, `global memory may be at most ${MAX_GLOBAL_MEMORY_BYTES / 1024} KiB`);
    }
    const current = await readCurrent();
    if (!current.ok) {
      log.error({ reason: current.error }, 'cannot read global memory');
      return { ok: false, error: 'the host cannot read global memory now; tell the owner' };
    }
    if (content === current.text) {
      const result = 'Global memory already has exactly this text; there is nothing to approve.';
      return { ok: true, result };
    }
    const created = store.memory.create(
      { groupFolder: group.folder, content, baseSha256: sha256(current.text) },
      { now: deps.now(), maxPending: MAX_PENDING_PROPOSALS_PER_GROUP },
    );
    if (created.status === 'full') {
      const waiting = `${MAX_PENDING_PROPOSALS_PER_GROUP} proposals are already waiting for the owner`;
      return deny(group, `${waiting}; wait until they approve or reject them`);
    }
    const { proposal } = created;
    const bytes = byteLength(content);
    auditAgent(group, 'allow', { proposalId: proposal.id, bytes, baseSha256: proposal.baseSha256 });
    const notice = noticeText(group, proposal, current.text);
    const isTold = deps.notifyAdmin(`memory-proposal:${proposal.id}`, notice);
    if (!isTold) log.warn({ proposalId: proposal.id }, 'the owner could not be told about a memory proposal');
    return {
      ok: true,
      result:
        `Proposal #${proposal.id} is waiting for the owner's approval in the admin chat. Global memory stays as ` +
        'it is until they approve it; agents see the new text from their next start.' +
        (isTold ? '' : ' The owner was not notified just now (too many notices); /memory lists it for them.'),
    };
  }

  async function decideNow(id: number, decision: Decision, actor: string): Promise<Decided> {
    const proposal = store.memory.byId(id);
    if (!proposal) return failed(`there is no proposal #${id}`);
    if (proposal.status !== 'pending') return failed(`proposal #${id} is already ${proposal.status}`);
    if (decision === 'reject') {
      store.memory.decide(id, 'rejected', actor, deps.now());
      const message = `🚫 Proposal #${id} rejected; global memory is unchanged.`;
      return { status: 'rejected', proposal, message };
    }
    const current = await readCurrent();
    if (!current.ok) return failed(`${current.error}; nothing was written`);
    // The owner approved the diff against the text it was made from; on any other text it would do something else.
    if (sha256(current.text) !== proposal.baseSha256) {
      store.memory.decide(id, 'stale', actor, deps.now());
      const message =
        `⚠️ Global memory changed after proposal #${id} was made, so it was not applied (now stale). ` +
        'Ask the agent for a fresh proposal made from the current text.';
      const detail = { reason: 'global memory changed after the proposal was made' };
      return { status: 'stale', proposal, message, detail };
    }
    try {
      writeGlobalMemory(globalDir, proposal.content);
    } catch (error) {
      log.error({ err: error, proposalId: id }, 'cannot write global memory');
      return failed('global memory could not be written (see the log); it is unchanged');
    }
    const staleCount = store.transaction(() => {
      store.memory.decide(id, 'approved', actor, deps.now());
      return store.memory.markStale(sha256(proposal.content), actor, deps.now());
    });
    log.info({ proposalId: id, group: proposal.groupFolder }, 'global memory updated');
    const message =
      `✅ Global memory updated from proposal #${id} (group '${proposal.groupFolder}'); agents read it from their ` +
      'next start.' +
      (staleCount > 0
        ? ` ${staleCount} other waiting proposal(s) were made against the old text and are now stale.`
        : '');
    const detail = { bytes: byteLength(proposal.content), staleCount };
    return { status: 'approved', proposal, message, detail };
  }

  return {
    /** Stores a proposal from the group whose IPC folder the request came from and tells the owner. Never rejects. */
    async propose(group: Group, content: string): Promise<ToolAnswer> {
      try {
        return await propose(group, content);
      } catch (error) {
        log.error({ err: error, group: group.folder }, 'global memory proposal failed');
        return { ok: false, error: 'the host could not handle the request' };
      }
    },
    /** The owner's decision, one at a time, so two approvals cannot both pass the base check. Never rejects. */
    decide(id: number, decision: Decision, actor: string): Promise<Decided> {
      const next = decisions.then(() =>
        decideNow(id, decision, actor).catch((error: unknown) => {
          log.error({ err: error, proposalId: id }, 'memory decision failed');
          return failed('the decision failed; see the log');
        }),
      );
      decisions = next;
      return next;
    },
    /** Proposals waiting for the owner, oldest first. */
    pending: () => store.memory.pending(),
  };
}

export type MemoryProposals = ReturnType<typeof createMemoryProposals>;

// Replaces global/CLAUDE.md whole: a new temp file made through the folder's descriptor (never opening a name that
// exists), written and synced, then renamed over it, so readers see the old text or the new, never half.
function writeGlobalMemory(globalDir: string, content: string): void {
  withDirectory(globalDir, (dirFd) => {
    const temp = `.CLAUDE.md.${randomUUID()}.tmp`;
    const fd = createFileIn(dirFd, temp, 0o644);
    try {
      // Readable by the container's user whatever the host's umask: every group's agent reads this file.
      fchmodSync(fd, 0o644);
      writeFileSync(fd, content, 'utf8');
      fsyncSync(fd);
      renameIn(dirFd, temp, 'CLAUDE.md');
    } catch (error) {
      try {
        unlinkIn(dirFd, temp);
      } catch {
        // Already gone: the write's own error is the one to report.
      }
      throw error;
    } finally {
      closeSync(fd);
    }
  });
}

/** The owner's notice: who proposed, the diff (cut when long), warnings, and the two commands. */
function noticeText(group: Group, proposal: MemoryProposal, current: string): string {
  const lines = diffOf(current, proposal.content).split('\n');
  let chars = 0;
  // The first lines while the budget lasts: chars only grows, so once one line is left out, all after it are.
  const shown = lines.slice(0, MAX_DIFF_LINES).filter((line) => {
    chars += line.length + 1;
    return chars <= MAX_DIFF_CHARS;
  });
  const hiddenLines = lines.length - shown.length;
  return [
    `📝 The agent of group '${group.folder}' proposes a change to global memory (global/CLAUDE.md), which every ` +
      `group's agent reads. Proposal #${proposal.id}, ${byteLength(proposal.content)} bytes:`,
    '```diff',
    // A line of the text must not close the code block and pass for the host's own words below it.
    shown.join('\n').replaceAll('```', '`\u200b``'),
    '```',
    ...(hiddenLines > 0
      ? [`(${hiddenLines} more lines not shown. Reject it unless you have checked the whole text.)`]
      : []),
    ...(HIDDEN_CHARACTERS.test(proposal.content)
      ? ['⚠️ The text has invisible or direction-changing characters, which can hide what it says.']
      : []),
    `Approve: /memory approve ${proposal.id}`,
    `Reject: /memory reject ${proposal.id}`,
  ].join('\n');
}

/** A unified diff of the current text → the proposed one; the proposed text itself when the diff takes too long. */
function diffOf(current: string, proposed: string): string {
  const [oldName, newName] = ['global/CLAUDE.md (now)', 'global/CLAUDE.md (proposed)'];
  const options = { context: 3, timeout: DIFF_TIMEOUT_MS };
  const patch = createTwoFilesPatch(oldName, newName, current, proposed, undefined, undefined, options);
  if (patch === undefined)
    return `(the difference took too long to compute; the proposed text:)\n${proposed}`;
  // jsdiff starts with a line of '=' meant for several files in one patch.
  return patch.replace(/^=+\n/, '').trimEnd();
}
