// The egress gateway as agent runs use it: each group's rules from the store, every connection audited, a cap that
// refused told to the chat once a day.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { HostContext } from '../types.js';
import type { RunState } from './agent-proxy.js';
import { createEgressGateway, type EgressGateway } from './egress/gateway.js';

interface AgentEgressDeps extends Pick<HostContext, 'store' | 'audit' | 'now'> {
  config: Pick<Config, 'egressRequestsPerMinute' | 'egressMbPerDay'>;
  log: Logger;
  runs: ReadonlyMap<string, RunState>;
  /** Names to addresses (the system's resolver unless a test says otherwise). */
  resolve?(host: string): Promise<string[]>;
}

export function createAgentEgress(deps: AgentEgressDeps): EgressGateway {
  const told = new Set<string>();
  return createEgressGateway({
    log: deps.log,
    now: deps.now,
    resolve: deps.resolve,
    limits: {
      requestsPerMinute: deps.config.egressRequestsPerMinute,
      megabytesPerDay: deps.config.egressMbPerDay,
    },
    rulesOf: (folder) => deps.store.egress.of(folder),
    audit({ groupFolder, decision, ...detail }) {
      deps.audit({
        groupFolder,
        actor: `agent:${groupFolder}`,
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
}
