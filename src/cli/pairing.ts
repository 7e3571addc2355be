// `warren pairing list|approve|deny`: the owner's answer to pairing requests, from the terminal.
import { parseArgs } from 'node:util';
import type { OwnerOps } from '../intake/owner-ops.js';
import { performFromCli } from './owner.js';

const USAGE = 'usage: warren pairing [list] | approve CODE [--folder NAME | --share FOLDER] | deny CODE';

/** Runs one pairing command; code 0 (text for stdout), 1 refused, 2 usage (text for stderr). */
export async function runPairingCommand(
  args: string[],
  ops: OwnerOps,
): Promise<{ code: number; text: string }> {
  const [action, ...rest] = args;
  if (action === undefined || action === 'list') return performFromCli(ops, { op: 'pairing-list' });
  if (action === 'approve') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { folder: { type: 'string' }, share: { type: 'string' } },
    });
    if (positionals.length !== 1 || (values.folder && values.share)) return { code: 2, text: USAGE };
    return performFromCli(ops, {
      op: 'pairing-approve',
      code: positionals[0] as string,
      folder: values.folder,
      share: values.share,
    });
  }
  if (action === 'deny') {
    if (rest.length !== 1) return { code: 2, text: USAGE };
    return performFromCli(ops, { op: 'pairing-deny', code: rest[0] as string });
  }
  return { code: 2, text: `unknown pairing command '${action}'; ${USAGE}` };
}
