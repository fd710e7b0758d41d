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

/**
 * A CloudFormation value with its tokens as plausible literals, for running a synthesized
 * definition locally: partition `aws`, region `us-east-1`, account `123456789012`, a GetAtt as a
 * Lambda ARN, the bucket's Ref as `bucket` when given, any other Ref lower-cased.
 */
export function renderCfnValue(value: unknown, bucket?: string): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (v.Ref === 'AWS::Partition') return 'aws';
  if (v.Ref === 'AWS::Region') return 'us-east-1';
  if (v.Ref === 'AWS::AccountId') return '123456789012';
  if (bucket !== undefined && typeof v.Ref === 'string' && v.Ref.startsWith('RenewerBucket')) return bucket;
  if (v.Ref) return String(v.Ref).toLowerCase();
  if (v['Fn::GetAtt'])
    return `arn:aws:lambda:us-east-1:123456789012:function:${(v['Fn::GetAtt'] as string[])[0]}`;
  if (v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => renderCfnValue(part, bucket)).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}
