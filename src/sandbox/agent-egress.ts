// The egress gateway as agent runs use it: each group's rules and secret bindings from the store, the owner's secrets
// from the data directory, the install's CA, every connection audited, a cap that refused told to the chat once a day.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { HostContext } from '../types.js';
import type { RunState } from './agent-proxy.js';
import { type EgressCa, loadOrCreateCa } from './egress/ca.js';
import { createEgressGateway } from './egress/gateway.js';
import { secretsReader } from './egress/secrets.js';

interface AgentEgressDeps extends Pick<HostContext, 'store' | 'audit' | 'now' | 'egressQuestions'> {
  config: Pick<Config, 'egressRequestsPerMinute' | 'egressMbPerDay' | 'egressCaFile' | 'dataDir'>;
  log: Logger;
  runs: ReadonlyMap<string, RunState>;
  /** Labels the CA (its name says which install made it). */
  installId: string;
  /** Names to addresses (the system's resolver unless a test says otherwise). */
  resolve?(host: string): Promise<string[]>;
}

/** The owner's extra CAs for upstream TLS; a file that cannot be read stops the start with words, not a stack. */
function readUpstreamCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read WARREN_EGRESS_CA_FILE ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
}

export function createAgentEgress(deps: AgentEgressDeps) {
  const { config, store } = deps;
  const told = new Set<string>();
  // Made at the first agent run, not at start: a host that runs no agent writes nothing.
  let ca: Promise<EgressCa> | null = null;
  const caOnce = () => {
    ca ??= loadOrCreateCa(path.join(config.dataDir, 'egress-ca'), deps.installId);
    ca.catch(() => {
      ca = null; // tried again at the next run; the run that met it fails with the reason
    });
    return ca;
  };
  const actor = (folder: string) => `agent:${folder}`;
  const gateway = createEgressGateway({
    log: deps.log,
    now: deps.now,
    resolve: deps.resolve,
    limits: { requestsPerMinute: config.egressRequestsPerMinute, megabytesPerDay: config.egressMbPerDay },
    rulesOf: (folder) => store.egress.of(folder),
    // Asked only where the group has it on, and only by a running host (it has the admin chat).
    ask: (folder, host, port) =>
      deps.egressQuestions && store.groups.isEgressAskOn(folder)
        ? deps.egressQuestions.ask(folder, host, port)
        : Promise.resolve('deny'),
    secrets: secretsReader(config.dataDir),
    secretBindingsOf: (folder) => store.egress.bindings(folder),
    intercept: {
      ca: caOnce,
      ...(config.egressCaFile ? { upstreamCa: readUpstreamCa(config.egressCaFile) } : {}),
      audit({ target, isRefused, injected, ...detail }) {
        deps.audit({
          groupFolder: target.groupFolder,
          actor: actor(target.groupFolder),
          action: 'egress',
          decision: isRefused ? 'deny' : 'allow',
          detail: { host: target.host, port: target.port, ...detail, secretsAdded: injected },
        });
      },
    },
    audit({ groupFolder, decision, ...detail }) {
      deps.audit({
        groupFolder,
        actor: actor(groupFolder),
        action: 'egress',
        decision: decision === 'refused' ? 'deny' : 'allow',
        detail: decision === 'failed' ? { ...detail, failed: true } : detail,
      });
    },
    onCapped(folder, reason) {
      const key = `${folder}:${Math.floor(deps.now() / 86_400_000)}:${reason.split(' ', 4).join(' ')}`;
      if (told.has(key)) return;
      told.add(key);
      deps.runs
        .get(folder)
        ?.emit({ type: 'agent-notice', id: `egress-capped:${key}`, text: `⚠️ Network: ${reason}.` });
    },
  });
  return {
    ...gateway,
    /** The CA certificate the group's container trusts (PEM). */
    caCertificate: async () => (await caOnce()).certPem,
  };
}
