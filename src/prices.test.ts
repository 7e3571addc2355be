import { describe, expect, it } from 'vitest';
import { createPriceList } from './prices.js';

describe('prices', () => {
  const prices = createPriceList({ 'claude-own': { input: 1, output: 2 } });
  const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 0, cacheWriteTokens: 0 };

  it('prices by the longest model prefix, with an override over the list', () => {
    expect(prices.cost('claude-opus-4-5-20251101', { ...usage, webSearches: 0 })).toBeCloseTo(30, 9);
    expect(prices.cost('claude-opus-4-1-20250805', { ...usage, webSearches: 0 })).toBeCloseTo(90, 9);
    expect(prices.cost('claude-own-1', { ...usage, webSearches: 1000 })).toBeCloseTo(3 + 10, 9);
    expect(prices.isKnown('claude-sonnet-4-5')).toBe(true);
    expect(prices.isKnown(null)).toBe(false);
  });

  it('bounds a call by what a real one can cost, whatever the agent writes in its body', () => {
    const honest = prices.bound({
      model: 'claude-sonnet-4-5',
      bytes: 4000,
      maxTokens: 1000,
      maxWebSearches: 0,
    });
    expect(honest).toBeCloseTo((4000 * 3.75 + 1000 * 15) / 1e6, 9);
    // A forged max_tokens and a padded body hold no more than 1M tokens in and 128K out at the dearest rates.
    const forged = prices.bound({
      model: 'claude-sonnet-4-5',
      bytes: 32e6,
      maxTokens: 1e12,
      maxWebSearches: 0,
    });
    expect(forged).toBeCloseTo((1e6 * 3.75 + 128_000 * 15) / 1e6, 9);
  });
});
