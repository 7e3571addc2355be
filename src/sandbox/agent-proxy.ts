// The credential proxy as agent runs use it: the daily budget, usage tagged with the run, refusals told to the chat.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { AgentEvent, HostContext } from '../types.js';
import { type CredentialProxy, createCredentialProxy } from './credential-proxy.js';
import type { ModelCredential } from './credentials.js';

/** UTC day of a timestamp, as the usage table keys it. */
const usageDay = (at: number) => new Date(at).toISOString().slice(0, 10);

export interface RunState {
  /** Tags the run's model calls in the usage table (a task run's tokens are counted from them). */
  runId: string;
  /** The proxy refused this run a model call for the budget (and told its chat, once). */
  budgetRefused: boolean;
  emit(event: AgentEvent): void;
}

interface AgentProxyDeps extends Pick<HostContext, 'store' | 'audit' | 'now'> {
  config: Pick<Config, 'dailyTokenBudget' | 'modelBaseUrl'>;
  credential: ModelCredential;
  log: Logger;
  /** The running agents by group folder: whose model calls these are, and where a budget notice goes. */
  runs: ReadonlyMap<string, RunState>;
}

export function createAgentProxy(deps: AgentProxyDeps): CredentialProxy {
  const { config, runs } = deps;
  return createCredentialProxy({
    upstreamBaseUrl: config.modelBaseUrl,
    credential: deps.credential,
    log: deps.log,
    now: deps.now,
    checkBudget(groupFolder) {
      const budget = config.dailyTokenBudget;
      if (budget === 0) return { decision: 'allow' };
      const totals = deps.store.usage.totalForDay(groupFolder, usageDay(deps.now()));
      const used = totals.inputTokens + totals.outputTokens;
      if (used < budget) return { decision: 'allow' };
      return {
        decision: 'deny',
        reason: `this group has used its daily budget of ${budget} tokens (${used} used today); it renews at midnight UTC.`,
      };
    },
    recordUsage(usage) {
      const runId = runs.get(usage.groupFolder)?.runId ?? null;
      deps.store.usage.record({ ...usage, day: usageDay(usage.at), runId });
    },
    onRefused(refusal) {
      deps.audit({
        groupFolder: refusal.groupFolder,
        actor: `agent:${refusal.groupFolder}`,
        action: 'model-api',
        decision: 'deny',
        detail: { reason: refusal.reason, path: refusal.path },
      });
      const run = runs.get(refusal.groupFolder);
      if (!run || run.budgetRefused || !refusal.reason.startsWith('budget:')) return;
      run.budgetRefused = true;
      run.emit({
        type: 'agent-notice',
        id: 'budget-refused',
        text: `⚠️ I cannot answer right now: ${refusal.reason.replace(/^budget:\s*(Warren:\s*)?/, '')}`,
      });
    },
  });
}
