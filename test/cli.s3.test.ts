/**
 * The `ocsp-renewer renew` command over S3: the real command (lambda/cli/ocsp-renewer.js, run by the
 * current node) with `s3://` certificates and staples, pointed at s3rver through the standard
 * AWS_ENDPOINT_URL_S3 and credential variables, and a real `openssl ocsp` responder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { opensslVerify } from './helpers/openssl-verify.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import type { RunReport } from '../lambda/renew/ports.js';
import { DynamoStateStore, stateTableClient, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { fileStateBlob, StateStore } from '../lambda/adapters/state-store.js';
import { startDynalite } from './helpers/dynalite.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI_TIMEOUT_MS = 30_000;
const BUCKET = 'cli';

let pki: TestPki;
let responder: OpensslResponder;
let s3: S3Server;
let admin: S3Client;
let work: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  [pki, s3, work] = await Promise.all([
    makeTestPki(),
    startS3Server({ buckets: [BUCKET] }),
    mkdtemp(join(tmpdir(), 'ocsp-renewer-cli-s3-')),
  ]);
  responder = await startDelegatedResponder(pki);
  admin = s3.client();
  const put = async (key: string, file: string) =>
    admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(file) }));
  await Promise.all([
    put('certs/a/good.pem', pki.leaves.good.bundle),
    put('certs/a/revoked.pem', pki.leaves.revoked.bundle),
    put('certs/ec.crt', pki.leaves.ec.bundle),
    put('certs/noocsp.pem', pki.leaves.noOcsp.bundle),
  ]);
  await admin.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'bad/corrupt.pem', Body: Buffer.from('nope') }),
  );
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  admin?.destroy();
  await Promise.all([responder?.stop(), s3?.stop()]);
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the command to completion (killed after CLI_TIMEOUT_MS) with the S3 variables set. */
function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  // The CLI's run state goes to this test's own $XDG_STATE_HOME, never the user's.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...s3.env,
    XDG_STATE_HOME: join(work, 'state'),
    ...extraEnv,
  };
  delete env.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
  delete env.AWS_PROFILE;
  const child = spawn(process.execPath, ['lambda/cli/ocsp-renewer.js', ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
  return new Promise((resolveRun, reject) => {
    child.once('error', reject);
    // 'close' comes after 'exit' and after both pipes are drained.
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolveRun({ code, stdout, stderr });
    });
  });
}

const RENEW = ['renew', '--certs', `s3://${BUCKET}/certs/`, '--staples', `s3://${BUCKET}/staples/`];

async function stapleKeys(): Promise<Record<string, string>> {
  const res = await admin.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'staples/' }));
  return Object.fromEntries((res.Contents ?? []).map((o) => [o.Key!, o.ETag!]));
}

/** openssl's own verdict on the staple object at `key`. */
async function verifyStapleAt(key: string, leafCert: string): Promise<string> {
  const res = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return opensslVerify(await res.Body!.transformToByteArray(), leafCert, pki);
}

