/**
 * `npx cdk synth` as a user runs it: the real CDK CLI, cdk.json's app command (infra/app.ts with
 * cdk-nag applied), no AWS credentials or config, no Docker. It must succeed offline and write a
 * template with the function, and cdk-nag must have nothing unacknowledged to say.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/vectors.js';

const run = promisify(execFile);
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('npx cdk synth', () => {
  it('synthesizes offline with no AWS credentials, and cdk-nag passes', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-nohome-'));
    const out = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-synth-'));
    dirs.push(home, out);
    // Only PATH from the caller: no AWS_* variables, no ~/.aws, no npm_config_* from a parent npx.
    const env = { PATH: process.env.PATH ?? '', HOME: home, CDK_DISABLE_VERSION_CHECK: '1' };
    const cdk = path.join(REPO_ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
    const { stderr } = await run(process.execPath, [cdk, 'synth', '-q', '--no-notices', '-o', out], {
      cwd: REPO_ROOT,
      env,
      timeout: 120_000,
    });
    expect(stderr).not.toMatch(/AwsSolutions-/);
    const template = JSON.parse(await readFile(path.join(out, 'OcspRenewer.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    };
    const functions = Object.values(template.Resources).filter(
      (r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Runtime === 'nodejs24.x',
    );
    expect(functions).toHaveLength(1);
    const report = JSON.parse(await readFile(path.join(out, 'validation-report.json'), 'utf8')) as unknown;
    expect(JSON.stringify(report)).not.toMatch(/"status":\s*"failure"/);
  }, 150_000);
});
