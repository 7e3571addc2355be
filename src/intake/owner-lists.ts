// What the owner's list operations print: people and chats waiting to be let in, global memory proposals waiting.
import { formatChatAddress } from '../store/records.js';
import type { MemoryProposal, Store } from '../store/store.js';
import { formatCode, type Pairing } from './pairing.js';

export function pendingText(store: Store, pairing: Pick<Pairing, 'listPending'>, now: number): string {
  const requests = pairing.listPending().map((request) => {
    const minutes = Math.max(1, Math.round((request.expiresAt - now) / 60_000));
    const who = `${request.senderName} (${formatChatAddress(request)})`;
    return `  ${formatCode(request.code)}  ${who}, expires in ${minutes} min`;
  });
  const chats = store.chats
    .list()
    .filter((chat) => chat.groupId === null && !chat.isDirect)
    .slice(0, 10)
    .map((chat) => `  ${formatChatAddress(chat)}${chat.name ? ` (${chat.name})` : ''}`);
  return [
    requests.length > 0 ? 'Pairing requests:' : 'No pairing requests.',
    ...requests,
    ...(chats.length > 0 ? ['Chats that are not registered:', ...chats] : []),
  ].join('\n');
}

export function memoryList(waiting: MemoryProposal[]): string {
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
