// The credential proxy as agent runs use it: money budgets per group and over all groups, each call priced and
// tagged with its run, a refusal told to the chat once per budget period.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createPriceList } from '../prices.js';
import type { AgentEvent, HostContext } from '../types.js';
import { type CredentialProxy, createCredentialProxy } from './credential-proxy.js';
import type { ModelCredential } from './credentials.js';

/** The owner's day of an instant as YYYY-MM-DD: budgets and usage turn at midnight in WARREN_TIMEZONE. */
export function dayIn(timezone: string): (at: number) => string {
  const options = { timeZone: timezone, year: 'numeric', month: '2-digit', day: '2-digit' } as const;
  const format = new Intl.DateTimeFormat('en-US', options);
  return (at) => {
    const part = Object.fromEntries(format.formatToParts(at).map(({ type, value }) => [type, value]));
    return `${part.year}-${part.month}-${part.day}`;
  };
}

export interface RunState {
  /** Tags the run's model calls in the usage table (a task run's tokens are counted from them). */
  runId: string;
  /** The proxy refused this run a model call for the budget: its failure is not retried, and not told twice. */
  budgetRefused: boolean;
  emit(event: AgentEvent): void;
}

type BudgetConfig = 'groupDailyBudget' | 'groupMonthlyBudget' | 'dailyBudget' | 'monthlyBudget';
interface AgentProxyDeps extends Pick<HostContext, 'store' | 'audit' | 'now'> {
  config: Pick<Config, BudgetConfig | 'modelBaseUrl' | 'modelPrices' | 'currency' | 'timezone'>;
  credential: ModelCredential;
  log: Logger;
  /** The running agents by group folder: whose model calls these are, and where a budget notice goes. */
  runs: ReadonlyMap<string, RunState>;
}

export function createAgentProxy(deps: AgentProxyDeps): CredentialProxy {
  const { config, runs, store } = deps;
  const prices = createPriceList(config.modelPrices);
  const dayOf = dayIn(config.timezone);
  /** What calls in flight may still cost, by group: counted as spent until their usage is recorded. */
  const held = new Map<symbol, { groupFolder: string; amount: number }>();
  /** The budget period each group was last told about, so a chat hears of a spent budget once per period. */
  const told = new Map<string, string>();
  const unpriced = new Set<string>();
  const money = (amount: number) => `${amount.toFixed(2)} ${config.currency}`;

  /** The first budget a call would break, with the words for it; null while every budget has room. */
  function spentBudget(groupFolder: string): { reason: string; period: string } | null {
    const day = dayOf(deps.now());
    const own = store.groups.budget(groupFolder);
    const limits = [
      { group: groupFolder, isDaily: true, limit: own?.daily ?? config.groupDailyBudget },
      { group: groupFolder, isDaily: false, limit: own?.monthly ?? config.groupMonthlyBudget },
      { group: null, isDaily: true, limit: config.dailyBudget },
      { group: null, isDaily: false, limit: config.monthlyBudget },
    ];
    for (const { group, isDaily, limit } of limits) {
      if (limit <= 0) continue;
      const inFlight = [...held.values()].filter((call) => group === null || call.groupFolder === group);
      const from = isDaily ? day : `${day.slice(0, 8)}01`;
      const spent =
        store.usage.spent(group, from, day) + inFlight.reduce((sum, call) => sum + call.amount, 0);
      if (spent < limit) continue;
      const whose = group ? `this group has spent its` : 'all groups together have spent the';
      const renews = isDaily ? 'at midnight' : 'on the 1st';
      const reason =
        `${whose} ${isDaily ? 'daily' : 'monthly'} budget of ${money(limit)} (${money(spent)} ` +
        `${isDaily ? 'today' : 'this month'}). It renews ${renews} (${config.timezone}).`;
      return { reason, period: `${group ?? '*'} ${isDaily ? day : day.slice(0, 7)}` };
    }
    return null;
  }

  return createCredentialProxy({
    upstreamBaseUrl: config.modelBaseUrl,
    credential: deps.credential,
    log: deps.log,
    now: deps.now,
    isWebSearchOn: (groupFolder) => store.groups.isWebSearchOn(groupFolder),
    checkBudget(groupFolder, call) {
      const spent = spentBudget(groupFolder);
      if (spent) return { decision: 'deny', reason: spent.reason };
      // Held before the call goes upstream: calls at the same time see each other, so together they overshoot the
      // line by at most one call's cost.
      const run = runs.get(groupFolder);
      if (run) run.budgetRefused = false; // raised or renewed: a later failure is an ordinary one again
      const key = Symbol(groupFolder);
      held.set(key, { groupFolder, amount: prices.bound(call) });
      return { decision: 'allow', release: () => held.delete(key) };
    },
    recordUsage(usage) {
      if (!prices.isKnown(usage.model) && !unpriced.has(String(usage.model))) {
        unpriced.add(String(usage.model));
        deps.log.warn(
          { model: usage.model },
          'no price for this model: charged at the highest; set WARREN_MODEL_PRICES',
        );
      }
      const runId = runs.get(usage.groupFolder)?.runId ?? null;
      const cost = prices.cost(usage.model, usage);
      store.usage.record({ ...usage, day: dayOf(usage.at), runId, cost });
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
      if (!run || !refusal.reason.startsWith('budget:')) return;
      run.budgetRefused = true;
      const period = spentBudget(refusal.groupFolder)?.period ?? 'unknown';
      if (told.get(refusal.groupFolder) === period) return;
      told.set(refusal.groupFolder, period);
      run.emit({
        type: 'agent-notice',
        id: `budget-refused:${period}`,
        text: `⚠️ I cannot answer: ${refusal.reason.replace(/^budget:\s*/, '')}`,
      });
    },
  });
}