describe('ocsp-renewer renew over s3://', () => {
  it('should write verified staples to S3 and exit 0', async () => {
    const res = await cli([...RENEW, '--allow-private-responders', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as RunReport;
    expect(report.counts).toMatchObject({ renewed: 3, skipped: 1, failed: 0 });
    expect(Object.keys(await stapleKeys()).sort()).toEqual([
      'staples/a/good.ocsp',
      'staples/a/revoked.ocsp',
      'staples/ec.ocsp',
    ]);
    for (const [key, leaf, status] of [
      ['staples/a/good.ocsp', pki.leaves.good.cert, 'good'],
      ['staples/a/revoked.ocsp', pki.leaves.revoked.cert, 'revoked'],
      ['staples/ec.ocsp', pki.leaves.ec.cert, 'good'],
    ] as const) {
      const out = await verifyStapleAt(key, leaf);
      expect(out, key).toContain('Response verify OK');
      expect(out, key).toContain(`: ${status}`);
      const head = await admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      expect(head.ContentType).toBe('application/ocsp-response');
      expect(head.Metadata?.['cert-status']).toBe(status);
    }
  });

  it('should find the staples fresh on the next run and write nothing', async () => {
    const before = await stapleKeys();
    const res = await cli([...RENEW, '--allow-private-responders', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as RunReport).counts).toMatchObject({ fresh: 3, renewed: 0 });
    expect(await stapleKeys()).toEqual(before);
  });

  it('should refuse the loopback responder without --allow-private-responders and exit 1', async () => {
    const res = await cli([...RENEW, '--force', '--json']);
    expect(res.code).toBe(1);
    const report = JSON.parse(res.stdout) as RunReport;
    expect(report.counts.failed).toBe(3);
    expect(report.results.find((r) => r.key === 'a/good.pem')!.reason).toMatch(/refusing 127\.0\.0\.1/);
  });

  it('should exit 1 and report the parse stage for a certificate that does not parse', async () => {
    const res = await cli([
      'renew',
      '--certs',
      `s3://${BUCKET}/bad/`,
      '--staples',
      `s3://${BUCKET}/bad-staples/`,
      '--allow-private-responders',
      '--json',
    ]);
    expect(res.code).toBe(1);
    const report = JSON.parse(res.stdout) as RunReport;
    expect(report.results).toEqual([
      expect.objectContaining({ name: 'corrupt.pem', action: 'failed', stage: 'parse' }),
    ]);
  });
});

describe('ocsp-renewer status over s3://', () => {
  type Status = import('../lambda/core/status.js').StatusReport;
  const health = (s: Status) => Object.fromEntries(s.rows.map((r) => [r.certificate, r.health]));

  it('should read the staples from S3 and, by default, the CLI’s state for that location', async () => {
    // The runs above left the state with the refused forced run: every attempt failed, but the
    // staples are still valid for about a day, so health comes from them and the failure is a
    // note; the revoked certificate is revoked (exit 1 for it alone), never failing.
    const res = await cli(['status', `s3://${BUCKET}/staples/`, '--json']);
    expect(res.code, res.stderr).toBe(1);
    const status = JSON.parse(res.stdout) as Status;
    expect(health(status)).toEqual({
      'a/good.pem': 'healthy',
      'a/revoked.pem': 'revoked',
      'ec.crt': 'healthy',
      'noocsp.pem': 'skipped',
    });
    expect(status.summary).toMatchObject({ failing: 0, revoked: 1, attention: 1 });
    const good = status.rows.find((r) => r.certificate === 'a/good.pem')!;
    expect(good.lastError).toMatch(/refusing 127\.0\.0\.1/);
    expect(good.note).toMatch(/^last attempt failed \d+m ago: .*refusing 127\.0\.0\.1/);
    // Read from the staple itself: still good and valid for about a day.
    expect(good.certStatus).toBe('good');
    expect(good.validityHours).toBeGreaterThan(23);
  });

  it('should take the state from an S3 object with --state s3://bucket/key', async () => {
    const stateFile = join(work, 'clean-state.json');
    const renewed = await cli([...RENEW, '--allow-private-responders', '--force', '--state', stateFile]);
    expect(renewed.code, renewed.stderr).toBe(0);
    await admin.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'state/state.json', Body: await readFile(stateFile) }),
    );
    const res = await cli([
      'status',
      `s3://${BUCKET}/staples/`,
      '--state',
      `s3://${BUCKET}/state/state.json`,
    ]);
    expect(res.code, res.stderr).toBe(1); // a revoked certificate needs attention
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(/^a\/revoked\.pem\s+revoked\s+revoked/);
    expect(lines.at(-1)).toMatch(
      /^2 healthy, 0 due, 0 failing, 1 revoked, 1 skipped; least validity \d+[dh] \d+[hm] \((a\/revoked\.pem|a\/good\.pem|ec\.crt)\)$/,
    );
    const json = JSON.parse(
      (
        await cli([
          'status',
          `s3://${BUCKET}/staples/`,
          '--state',
          `s3://${BUCKET}/state/state.json`,
          '--json',
        ])
      ).stdout,
    ) as Status;
    expect(json.rows.find((r) => r.certificate === 'ec.crt')).toMatchObject({
      health: 'healthy',
      lastOutcome: 'renewed',
      responderHost: new URL(pki.ocspUrl).host,
    });
  });
  it("should read a deployed stack's state table with --state dynamodb:<table>, never a stale state.json", async () => {
    // The stack's state: what a clean renew decided, in a DynamoDB table (dynalite).
    const stateFile = join(work, 'table-state.json');
    const renewed = await cli([...RENEW, '--allow-private-responders', '--force', '--state', stateFile]);
    expect(renewed.code, renewed.stderr).toBe(0);
    const dynamo = await startDynalite();
    try {
      await dynamo.createTable(stateTableDefinition('stack-state'));
      const ddb = dynamo.client();
      await new DynamoStateStore(ddb, 'stack-state').save(
        await new StateStore(fileStateBlob(stateFile)).load(),
      );
      ddb.destroy();
      // And what the old design left: a state.json saying good.pem keeps failing.
      const stale = JSON.parse(await readFile(stateFile, 'utf8')) as {
        certs: Record<string, { failures?: number; lastError?: string }>;
      };
      stale.certs['a/good.pem'] = { ...stale.certs['a/good.pem'], failures: 9, lastError: 'stale' };
      await admin.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'state/state.json', Body: JSON.stringify(stale) }),
      );
      const env = { AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint, XDG_STATE_HOME: join(work, 'empty-state') };
      const res = await cli(
        ['status', `s3://${BUCKET}/staples/`, '--state', 'dynamodb:stack-state', '--json'],
        env,
      );
      expect(res.code, res.stderr).toBe(1); // a revoked certificate needs attention
      const json = JSON.parse(res.stdout) as Status;
      expect(json.rows.find((r) => r.certificate === 'ec.crt')).toMatchObject({
        health: 'healthy',
        lastOutcome: 'renewed',
      });
      expect(json.rows.find((r) => r.certificate === 'a/good.pem')?.lastError).toBeUndefined();
      // Without --state (and no CLI state of its own) the stale state.json is not read.
      const bare = JSON.parse(
        (await cli(['status', `s3://${BUCKET}/staples/`, '--json'], env)).stdout,
      ) as Status;
      expect(bare.rows.map((r) => r.lastError).filter(Boolean)).toEqual([]);
      expect(bare.rows.find((r) => r.staple === 'ec.ocsp')).toMatchObject({ certificate: 'ec.ocsp' });
      // A name that is no table is refused as usage, before any request.
      const bad = await cli(['status', `s3://${BUCKET}/staples/`, '--state', 'dynamodb:a b'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--state: expected dynamodb:<table name or ARN>, got dynamodb:a b');
      // A table's ARN is read in the ARN's region, whatever the configured one.
      expect(await stateTableClient('arn:aws:dynamodb:eu-west-3:123456789012:table/t').config.region()).toBe(
        'eu-west-3',
      );
      // A table that does not exist: said in the user's terms, naming the table.
      const missing = await cli(['status', `s3://${BUCKET}/staples/`, '--state', 'dynamodb:no-such'], env);
      expect(missing.stderr).toMatch(/cannot read the state table no-such: /);
      expect(missing.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await dynamo.stop();
    }
  });
});
