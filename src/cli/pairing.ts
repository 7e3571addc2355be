// `warren pairing list|approve|deny`: the owner's answer to pairing requests, from the terminal.
import { parseArgs } from 'node:util';
import { createPairing, formatPending } from '../intake/pairing.js';
import { silentLogger } from '../log.js';
import type { Store } from '../store/store.js';
import { signalHost } from './host-signal.js';

export interface PairingCommandDeps {
  store: Store;
  dataDir: string;
  assistantName: string;
  now(): number;
}

const USAGE = 'usage: warren pairing [list] | approve CODE [--folder NAME | --share FOLDER] | deny CODE';

/** Runs one pairing command; the text is for stdout (code 0) or stderr. */
export function runPairingCommand(args: string[], deps: PairingCommandDeps): { code: number; text: string } {
  const pairing = createPairing({
    ...deps,
    log: silentLogger(),
    audit: (entry) => deps.store.audit.record(entry, deps.now()),
    // Queued here, sent by the running host, which the signal wakes at once.
    enqueue: (chat, key, text) => {
      deps.store.outbox.enqueue(
        { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind: 'notice' },
        deps.now(),
      );
      signalHost(deps.dataDir, deps.now());
    },
    notifier: { notify: () => false },
  });
  const [action, ...rest] = args;
  const actor = 'cli';
  if (action === undefined || action === 'list') {
    const lines = formatPending(pairing.listPending(), deps.now());
    return {
      code: 0,
      text:
        lines.length > 0
          ? ['Waiting for approval:', ...lines.map((line) => `  ${line}`)].join('\n')
          : 'No pairing requests.',
    };
  }
  if (action === 'approve') {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { folder: { type: 'string' }, share: { type: 'string' } },
    });
    if (positionals.length !== 1 || (values.folder && values.share)) return { code: 2, text: USAGE };
    const outcome = pairing.approve({
      code: positionals[0] as string,
      folder: values.folder,
      shareFolder: values.share,
      actor,
    });
    if (outcome.status !== 'approved')
      return { code: 1, text: outcome.status === 'failed' ? outcome.reason : 'not approved' };
    return {
      code: 0,
      text: `Approved ${outcome.request.senderName} (${outcome.request.channel}:${outcome.request.chatId}): group '${outcome.group.folder}'.`,
    };
  }
  if (action === 'deny') {
    if (rest.length !== 1) return { code: 2, text: USAGE };
    const outcome = pairing.deny({ code: rest[0] as string, actor });
    if (outcome.status !== 'denied')
      return { code: 1, text: outcome.status === 'failed' ? outcome.reason : 'not denied' };
    return {
      code: 0,
      text: `Denied ${outcome.request.senderName} (${outcome.request.channel}:${outcome.request.chatId}).`,
    };
  }
  return { code: 2, text: `unknown pairing command '${action}'; ${USAGE}` };
}
