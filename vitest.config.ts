import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'agent/src/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 120_000,
    // Container end-to-end tests share one Docker engine; files run in parallel only up to the core count.
    maxWorkers: 2,
  },
});
