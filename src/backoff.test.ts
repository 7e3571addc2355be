import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.js';

describe('backoffMs', () => {
  it('doubles from the base with each attempt and stops at the ceiling', () => {
    const waits = [1, 2, 3, 4, 5, 6].map((attempt) => backoffMs(attempt, { baseMs: 1000, maxMs: 10_000 }));
    expect(waits).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('stays at the ceiling for attempts far past it', () => {
    expect(backoffMs(5000, { baseMs: 1000, maxMs: 60_000 })).toBe(60_000);
  });

  it('treats an attempt below 1 as the first', () => {
    expect(backoffMs(0, { baseMs: 500, maxMs: 15_000 })).toBe(500);
  });

  it('spreads a jittered wait over the given fraction either side', () => {
    const options = { baseMs: 500, maxMs: 15_000, jitter: 0.25 };
    expect(backoffMs(3, { ...options, random: () => 0 })).toBe(1500);
    expect(backoffMs(3, { ...options, random: () => 0.5 })).toBe(2000);
    expect(backoffMs(3, { ...options, random: () => 0.999 })).toBeCloseTo(2499, 0);
    expect(backoffMs(6, { ...options, random: () => 0.5 })).toBe(15_000);
  });
});
