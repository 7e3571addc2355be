// What a model call costs: one price table per model, kept here and overridable in config (modelPrices).
import type { UsageEntry } from './store/store.js';

/** In the owner's currency unit (USD by default): tokens per million; webSearch per 1,000 searches. */
export interface Price {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
  webSearch: number;
}
export type PriceOverride = Pick<Price, 'input' | 'output'> & Partial<Price>;

/** A price as the pricing page gives it; cache writes (5 minutes) and reads follow the usual 1.25x and 0.1x. */
const price = ({
  input,
  output,
  cacheWrite = input * 1.25,
  cacheRead = input / 10,
  webSearch = 10,
}: PriceOverride) => ({ input, output, cacheWrite, cacheRead, webSearch }) satisfies Price;

/** Anthropic's list prices (platform.claude.com/docs/en/about-claude/pricing, December 2026), by model id prefix. */
const LIST_PRICES: Record<string, PriceOverride> = {
  'claude-fable-5-1': { input: 10, output: 50, cacheRead: 0.25 },
  'claude-mythos-5-1': { input: 10, output: 50, cacheRead: 0.25 },
  'claude-fable': { input: 10, output: 50, cacheRead: 1 },
  'claude-mythos': { input: 10, output: 50, cacheRead: 1 },
  'claude-opus-5-5': { input: 4, output: 20, cacheRead: 0.2 },
  'claude-opus-5': { input: 5, output: 25 },
  'claude-opus-4-5': { input: 5, output: 25 },
  'claude-opus-4-6': { input: 5, output: 25 },
  'claude-opus-4-7': { input: 5, output: 25 },
  'claude-opus-4-8': { input: 5, output: 25 },
  'claude-opus-4': { input: 15, output: 75 },
  'claude-3-opus': { input: 15, output: 75 },
  'claude-sonnet-5': { input: 2, output: 10 },
  'claude-sonnet-4': { input: 3, output: 15 },
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'claude-3-5-haiku': { input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 },
  'claude-3-haiku': { input: 0.25, output: 1.25, cacheWrite: 0.3, cacheRead: 0.03 },
};

/** The largest context window and output of the models priced here (1M tokens in, 128K out). */
const MAX_INPUT_TOKENS = 1_000_000;
const MAX_OUTPUT_TOKENS = 128_000;

export type Usage = Pick<
  UsageEntry,
  'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens'
> & {
  webSearches: number;
};

/** What a request to the proxy may cost at most, read from its body before it goes upstream. */
export interface CallBound {
  model: string | null;
  /** The body's size: a token is at least a byte of text, so this bounds the input tokens. */
  bytes: number;
  maxTokens: number;
  maxWebSearches: number;
}

export function createPriceList(overrides: Record<string, PriceOverride>) {
  const table = Object.entries({ ...LIST_PRICES, ...overrides }).map(
    ([prefix, p]) => [prefix, price(p)] as const,
  );
  // A model nobody priced is charged the highest rate of each kind: a budget errs toward refusing, never overspending.
  const highest = (kind: keyof Price) => Math.max(...table.map(([, p]) => p[kind]));
  const unknown: Price = price({
    input: highest('input'),
    output: highest('output'),
    cacheWrite: highest('cacheWrite'),
    cacheRead: highest('cacheRead'),
    webSearch: highest('webSearch'),
  });
  /** The longest prefix of the model id that has a price wins ('claude-opus-4-5' over 'claude-opus-4'). */
  const priceOf = (model: string | null): Price => {
    let best: readonly [string, Price] | undefined;
    for (const entry of table) {
      if (model?.startsWith(entry[0]) && entry[0].length > (best?.[0].length ?? 0)) best = entry;
    }
    return best?.[1] ?? unknown;
  };
  return {
    isKnown: (model: string | null) => priceOf(model) !== unknown,
    cost(model: string | null, usage: Usage): number {
      const p = priceOf(model);
      const tokens =
        usage.inputTokens * p.input +
        usage.outputTokens * p.output +
        usage.cacheReadTokens * p.cacheRead +
        usage.cacheWriteTokens * p.cacheWrite;
      return tokens / 1e6 + (usage.webSearches * p.webSearch) / 1000;
    },
    /**
     * An upper bound of a call's cost: every input byte a token at the dearer of fresh and cache-write input. The
     * body is the agent's: a forged max_tokens or a padded body must not hold more than a real call can cost, or one
     * group could keep the others under a shared budget refused; no model reads or writes more than the caps.
     */
    bound(call: CallBound): number {
      const p = priceOf(call.model);
      const input = Math.min(call.bytes, MAX_INPUT_TOKENS);
      const tokens =
        input * Math.max(p.input, p.cacheWrite) + Math.min(call.maxTokens, MAX_OUTPUT_TOKENS) * p.output;
      return tokens / 1e6 + (call.maxWebSearches * p.webSearch) / 1000;
    },
  };
}
export type PriceList = ReturnType<typeof createPriceList>;
