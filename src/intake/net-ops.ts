// The owner's operations on a group's egress rules (where its agent may connect through the gateway), its web
// search switch and the gateway's questions about other hosts, for the one table in owner-ops.ts, and the
// HOST[:PORT] parser the admin chat and the CLI share.
import net from 'node:net';
import { parseRuleHost, refuseAddress } from '../sandbox/egress/policy.js';
import type { EgressAnswer, EgressQuestions } from '../sandbox/egress/questions.js';
import { type Store, StoreError } from '../store/store.js';

/** port: 1..65535, 443 when not given. isLan: an allowed name may resolve to a private or loopback address. */
export type NetOp =
  | { op: 'net-allow'; folder: string; host: string; port?: number; isLan?: boolean }
  | { op: 'net-deny' | 'net-remove'; folder: string; host: string; port?: number }
  | { op: 'net-list'; folder: string }
  /** Web search, the model API's server tool (metered, priced like tokens): off unless the owner turns it on. */
  | { op: 'net-websearch'; folder: string; isOn: boolean }
  /** Whether a connection to a host not on the list waits while the owner is asked (the default), or is refused. */
  | { op: 'net-ask'; folder: string; isOn: boolean }
  /** The owner's answer to such a question (admin chat only: the questions live in the running host). */
  | { op: 'net-answer'; id: string; answer: EgressAnswer };

const DEFAULT_PORT = 443;

/** HOST[:PORT] as typed: host:port, host, [ipv6]:port, [ipv6] or a bare IPv6 address. Throws on a bad port. */
export function parseHostPort(text: string): { host: string; port?: number } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text))
    throw new Error(`'${text}' is a URL: give the host alone, e.g. api.example.com or api.example.com:8443`);
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  const parts = text.split(':');
  // More than one colon unbracketed is an IPv6 address without a port (or a malformed host the operation refuses).
  const [host = '', port] = bracketed ? bracketed.slice(1) : parts.length === 2 ? parts : [text];
  if (port === undefined) return { host };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    throw new Error(`'${port}' is not a port (1 to 65535)`);
  return { host, port: Number(port) };
}

/** host:port as the owner types it, an IPv6 address in brackets. */
export const shown = (host: string, port: number) => `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;

type Questions = Pick<EgressQuestions, 'answer' | 'list'>;

/** Answers an open question; 'always' adds the allow rule first, so the connection let through finds it too. */
function answerQuestion(
  store: Store,
  request: NetOp & { op: 'net-answer' },
  now: number,
  questions?: Questions,
) {
  if (!questions) throw new StoreError('only the running host has questions to answer');
  const { id, answer } = request;
  const question = questions.list().find((open) => open.id === id);
  if (!question)
    throw new StoreError(`no open question '${id}' (answered already, or too late: it was refused)`);
  const { groupFolder: group, host, port } = question;
  if (answer === 'always') {
    // A rule left for a removed group would carry over to a new group made under its name.
    if (!store.groups.byFolder(group)) throw new StoreError(`no group '${group}' any more`);
    netOp(store, { op: 'net-allow', folder: group, host, port }, now);
  }
  questions.answer(id, answer);
  const where = shown(host, port);
  const text =
    answer === 'deny'
      ? `🚫 Refused: group '${group}' may not connect to ${where}.`
      : `Group '${group}' may connect to ${where} ${answer === 'once' ? 'this once' : 'now and from now on (added to its list)'}.`;
  return { text, group, detail: { id, answer, group, host, port } };
}

/** Runs one operation on an existing group's rules. The gateway reads them per request: no restart, no wake-up. */
export function netOp(
  store: Store,
  request: NetOp,
  now: number,
  questions?: Questions,
): { text: string; group?: string; detail?: object } {
  if (request.op === 'net-answer') return answerQuestion(store, request, now, questions);
  const { folder } = request;
  const was = store.groups.isWebSearchOn(folder);
  const asks = store.groups.isEgressAskOn(folder);
  if (request.op === 'net-ask') {
    const { isOn } = request;
    store.groups.setEgressAsk(folder, isOn);
    const text = isOn
      ? `Group '${folder}': a host not on its list waits while you are asked in the admin chat ` +
        '(WARREN_EGRESS_ASK_SECONDS; no answer refuses).'
      : `Group '${folder}': a host not on its list is refused at once, silently.`;
    const same = `Asking about hosts not on its list is already ${isOn ? 'on' : 'off'} for group '${folder}'.`;
    return { text: asks === isOn ? same : text, detail: { isOn, was: asks } };
  }
  if (request.op === 'net-websearch') {
    const { isOn } = request;
    store.groups.setWebSearch(folder, isOn);
    // The proxy reads the switch per request; an agent's tools are fixed when its run starts.
    const text = isOn
      ? `Group '${folder}' may search the web from its agent's next run (a running agent keeps the tools it ` +
        "started with). Searches cost money, priced in the group's budget: see `warren usage`."
      : `Group '${folder}' may not search the web: refused from now on; its agent's next run starts without ` +
        'the tool.';
    return {
      text: was === isOn ? `Web search is already ${isOn ? 'on' : 'off'} for group '${folder}'.` : text,
      detail: { isOn, was },
    };
  }
  if (request.op === 'net-list') {
    const rules = store.egress.of(folder);
    const lines = rules.map(
      (rule) => `  ${rule.action.padEnd(5)}  ${shown(rule.host, rule.port)}${rule.isLan ? '  lan' : ''}`,
    );
    const head =
      rules.length > 0
        ? `Network rules of group '${folder}' (deny wins; nothing else is allowed):`
        : `Group '${folder}' may connect nowhere (no rules: the default).`;
    const switches = [`Web search: ${was ? 'on' : 'off'}`, `Ask about other hosts: ${asks ? 'on' : 'off'}`];
    return { text: [head, ...lines, ...switches].join('\n') };
  }
  const host = parseRuleHost(request.host);
  if (host === null)
    throw new StoreError(
      `'${request.host}' is not a host: give a name (api.example.com), *.example.com (any name under it) or an IP address`,
    );
  const port = request.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new StoreError(`'${port}' is not a port (1 to 65535)`);
  const where = shown(host, port);
  const before = store.egress.of(folder).find((rule) => rule.host === host && rule.port === port);
  if (request.op === 'net-remove') {
    if (!store.egress.remove(folder, host, port))
      throw new StoreError(`group '${folder}' has no rule for ${where} (see \`warren net list ${folder}\`)`);
    return { text: `Group '${folder}' has no rule for ${where} any more.`, detail: { removed: before } };
  }
  const isLan = request.op === 'net-allow' && (request.isLan ?? false);
  // An address the gateway refuses anyway would make a rule that silently never works: say so now.
  const refused = request.op === 'net-allow' && net.isIP(host) ? refuseAddress(host, isLan) : null;
  if (refused) {
    const hint =
      !isLan && refuseAddress(host, true) === null ? '; --lan allows it (a service on your network)' : '';
    throw new StoreError(`the gateway would refuse ${where} (${refused})${hint}`);
  }
  const rule = { host, port, action: request.op === 'net-allow' ? 'allow' : 'deny', isLan } as const;
  store.egress.set(folder, rule, now);
  const replaced = before ? ` (it replaces a${before.action === 'allow' ? 'n allow' : ' deny'} rule)` : '';
  const what =
    rule.action === 'deny'
      ? `may not connect to ${where}, whatever else allows it`
      : `may connect to ${where}${isLan ? ', also at an address on your network' : ''}`;
  return {
    text: `Group '${folder}' ${what}${replaced}. It applies from its next connection.`,
    detail: { rule, replaced: before },
  };
}
