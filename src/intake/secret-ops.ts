// The owner's operations on secrets (values in <dataDir>/secrets.json, egress/secrets.ts) and on their bindings (which
// group's requests to which host carry which one, in a header the gateway adds), for the one table in owner-ops.ts.
// A secret's value never leaves this module in a text, an audit detail or a log: only its name does.
import path from 'node:path';
import { decide, parseRuleHost } from '../sandbox/egress/policy.js';
import {
  badSecretValue,
  readSecrets,
  removeSecret,
  SECRET_NAME,
  setSecret,
} from '../sandbox/egress/secrets.js';
import { type SecretBinding, type Store, StoreError } from '../store/store.js';
import { shown } from './net-ops.js';

/** port: 443 when not given; header: Authorization; template: `Bearer {secret}`. */
export type SecretOp =
  | { op: 'secret-set'; name: string; value: string }
  /** force: also removes the bindings that use it (without, they make it refuse). */
  | { op: 'secret-remove'; name: string; force?: boolean }
  | { op: 'secret-list' }
  | {
      op: 'secret-bind';
      folder: string;
      name: string;
      host: string;
      port?: number;
      header?: string;
      template?: string;
    }
  | { op: 'secret-unbind'; folder: string; host: string; port?: number; header?: string };

type Done = { text: string; detail?: object };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/; // RFC 7230 tchar
// These frame the request or steer the connection: the gateway's to set, never a binding's.
const FRAMING =
  /^(host|connection|content-length|transfer-encoding|upgrade|te|trailer|keep-alive|proxy-.*)$/i;
const howToSet = (name: string) => `printf %s "$VALUE" | warren secrets set ${name}`;

const describeBinding = (binding: Omit<SecretBinding, 'secretName' | 'createdAt'>) =>
  `${shown(binding.host, binding.port)}  ${binding.header}: ${binding.template}`;

/** The secrets file, read or written; a file that does not parse is named without quoting it (it holds values). */
function onFile<T>(dataDir: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof SyntaxError || /is not a map of secret names/.test((error as Error).message)) {
      const file = path.join(dataDir, 'secrets.json');
      throw new StoreError(`${file} does not parse: fix it, or move it away and set the secrets again`);
    }
    throw error;
  }
}

function port(request: { port?: number }): number {
  const value = request.port ?? 443;
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw new StoreError(`'${value}' is not a port (1 to 65535)`);
  return value;
}

/** A binding's host: one named host or an address, never *.suffix (a secret goes to one host it was meant for). */
function bindingHost(text: string): string {
  const host = parseRuleHost(text);
  if (host?.startsWith('*.'))
    throw new StoreError(
      `a secret goes to one named host, not '${text}': bind it to each host that needs it`,
    );
  if (host === null)
    throw new StoreError(`'${text}' is not a host: give a name (api.example.com) or an IP address`);
  return host;
}

