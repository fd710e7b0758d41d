/**
 * CDK Apps for tests. An App without `outdir` makes a `cdk.out*` directory in the system temp
 * directory and nothing removes it; test/helpers/no-cdk-out.ts fails the suite when one is left.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { afterAll } from 'vitest';

/**
 * Call at a test file's top level. Each App it makes synthesizes into a directory of its own
 * under one temp directory, removed after the file's tests.
 */
export function cdkApps(): (context?: Record<string, unknown>) => App {
  const root = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-cdk-apps-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let apps = 0;
  return (context = {}) => new App({ outdir: path.join(root, `app-${++apps}`), context });
}
