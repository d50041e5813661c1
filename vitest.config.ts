import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // e2e files boot real guests on a 2-core host: never run two of them at once.
    fileParallelism: false,
  },
});
