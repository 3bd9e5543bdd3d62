import { defineConfig } from 'vitest/config';

// Two cores: a couple of workers at most. PGlite instances are heavy (~150-750 MB each).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