/** Runs one operation; the caller has checked that a request's group exists and that secret-set comes from the CLI. */
export function secretOp(store: Store, dataDir: string, request: SecretOp, now: number): Done {
  switch (request.op) {
    case 'secret-set': {
      const { name, value } = request;
      if (!SECRET_NAME.test(name))
        throw new StoreError(
          `'${name}' is not a secret name: a letter, then letters, digits or _ (64 at most)`,
        );
      const bad = badSecretValue(value);
      if (bad) throw new StoreError(bad);
      const isReplaced = onFile(dataDir, () => readSecrets(dataDir).has(name));
      onFile(dataDir, () => setSecret(dataDir, name, value));
      const next = isReplaced
        ? 'it replaces the value before, from the next connection that uses it'
        : `bind it to a group's host: warren secrets bind ${name} FOLDER HOST`;
      return { text: `Stored secret '${name}' (${next}).`, detail: { isReplaced } };
    }
    case 'secret-list': {
      const names = onFile(dataDir, () => [...readSecrets(dataDir).keys()]);
      const bindings = store.groups
        .list()
        .flatMap((group) =>
          store.egress.bindings(group.folder).map((binding) => ({ ...binding, folder: group.folder })),
        );
      // A binding whose secret is gone (secrets.json edited by hand) is shown too: the gateway sends nothing for it.
      const all = [...new Set([...names, ...bindings.map((binding) => binding.secretName)])].sort();
      if (all.length === 0) return { text: `No secrets. Set one with: ${howToSet('NAME')}` };
      const lines = all.flatMap((name) => {
        const uses = bindings.filter((binding) => binding.secretName === name);
        const note = !names.includes(name) ? '  (not set!)' : uses.length > 0 ? '' : '  (bound to nothing)';
        return [`  ${name}${note}`, ...uses.map((use) => `    ${use.folder}  ${describeBinding(use)}`)];
      });
      return {
        text: ['Secrets (values are never shown) and the groups and hosts they go to:', ...lines].join('\n'),
      };
    }
    case 'secret-remove': {
      const { name } = request;
      const uses = store.egress.bindingsOf(name);
      // Read first: a file that does not parse refuses before any binding goes.
      const isKnown = onFile(dataDir, () => readSecrets(dataDir).has(name));
      if (!isKnown && uses.length === 0)
        throw new StoreError(`no secret '${name}' (see \`warren secrets list\`)`);
      if (uses.length > 0 && !request.force) {
        const where = uses.map((use) => `${use.groupFolder} (${shown(use.host, use.port)} ${use.header})`);
        throw new StoreError(
          `secret '${name}' is bound for ${where.join(', ')}: unbind it first, or remove with --force ` +
            '(which removes those bindings too)',
        );
      }
      for (const use of uses) store.egress.unbind(use.groupFolder, use.host, use.port, use.header);
      const isRemoved = isKnown && removeSecret(dataDir, name);
      const unbound = `${uses.length} binding${uses.length === 1 ? '' : 's'}`;
      const text = !isRemoved
        ? `There was no secret '${name}'; removed its ${unbound}.`
        : `Removed secret '${name}'${uses.length > 0 ? ` and its ${unbound}` : ''}.`;
      return { text, detail: { isRemoved, unbound: uses.map(({ createdAt: _, ...use }) => use) } };
    }
    case 'secret-bind': {
      const { folder, name } = request;
      const host = bindingHost(request.host);
      const where = shown(host, port(request));
      const header = request.header ?? 'Authorization';
      if (!TOKEN.test(header)) throw new StoreError(`'${header}' is not a header name`);
      if (FRAMING.test(header))
        throw new StoreError(
          `${header} frames the request or steers the connection: a secret cannot go in it`,
        );
      const template = request.template ?? 'Bearer {secret}';
      if (template.split('{secret}').length !== 2)
        throw new StoreError(`the template must hold {secret} exactly once (e.g. 'Bearer {secret}')`);
      if (/[^\x20-\x7e]/.test(template))
        throw new StoreError(
          'the template may hold only printable ASCII: no line break or other control character',
        );
      if (!onFile(dataDir, () => readSecrets(dataDir).has(name)))
        throw new StoreError(`no secret '${name}': set it first (${howToSet(name)})`);
      const binding = { host, port: port(request), header, template, secretName: name };
      // Header names are case-insensitive: the binding replaces one for the same header however it was spelled.
      const replaced = store.egress
        .bindings(folder)
        .find(
          (old) =>
            old.host === host &&
            old.port === binding.port &&
            old.header.toLowerCase() === header.toLowerCase(),
        );
      if (replaced) store.egress.unbind(folder, host, binding.port, header);
      store.egress.bind(folder, binding, now);
      const reach = decide(store.egress.of(folder), host, binding.port).isAllowed
        ? `${where} is on its allowlist`
        : `${where} is not on its allowlist yet: \`warren net allow ${folder} ${where}\` lets the agent reach it`;
      const instead =
        replaced && replaced.secretName !== name ? ` (instead of secret '${replaced.secretName}')` : '';
      return {
        text: `Group '${folder}' sends secret '${name}'${instead} to ${where} as \`${header}: ${template}\`; ${reach}.`,
        detail: { binding, replaced: replaced?.secretName },
      };
    }
    case 'secret-unbind': {
      const { folder } = request;
      const host = parseRuleHost(request.host) ?? request.host;
      const where = shown(host, port(request));
      const match = (binding: SecretBinding) =>
        binding.host === host &&
        binding.port === port(request) &&
        (request.header === undefined || binding.header.toLowerCase() === request.header.toLowerCase());
      const removed = store.egress.bindings(folder).filter(match);
      if (store.egress.unbind(folder, host, port(request), request.header) === 0) {
        const which = request.header === undefined ? '' : ` in ${request.header}`;
        throw new StoreError(
          `group '${folder}' sends no secret to ${where}${which} (see \`warren secrets list\`)`,
        );
      }
      const what = removed.map((binding) => `'${binding.secretName}' (${binding.header})`).join(', ');
      return {
        text: `Group '${folder}' no longer sends ${what} to ${where}.`,
        detail: { removed: removed.map(({ createdAt: _, ...binding }) => binding) },
      };
    }
  }
}
