// `warren groups export FOLDER` and `warren groups remove FOLDER --purge`: a client's data taken out, or deleted
// after a typed confirmation. Front ends only: the rows come from the store, the purge is the owner's operation.
import { once } from 'node:events';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import type { OwnerOps } from '../intake/owner-ops.js';
import type { Store } from '../store/store.js';
import { performFromCli } from './owner.js';

/** code 0 done, 1 refused or failed; the text for the person (stderr). */
type CliOutcome = { code: number; text: string };

/**
 * Writes everything stored of a group as JSON lines, one record a line with its `type`: the group first (with its
 * chats), then each message, outbox item (replies and notices), task, task-run, usage, memory-proposal and audit
 * row. Waits whenever `out` is full, so a big group streams; `out` is not ended. code 0 with a summary (for stderr:
 * stdout may be the data), 1 when there is no such group or `out` failed.
 */
export async function exportGroupCommand(store: Store, folder: string, out: Writable): Promise<CliOutcome> {
  const records = store.groupData.export(folder);
  if (!records) return { code: 1, text: `no group '${folder}' (see \`warren groups list\`)` };
  let failure: Error | null = null;
  const onError = (error: Error) => {
    failure = error;
  };
  out.on('error', onError);
  const counts = new Map<string, number>();
  try {
    for (const record of records) {
      if (failure) break;
      counts.set(record.type, (counts.get(record.type) ?? 0) + 1);
      if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
    }
  } catch (error) {
    failure = error as Error;
  } finally {
    out.off('error', onError);
  }
  if (failure) return { code: 1, text: `cannot write the export: ${(failure as Error).message}` };
  const what = [...counts].map(([type, count]) => `${count} ${type}`).join(', ');
  return { code: 0, text: `Exported group '${folder}': ${what}.` };
}

/**
 * Asks the person to type the group's folder name before a purge: true only when they did. isConfirmed (--yes)
 * skips the question, for scripts; input that ends unanswered is a no.
 */
export async function confirmPurge(
  folder: string,
  input: Readable,
  output: Writable,
  isConfirmed = false,
): Promise<boolean> {
  if (isConfirmed) return true;
  const lines = createInterface({ input, output });
  const question =
    `This deletes group '${folder}' for good: its messages, replies, tasks, usage, folder and session state ` +
    `(the audit keeps that it happened). Type ${folder} to confirm: `;
  try {
    const answer = await Promise.race([lines.question(question), once(lines, 'close').then(() => '')]);
    return answer.trim() === folder;
  } finally {
    lines.close();
  }
}

/** `warren groups remove FOLDER --purge [--yes]`: confirmed, then the owner's operation. code 0 done, 1 refused. */
export async function purgeGroupCommand(
  ops: OwnerOps,
  folder: string,
  io: { input: Readable; output: Writable; isConfirmed?: boolean },
): Promise<CliOutcome> {
  if (!(await confirmPurge(folder, io.input, io.output, io.isConfirmed))) {
    return { code: 1, text: `Nothing removed: that was not '${folder}'. Type it exactly, or pass --yes.` };
  }
  return performFromCli(ops, { op: 'remove-group', folder, purge: true });
}
