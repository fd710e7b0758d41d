import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    // Peers (s3rver, openssl ocsp) get 60 s each to start on a loaded machine; hooks start several.
    hookTimeout: 180_000,
    pool: 'forks',
    // A temp directory of its own for the run: fails it when a cdk.out* is left there.
    globalSetup: ['test/helpers/no-cdk-out.ts'],
  },
});
