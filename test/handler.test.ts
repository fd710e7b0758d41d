/**
 * The Lambda handler end to end: a real S3 API (s3rver), DynamoDB (dynalite, one state table per
 * bucket), a real OCSP responder (`openssl ocsp`,
 * delegated signer) and the test PKI, all on loopback. Only the S3 client (to count requests), the
 * transport (to count OCSP requests), the clock and the log are injected.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_HTTP } from '../lambda/adapters/http.js';
import { httpTransport } from '../lambda/adapters/transport.js';
import { EventError } from '../lambda/aws/event.js';
import { createHandler } from '../lambda/aws/handler.js';
import { recorded } from './helpers/lambda-output.js';
import { readRunReport as readReportObject, type RunSummary } from '../lambda/aws/run-summary.js';
import {
  goodResponseBeforeRevocation,
  startDelegatedResponder,
  type OpensslResponder,
} from './helpers/openssl-responder.js';
import { freePort, makeTestPki, openssl, type TestPki } from './helpers/pki.js';
import { opensslVerify } from './helpers/openssl-verify.js';
import { countRequests, type RequestCounter } from './helpers/count-requests.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import type { ReportRow, RunReport, Transport } from '../lambda/renew/ports.js';
import { stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';

let pki: TestPki;
let responder: OpensslResponder;
let s3: S3Server;
/** The per-certificate state: one table per bucket (named as the bucket). */
let dynamo: DynamoServer;
let ddb: DynamoDBClient;
let ddbRequests: RequestCounter;
/** The state machine executions the handler started (a force of everything). */
const started: { stateMachineArn?: string; name?: string; input: unknown }[] = [];
const sfn = {
  send: async (command: StartExecutionCommand) => {
    started.push({ ...command.input, input: JSON.parse(command.input.input!) as unknown });
    return {
      executionArn: `arn:aws:states:us-east-1:123456789012:execution:renew-all:${command.input.name}`,
    };
  },
} as unknown as SFNClient;
/** Setup and inspection: not counted. */
let admin: S3Client;
/** The handler's client: counted. */
let counted: S3Client;
let s3Requests: RequestCounter;
let work: string;
/** A leaf issued by the test intermediate whose AIA OCSP URL is a closed port. */
let deadLeafBundle: string;
let deadOcspUrl: string;

const ocspRequests: string[] = [];
/** OCSP answers received since the module loaded (the deadline test's clock). */
let ocspAnswers = 0;
const inner = httpTransport({ ...DEFAULT_HTTP, timeoutMs: 5_000, allowPrivate: true });
const transport: Transport = async (url, der, limits) => {
  ocspRequests.push(url);
  const answer = await inner(url, der, limits);
  ocspAnswers++;
  return answer;
};

beforeAll(async () => {
  [pki, s3, work, dynamo] = await Promise.all([
    makeTestPki(),
    startS3Server({ buckets: [] }),
    mkdtemp(join(tmpdir(), 'ocsp-renewer-handler-')),
    startDynalite(),
  ]);
  ddb = dynamo.client();
  ddbRequests = countRequests(ddb);
  responder = await startDelegatedResponder(pki);
  admin = s3.client();
  counted = s3.client();
  s3Requests = countRequests(counted);
  ({ bundle: deadLeafBundle, ocspUrl: deadOcspUrl } = await issueDeadLeaf());
});

afterAll(async () => {
  admin?.destroy();
  counted?.destroy();
  ddb?.destroy();
  await Promise.all([responder?.stop(), s3?.stop(), dynamo?.stop()]);
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Re-signs the good leaf's CSR with an AIA OCSP URL where nothing listens. */
async function issueDeadLeaf(): Promise<{ bundle: string; ocspUrl: string }> {
  const ocspUrl = `http://127.0.0.1:${await freePort()}/`;
  const ext = join(work, 'dead.cnf');
  await writeFile(
    ext,
    [
      '[ dead ]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'authorityKeyIdentifier = keyid:always',
      'subjectAltName = DNS:dead.test',
      `authorityInfoAccess = OCSP;URI:${ocspUrl}`,
      '',
    ].join('\n'),
  );
  const cert = join(work, 'dead.pem');
  await openssl([
    'x509', '-req', '-in', join(pki.dir, 'good.csr'),
    '-CA', pki.intermediate.cert, '-CAkey', pki.intermediate.key,
    '-set_serial', '0x5EAD0001', '-days', '30',
    '-extfile', ext, '-extensions', 'dead', '-out', cert,
  ]); // prettier-ignore
  const bundle = (await readFile(cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8'));
  return { bundle, ocspUrl };
}

// --- S3 helpers -----------------------------------------------------------------------------------

let bucketSeq = 0;
async function newBucket(): Promise<string> {
  const bucket = `handler-${++bucketSeq}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  await dynamo.createTable(stateTableDefinition(bucket));
  return bucket;
}

async function put(bucket: string, key: string, body: string | Buffer): Promise<void> {
  await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body) }));
}

async function getBytes(bucket: string, key: string): Promise<Buffer> {
  const res = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function listKeys(bucket: string, prefix = ''): Promise<string[]> {
  const res = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

async function etags(bucket: string, prefix: string): Promise<Record<string, string>> {
  const res = await admin.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return Object.fromEntries((res.Contents ?? []).map((o) => [o.Key!, o.ETag!]));
}

/** The state table's items (the table is named as the bucket), by certificate key. */
async function stateItems(bucket: string): Promise<Record<string, Record<string, unknown>>> {
  const res = await ddb.send(new ScanCommand({ TableName: bucket, ConsistentRead: true }));
  return Object.fromEntries(
    (res.Items ?? [])
      .filter((item) => !item.certKey!.S!.startsWith('#'))
      .map((item) => [
        item.certKey!.S!,
        Object.fromEntries(Object.entries(item).map(([k, v]) => [k, v.S ?? (v.N ? Number(v.N) : v.BOOL)])),
      ]),
  );
}

const pem = (path: string) => readFile(path, 'utf8');

/**
 * Every kind of certificate the handler meets. Bundles carry the intermediate (so the issuer is in
 * the bundle) and the leaf's private key (which must be ignored).
 */
async function uploadFullSet(bucket: string): Promise<void> {
  const l = pki.leaves;
  await Promise.all([
    put(bucket, 'certs/a/good.pem', await pem(l.good.bundle)),
    put(bucket, 'certs/a/revoked.pem', await pem(l.revoked.bundle)),
    put(bucket, 'certs/b/ec.crt', await pem(l.ec.bundle)),
    put(bucket, 'certs/b/must-staple.pem', await pem(l.mustStaple.bundle)),
    // A bare leaf whose issuer is the sibling <name>.issuer.pem.
    put(bucket, 'certs/c/plain.pem', await pem(l.good.cert)),
    put(bucket, 'certs/c/plain.issuer.pem', await pem(pki.intermediate.cert)),
    put(bucket, 'certs/noocsp.pem', await pem(l.noOcsp.bundle)),
    put(bucket, 'certs/expired.pem', await pem(l.expired.bundle)),
    put(bucket, 'certs/unknown.pem', await pem(l.unknownToCa.bundle)),
    put(bucket, 'certs/corrupt.pem', 'this is not a certificate\n'),
    put(bucket, 'certs/README.txt', 'not a certificate key: ignored\n'),
  ]);
}
/** Keys of uploadFullSet that have an OCSP URL and are not expired: one OCSP request each. */
const FULL_SET_OCSP = ['a/good.pem', 'a/revoked.pem', 'b/ec.crt', 'b/must-staple.pem', 'c/plain.pem'];
const FULL_SET_OCSP_CAPABLE = [...FULL_SET_OCSP, 'unknown.pem'];
/** Leaf PEM for each staple written from uploadFullSet, for openssl to check the status against. */
const fullSetLeaf = (name: string): string =>
  ({
    'a/good.pem': pki.leaves.good.cert,
    'a/revoked.pem': pki.leaves.revoked.cert,
    'b/ec.crt': pki.leaves.ec.cert,
    'b/must-staple.pem': pki.leaves.mustStaple.cert,
    'c/plain.pem': pki.leaves.good.cert,
  })[name]!;

/** Only certificates that renew cleanly (no failures to back off from, no skipped rows). */
async function uploadHealthySet(bucket: string): Promise<void> {
  const l = pki.leaves;
  await Promise.all([
    put(bucket, 'certs/a/good.pem', await pem(l.good.bundle)),
    put(bucket, 'certs/a/revoked.pem', await pem(l.revoked.bundle)),
    put(bucket, 'certs/b/ec.crt', await pem(l.ec.bundle)),
    put(bucket, 'certs/b/must-staple.pem', await pem(l.mustStaple.bundle)),
  ]);
}
const HEALTHY = ['a/good.pem', 'a/revoked.pem', 'b/ec.crt', 'b/must-staple.pem'];
const stapleOf = (name: string) => `staples/${name.replace(/\.(pem|crt)$/, '.ocsp')}`;

// --- invoking the handler ---------------------------------------------------------------------------

interface Invocation {
  /** What the handler returned (and logged). */
  summary: RunSummary;
  /** The full run report, read from the object the summary names. */
  report: RunReport;
  logs: string[];
  s3: { total: number; byCommand: Record<string, number> };
  ddb: { total: number; byCommand: Record<string, number> };
  /** OCSP requests sent, by URL. */
  ocsp: string[];
}

function handlerEnv(bucket: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    BUCKET: bucket,
    CERTS_PREFIX: 'certs/',
    STAPLES_PREFIX: 'staples/',
    OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
    STATE_TABLE: bucket,
    STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:renew-all',
    ...s3.env,
    ...extra,
  };
}

/** Runs the handler once with fresh counters; a rejection propagates (the counters stay readable). */
async function invoke(
  bucket: string,
  event: unknown,
  opts: {
    context?: { getRemainingTimeInMillis(): number };
    logs?: string[];
    env?: Record<string, string>;
    clock?: () => Date;
  } = {},
): Promise<Invocation> {
  s3Requests.reset();
  ddbRequests.reset();
  ocspRequests.length = 0;
  const logs = opts.logs ?? [];
  const handler = recorded(
    createHandler({
      env: handlerEnv(bucket, opts.env),
      s3: counted,
      dynamodb: ddb,
      sfn,
      transport,
      clock: opts.clock ?? (() => new Date()),
    }),
    (line) => logs.push(line),
  );
  const summary = await handler(event, opts.context);
  return {
    summary,
    report: await readRunReport(summary),
    logs,
    s3: { total: s3Requests.total, byCommand: { ...s3Requests.byCommand } },
    ddb: { total: ddbRequests.total, byCommand: { ...ddbRequests.byCommand } },
    ocsp: [...ocspRequests],
  };
}

/** The run report object a summary names; a run with nothing in scope writes none. */
async function readRunReport(summary: RunSummary): Promise<RunReport> {
  if (summary.report !== null) return readReportObject(admin, summary.report);
  expect(summary.counts).toEqual({ renewed: 0, fresh: 0, skipped: 0, withheld: 0, failed: 0, due: 0 });
  return { ...summary, results: [], notReached: [] };
}

const row = (report: RunReport, name: string): ReportRow => {
  const found = report.results.find((r) => r.key === name);
  if (!found) throw new Error(`no result row for ${name}: ${JSON.stringify(report.results)}`);
  return found;
};
const names = (report: RunReport, action?: ReportRow['action']) =>
  report.results
    .filter((r) => action === undefined || r.action === action)
    .map((r) => r.key)
    .sort();

/**
 * openssl ocsp signs deterministically (RSA PKCS#1 v1.5) with second-resolution times, so two
 * fetches within one second give the same bytes ("responder returned the staple already stored").
 * Tests that need a new staple wait for the next second.
 */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1_010 - (Date.now() % 1_000)));
}

/** The S3 notification for an object upload, as S3 sends it (key URL-encoded, spaces as +). */
function objectCreated(bucket: string, ...keys: string[]): S3Event {
  return {
    Records: keys.map((key) => ({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: new Date().toISOString(),
      eventName: 'ObjectCreated:Put',
      userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
      requestParameters: { sourceIPAddress: '127.0.0.1' },
      responseElements: { 'x-amz-request-id': 'C3D13FE58DE4C810', 'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD' },
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'certificate-uploaded',
        bucket: { name: bucket, ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: `arn:aws:s3:::${bucket}` },
        object: {
          key: encodeURIComponent(key).replace(/%2F/g, '/').replace(/%20/g, '+'),
          size: 1024,
          eTag: 'd41d8cd98f00b204e9800998ecf8427e',
          sequencer: '0055AED6DCD90281E5',
        },
      },
    })),
  }; // prettier-ignore
}

// --- tests ------------------------------------------------------------------------------------------

describe('handler: scheduled runs over S3', () => {
  let bucket: string;
  let first: Invocation;

  beforeAll(async () => {
    bucket = await newBucket();
    await uploadFullSet(bucket);
    first = await invoke(bucket, { mode: 'scheduled' });
  });

  it('should renew every certificate with an OCSP URL and report each one', () => {
    const { report } = first;
    expect(report.counts).toEqual({ renewed: 5, fresh: 0, skipped: 2, withheld: 0, failed: 2, due: 0 });
    expect(names(report, 'renewed')).toEqual([...FULL_SET_OCSP].sort());
    expect(names(report, 'skipped')).toEqual(['expired.pem', 'noocsp.pem']);
    expect(row(report, 'noocsp.pem').reason).toBe('no OCSP URL in the certificate');
    expect(row(report, 'expired.pem').reason).toMatch(/^certificate expired /);
    expect(row(report, 'a/revoked.pem')).toMatchObject({
      certStatus: 'revoked',
      revocationReason: 'keyCompromise',
    });
    expect(report.revoked).toBe(1);
    expect(report.notReached).toEqual([]);
    expect(report.dryRun).toBe(false);
    // README.txt and the .issuer.pem sibling are not certificates to staple.
    expect(report.results).toHaveLength(9);
    expect(first.ocsp).toHaveLength(FULL_SET_OCSP_CAPABLE.length);
    expect(new Set(first.ocsp)).toEqual(new Set([pki.ocspUrl]));
  });

  it('should fail corrupt.pem at the parse stage and unknown.pem at validate, without touching the others', () => {
    const corrupt = row(first.report, 'corrupt.pem');
    expect(corrupt).toMatchObject({ action: 'failed', stage: 'parse' });
    expect(corrupt.reason).toMatch(/^parse corrupt\.pem: not a certificate/);
    const unknown = row(first.report, 'unknown.pem');
    expect(unknown).toMatchObject({ action: 'failed', stage: 'validate' });
    expect(unknown.reason).toContain('unknown');
  });

  it('should write one staple per renewed certificate, named after its key under staples/', async () => {
    expect(await listKeys(bucket, 'staples/')).toEqual(FULL_SET_OCSP.map(stapleOf).sort());
    // The state is in the table: no state object is written any more.
    expect(await listKeys(bucket, 'state/')).toEqual([]);
  });

  it('should store each staple with its content type and validity metadata', async () => {
    for (const name of FULL_SET_OCSP) {
      const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: stapleOf(name) }));
      const cert = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: `certs/${name}` }));
      const result = row(first.report, name);
      expect(head.ContentType, name).toBe('application/ocsp-response');
      expect(head.Metadata, name).toEqual({
        'this-update': result.thisUpdate,
        'next-update': result.nextUpdate,
        'produced-at': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/),
        'cert-status': name === 'a/revoked.pem' ? 'revoked' : 'good',
        'source-cert-etag': cert.ETag!.replace(/"/g, ''),
      });
      // openssl ocsp -ndays 1: a one-day window.
      expect(Date.parse(result.nextUpdate!) - Date.parse(result.thisUpdate!)).toBe(86_400_000);
    }
  });

  it('should store staples that openssl verifies and reads the same status from', async () => {
    for (const name of FULL_SET_OCSP) {
      const out = await opensslVerify(await getBytes(bucket, stapleOf(name)), fullSetLeaf(name), pki);
      expect(out, name).toContain('Response verify OK');
      expect(out, name).toMatch(name === 'a/revoked.pem' ? /: revoked/ : /: good/);
    }
  });

  it('should keep one state item per certificate and no key material', async () => {
    const items = await stateItems(bucket);
    // Skipped and failed certificates too: the first run seeded every certificate of the bucket.
    expect(Object.keys(items).sort()).toEqual(names(first.report));
    expect(items['a/good.pem']).toMatchObject({ failures: 0, certStatus: 'good' });
    expect(items['corrupt.pem']).toMatchObject({ failures: 1 });
    expect(JSON.stringify(items)).not.toContain('PRIVATE KEY');
  });

  it('should log one run report line and one EMF metrics line with the right values', () => {
    const lines = first.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const reports = lines.filter((l) => l.message === 'run report');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({
      level: 'WARN',
      mode: 'due',
      counts: first.report.counts,
      revoked: 1,
      notReached: 0,
    });
    // A summary: the failures with their stage, and where the full report (every row) is.
    expect(reports[0]!.results).toBeUndefined();
    expect(reports[0]!.failures).toEqual([
      { key: 'corrupt.pem', stage: 'parse', reason: row(first.report, 'corrupt.pem').reason },
      { key: 'unknown.pem', stage: 'validate', reason: row(first.report, 'unknown.pem').reason },
    ]);
    expect(reports[0]!.report).toMatch(
      new RegExp(`^s3://${bucket}/reports/runs/\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z-[0-9a-f]{8}\\.json$`),
    );
    // What is logged is what is returned, with Powertools' keys.
    expect(reports[0]).toEqual({
      level: 'WARN',
      message: 'run report',
      timestamp: expect.any(String) as unknown,
      service: 'ocsp-renewer',
      sampling_rate: 0,
      ...first.summary,
    });
    expect(first.report.results.map((r) => r.key).sort()).toEqual(
      [...FULL_SET_OCSP, 'corrupt.pem', 'expired.pem', 'unknown.pem', 'noocsp.pem'].sort(),
    );

    // The EMF document Powertools Metrics wrote (test/run-output.test.ts checks it key by key).
    type Emf = { _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] } };
    const emf = lines.filter((l) => (l as Partial<Emf>)._aws) as (Emf & Record<string, number>)[];
    expect(emf).toHaveLength(1);
    const metrics = emf[0]!;
    expect(metrics._aws.CloudWatchMetrics[0]!.Namespace).toBe('OcspRenewer');
    expect(metrics._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)).toEqual(
      expect.arrayContaining(['Renewed', 'Failed', 'Skipped', 'Revoked', 'LeastValidityHours']),
    );
    expect(metrics).toMatchObject({ Renewed: 5, Failed: 2, Skipped: 2, Revoked: 1, NotReached: 0 });
    // The dimension: METRICS_SERVICE from the stack, else the default.
    expect((metrics._aws.CloudWatchMetrics[0] as unknown as { Dimensions: string[][] }).Dimensions).toEqual([
      ['Service'],
    ]);
    expect(metrics.Service as unknown).toBe('ocsp-renewer');
    expect(metrics).not.toHaveProperty('service');
    // One-day responses fetched seconds ago.
    expect(metrics.LeastValidityHours).toBeGreaterThan(23.9);
    expect(metrics.LeastValidityHours).toBeLessThanOrEqual(24);
  });

  it('should make no OCSP and no S3 request on the next run: the due index says nothing is due', async () => {
    const quiet = await invoke(bucket, { mode: 'scheduled' });
    expect(quiet.ocsp).toEqual([]);
    expect(quiet.summary).toMatchObject({ due: 0, seeded: 0, report: null });
    expect(quiet.report.counts).toMatchObject({ renewed: 0, fresh: 0, failed: 0, skipped: 0 });
    // One Query per shard of the due index and the seeded marker; nothing of S3, not even a run
    // report (nothing was in scope).
    expect(quiet.s3.total).toBe(0);
    expect(quiet.ddb.byCommand).toEqual({ QueryCommand: 8, GetItemCommand: 1 });
    // What the state keeps: the failure's backoff, the revoked status.
    const items = await stateItems(bucket);
    expect(items['corrupt.pem']).toMatchObject({ failures: 1, action: 'failed' });
    expect(items['a/revoked.pem']).toMatchObject({ certStatus: 'revoked' });
  });

  it('should treat an empty event like a scheduled one', async () => {
    const quiet = await invoke(bucket, {});
    expect(quiet.ocsp).toEqual([]);
    expect(quiet.summary).toMatchObject({ mode: 'due', due: 0 });
    expect(quiet.ddb.byCommand).toEqual({ QueryCommand: 8, GetItemCommand: 1 });
    expect(JSON.parse(quiet.logs.find((l) => l.includes('"run report"'))!)).toMatchObject({ mode: 'due' });
  });
});

describe('handler: a quiet run costs the same requests for 5 or 25 certificates', () => {
  it('should read the due index and nothing of S3, whatever N', async () => {
    const quietRun = async (n: number) => {
      const bucket = await newBucket();
      const bundle = await pem(pki.leaves.good.bundle);
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          put(bucket, `certs/n/cert-${String(i).padStart(2, '0')}.pem`, bundle),
        ),
      );
      const first = await invoke(bucket, { mode: 'scheduled' });
      expect(first.report.counts.renewed).toBe(n);
      expect(first.ocsp).toHaveLength(n);
      const quiet = await invoke(bucket, { mode: 'scheduled' });
      expect(quiet.summary.due).toBe(0);
      expect(quiet.ocsp).toEqual([]);
      return { s3: quiet.s3, ddb: quiet.ddb };
    };
    const five = await quietRun(5);
    const twentyFive = await quietRun(25);
    expect(five.s3.total).toBe(0);
    expect(five.ddb.byCommand).toEqual({ QueryCommand: 8, GetItemCommand: 1 });
    expect(twentyFive).toEqual(five);
  });
});

describe('handler: forced runs', () => {
  let bucket: string;

  beforeAll(async () => {
    bucket = await newBucket();
    await uploadFullSet(bucket);
    await invoke(bucket, { mode: 'scheduled' });
  });

  it('should hand {mode:"force"} to the state machine, whatever N, and say where the results go', async () => {
    started.length = 0;
    const forced = await invoke(bucket, { mode: 'force' });
    expect(forced.ocsp).toEqual([]);
    expect(started).toEqual([
      {
        stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:renew-all',
        name: expect.stringMatching(/^force-[0-9A-Za-z-]+$/),
        input: { force: true },
      },
    ]);
    expect(forced.summary).toMatchObject({
      mode: 'force',
      execution: expect.stringContaining(':execution:renew-all:force-'),
      results: `s3://${bucket}/reports/map-runs/`,
    });
    // The same with the whole certificates prefix.
    await invoke(bucket, { mode: 'force', prefix: 'certs/' });
    expect(started).toHaveLength(2);
  });

  it('should renew every listed certificate with an OCSP URL on {mode:"force",keys}', async () => {
    await nextSecond();
    const before = await etags(bucket, 'staples/');
    const forced = await invoke(bucket, {
      mode: 'force',
      keys: [...FULL_SET_OCSP_CAPABLE, 'noocsp.pem', 'expired.pem', 'corrupt.pem'],
    });
    expect(forced.ocsp).toHaveLength(FULL_SET_OCSP_CAPABLE.length);
    expect(names(forced.report, 'renewed')).toEqual([...FULL_SET_OCSP].sort());
    for (const name of FULL_SET_OCSP) expect(row(forced.report, name).reason).not.toBe('fresh');
    const after = await etags(bucket, 'staples/');
    for (const name of FULL_SET_OCSP) expect(after[stapleOf(name)], name).not.toBe(before[stapleOf(name)]);
    // 5 staples and the run report; the state is in the table.
    expect(forced.s3.byCommand.PutObjectCommand).toBe(6);
  });

  it.each([
    ['with the certs prefix', 'certs/a/good.pem'],
    ['relative to the certs prefix', 'a/good.pem'],
  ])('should renew only the named certificate when keys are given %s', async (_how, key) => {
    await nextSecond();
    const forced = await invoke(bucket, { mode: 'force', keys: [key] });
    expect(forced.ocsp).toHaveLength(1);
    expect(forced.report.results.map((r) => [r.key, r.action])).toEqual([['a/good.pem', 'renewed']]);
    expect(forced.s3.byCommand.PutObjectCommand).toBe(2); // the staple, the run report
  });

  it('should report a forced key that names no certificate as failed at the source stage', async () => {
    const forced = await invoke(bucket, { mode: 'force', keys: ['a/good.pem', 'a/missing.pem'] });
    expect(forced.report.results.map((r) => [r.key, r.action])).toEqual([
      ['a/good.pem', expect.stringMatching(/renewed|fresh/)],
      ['a/missing.pem', 'failed'],
    ]);
    expect(row(forced.report, 'a/missing.pem')).toMatchObject({
      stage: 'source',
      reason: expect.stringContaining('no such certificate'),
    });
    expect(forced.report.counts.failed).toBe(1);
  });

  it('should refuse a forced key with a .. component by its name, not ask S3 for it', async () => {
    const forced = await invoke(bucket, { mode: 'force', keys: ['a/../a/good.pem'] });
    expect(row(forced.report, 'a/../a/good.pem')).toMatchObject({
      action: 'failed',
      reason: expect.stringContaining('.. component'),
    });
    expect(forced.s3.byCommand.HeadObjectCommand ?? 0).toBe(0);
  });

  it('should renew only the certificates under a prefix', async () => {
    await nextSecond();
    const forced = await invoke(bucket, { mode: 'force', prefix: 'certs/a/' });
    expect(forced.ocsp).toHaveLength(2);
    expect(names(forced.report)).toEqual(['a/good.pem', 'a/revoked.pem']);
    expect(names(forced.report, 'renewed')).toEqual(['a/good.pem', 'a/revoked.pem']);
  });

  it('should leave certificates outside the forced scope to the schedule', async () => {
    const quiet = await invoke(bucket, {});
    expect(quiet.ocsp).toEqual([]);
    expect(quiet.summary.due).toBe(0);
  });
});

describe('handler: S3 ObjectCreated notifications', () => {
  let bucket: string;

  beforeAll(async () => {
    bucket = await newBucket();
    await uploadHealthySet(bucket);
    await invoke(bucket, { mode: 'scheduled' });
  });

  it('should renew a newly uploaded certificate right away, decoding the notification key', async () => {
    const key = 'certs/d/new cert+1.pem';
    await put(bucket, key, await pem(pki.leaves.ec.bundle));
    const event = objectCreated(bucket, key);
    expect(event.Records[0]!.s3.object.key).toBe('certs/d/new+cert%2B1.pem');

    const res = await invoke(bucket, event);
    expect(res.report.results.map((r) => [r.key, r.action])).toEqual([['d/new cert+1.pem', 'renewed']]);
    expect(res.ocsp).toHaveLength(1);
    expect(await listKeys(bucket, 'staples/d/')).toEqual(['staples/d/new cert+1.ocsp']);
    const out = await opensslVerify(
      await getBytes(bucket, 'staples/d/new cert+1.ocsp'),
      pki.leaves.ec.cert,
      pki,
    );
    expect(out).toContain('Response verify OK');
    expect(JSON.parse(res.logs.find((l) => l.includes('"run report"'))!)).toMatchObject({ mode: 's3-event' });

    // The next scheduled run knows it already.
    const quiet = await invoke(bucket, {});
    expect(quiet.ocsp).toEqual([]);
    expect(quiet.summary.due).toBe(0);
    expect(Object.keys(await stateItems(bucket))).toContain('d/new cert+1.pem');
  });

  it('should ignore other S3 events (a removed certificate) and notifications for another bucket', async () => {
    const removed = objectCreated(bucket, 'certs/a/good.pem');
    removed.Records[0]!.eventName = 'ObjectRemoved:Delete';
    const elsewhere = objectCreated('some-other-bucket', 'certs/a/good.pem');
    for (const event of [removed, elsewhere]) {
      const res = await invoke(bucket, event);
      expect(res.report.results).toEqual([]);
      expect(res.ocsp).toEqual([]);
    }
  });

  it('should renew a certificate when its missing <name>.issuer.pem arrives', async () => {
    await put(bucket, 'certs/e/lonely.pem', await pem(pki.leaves.mustStaple.cert)); // no issuer anywhere reachable
    const first = await invoke(bucket, objectCreated(bucket, 'certs/e/lonely.pem'));
    expect(row(first.report, 'e/lonely.pem')).toMatchObject({ action: 'failed', stage: 'issuer' });

    await put(bucket, 'certs/e/lonely.issuer.pem', await pem(pki.intermediate.cert));
    const res = await invoke(bucket, objectCreated(bucket, 'certs/e/lonely.issuer.pem'));
    expect(res.report.results.map((r) => [r.key, r.action])).toEqual([['e/lonely.pem', 'renewed']]);
    expect(await listKeys(bucket, 'staples/e/')).toEqual(['staples/e/lonely.ocsp']);
  });

  it('should ignore objects outside the certs prefix and non-certificate keys', async () => {
    await put(bucket, 'uploads/x.pem', await pem(pki.leaves.good.bundle));
    const res = await invoke(bucket, objectCreated(bucket, 'uploads/x.pem', 'certs/notes.txt'));
    expect(res.report.results).toEqual([]);
    expect(res.ocsp).toEqual([]);
    expect(res.s3.byCommand.PutObjectCommand).toBeUndefined();
    expect(await listKeys(bucket, 'staples/uploads')).toEqual([]);
  });
});

describe('handler: dry runs and invalid events', () => {
  it('should decide and report on a fresh bucket without fetching or writing anything', async () => {
    const bucket = await newBucket();
    await uploadFullSet(bucket);
    const dry = await invoke(bucket, { mode: 'scheduled', dryRun: true });
    expect(dry.report.dryRun).toBe(true);
    expect(names(dry.report, 'due')).toEqual([...FULL_SET_OCSP_CAPABLE].sort());
    for (const name of FULL_SET_OCSP_CAPABLE)
      expect(row(dry.report, name).reason).toBe('would renew: no staple');
    expect(dry.ocsp).toEqual([]);
    expect(dry.s3.byCommand.PutObjectCommand).toBe(1); // the run report, nothing else;
    expect(await listKeys(bucket, 'staples/')).toEqual([]);
    expect(await listKeys(bucket, 'state/')).toEqual([]);
  });

  it.each([
    ['an unknown mode', { mode: 'bogus' }, /unsupported mode "bogus"/],
    ['an unknown field', { foo: 1 }, /unsupported event field\(s\): foo/],
    ['a string', 'string', /event must be a JSON object/],
    ['an array', [], /event must be a JSON object/],
    ['force with no keys', { mode: 'force', keys: [] }, /keys must be a non-empty array of strings/],
    [
      'force with keys and a prefix',
      { mode: 'force', keys: ['a.pem'], prefix: 'a/' },
      /keys or prefix, not both/,
    ],
    ['scheduled with keys', { mode: 'scheduled', keys: ['a.pem'] }, /go with \{"mode":"force"\}/],
    ['a non-boolean dryRun', { dryRun: 'yes' }, /dryRun must be a boolean/],
  ])('should reject %s before touching S3', async (_what, event, message) => {
    const bucket = await newBucket();
    await uploadHealthySet(bucket);
    const attempt = invoke(bucket, event);
    await expect(attempt).rejects.toBeInstanceOf(EventError);
    await expect(attempt).rejects.toThrow(message);
    expect(s3Requests.total).toBe(0);
    expect(ocspRequests).toEqual([]);
    expect(await listKeys(bucket, 'staples/')).toEqual([]);
    expect(await listKeys(bucket, 'state/')).toEqual([]);
  });
});

describe('handler: the Lambda deadline', () => {
  it('should stop taking certificates when the remaining time drops below the reserve, and finish next run', async () => {
    const bucket = await newBucket();
    await uploadHealthySet(bucket);
    // One certificate at a time; plenty of time until K responders have answered, then 1 s left
    // (a certificate starts only with one HTTP timeout left beyond the 5 s reserve).
    const K = 2;
    const answersBefore = ocspAnswers;
    const context = {
      getRemainingTimeInMillis: () => (ocspAnswers - answersBefore < K ? 600_000 : 1_000),
    };

    const cut = await invoke(bucket, {}, { context, env: { CONCURRENCY: '1' } });
    expect(cut.report.results.map((r) => r.key)).toEqual(HEALTHY.slice(0, K));
    expect(cut.report.notReached).toEqual(HEALTHY.slice(K));
    expect(cut.ocsp).toHaveLength(K);
    const emf = cut.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l._aws);
    expect(emf).toMatchObject({ NotReached: HEALTHY.length - K, Renewed: K });
    expect(await listKeys(bucket, 'staples/')).toEqual(HEALTHY.slice(0, K).map(stapleOf).sort());

    // The first run over the table seeds it; the certificates it did not reach have no item yet,
    // so the next run seeds again (the table is marked seeded only once nothing was left).
    const rest = await invoke(bucket, {}, { context: { getRemainingTimeInMillis: () => 600_000 } });
    expect(rest.report.notReached).toEqual([]);
    expect(names(rest.report, 'renewed')).toEqual(HEALTHY.slice(K));
    expect(Object.keys(await stateItems(bucket)).sort()).toEqual([...HEALTHY].sort());
    expect(rest.ocsp).toHaveLength(HEALTHY.length - K);
    expect(await listKeys(bucket, 'staples/')).toEqual(HEALTHY.map(stapleOf).sort());
  });
});

describe('handler: configuration from the injected env', () => {
  it('should honour OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS from deps.env, not only process.env', async () => {
    vi.stubEnv('OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS', '');
    try {
      const bucket = await newBucket();
      await put(bucket, 'certs/good.pem', await pem(pki.leaves.good.bundle));
      const logs: string[] = [];
      // No transport injected: the handler builds its own from the configuration.
      const handler = recorded(createHandler({ env: handlerEnv(bucket), s3: counted, dynamodb: ddb }), (l) =>
        logs.push(l),
      );
      const report = await handler({});
      expect(row(await readRunReport(report), 'good.pem')).toMatchObject({ action: 'renewed' });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

// Stops and restarts the shared responder: keep this describe last.
describe('handler: ON_REVOKED=withhold after a good staple', () => {
  it('should delete the good staple, write the .withheld marker, keep saying withheld, and drop the marker once a staple is published', async () => {
    const bucket = await newBucket();
    await put(bucket, 'certs/a/revoked.pem', await pem(pki.leaves.revoked.bundle));
    const good = await goodResponseBeforeRevocation(pki, pki.leaves.revoked.cert, work);
    await put(bucket, 'staples/a/revoked.ocsp', good);
    expect(await opensslVerify(good, pki.leaves.revoked.cert, pki)).toMatch(/: good/);
    const withhold = { env: { ON_REVOKED: 'withhold' } };

    const res = await invoke(bucket, { mode: 'force', keys: ['a/revoked.pem'] }, withhold);
    expect(row(res.report, 'a/revoked.pem')).toMatchObject({ action: 'withheld', certStatus: 'revoked' });
    expect(res.report.counts).toMatchObject({ withheld: 1, failed: 0 });
    expect(res.s3.byCommand.DeleteObjectCommand).toBe(1);
    expect(await listKeys(bucket, 'staples/')).toEqual(['staples/a/revoked.ocsp.withheld']);
    expect((await getBytes(bucket, 'staples/a/revoked.ocsp.withheld')).toString()).toMatch(
      /^withheld: certificate revoked \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\)\n$/,
    );

    // A scheduled run: not due, so no OCSP request, no write; the item still says withheld.
    const quiet = await invoke(bucket, {}, withhold);
    expect(quiet.ocsp).toEqual([]);
    expect(quiet.s3.byCommand.PutObjectCommand ?? 0).toBe(0);
    expect((await stateItems(bucket))['a/revoked.pem']).toMatchObject({
      action: 'withheld',
      certStatus: 'revoked',
    });

    // Published (the default): the revoked staple is written and the marker goes.
    const published = await invoke(bucket, { mode: 'force', keys: ['a/revoked.pem'] });
    expect(row(published.report, 'a/revoked.pem')).toMatchObject({
      action: 'renewed',
      certStatus: 'revoked',
    });
    expect(await listKeys(bucket, 'staples/')).toEqual(['staples/a/revoked.ocsp']);
    expect(
      await opensslVerify(await getBytes(bucket, 'staples/a/revoked.ocsp'), pki.leaves.revoked.cert, pki),
    ).toMatch(/: revoked/);
  });

  it('should not spend a delete request on a marker the state shows is absent', async () => {
    const bucket = await newBucket();
    await put(bucket, 'certs/a/good.pem', await pem(pki.leaves.good.bundle));
    // A certificate seen for the first time: its marker, if any, is removed (one DeleteObject).
    await invoke(bucket, { mode: 'force', keys: ['a/good.pem'] });
    await nextSecond();
    const res = await invoke(bucket, { mode: 'force', keys: ['a/good.pem'] });
    expect(row(res.report, 'a/good.pem').action).toBe('renewed');
    expect(res.s3.byCommand.DeleteObjectCommand ?? 0).toBe(0);
  });
});

describe('handler: one failing responder fails its certificates only', () => {
  let bucket: string;

  beforeAll(async () => {
    bucket = await newBucket();
    await uploadHealthySet(bucket);
    await put(bucket, 'certs/dead.pem', deadLeafBundle);
  });

  it('should fail a certificate whose responder refuses connections at the fetch stage and renew the rest', async () => {
    const res = await invoke(bucket, {});
    expect(names(res.report, 'renewed')).toEqual([...HEALTHY].sort());
    const dead = row(res.report, 'dead.pem');
    expect(dead).toMatchObject({ action: 'failed', stage: 'fetch' });
    expect(dead.reason).toContain(deadOcspUrl);
    expect(dead.reason).toMatch(/ECONNREFUSED/);
    expect(await listKeys(bucket, 'staples/')).toEqual(HEALTHY.map(stapleOf).sort());
    expect(JSON.parse(res.logs.find((l) => l.includes('"run report"'))!)).toMatchObject({ level: 'WARN' });
  });

  it('should keep the stored staples byte for byte while the responder is down', async () => {
    const before = await Promise.all(HEALTHY.map((n) => getBytes(bucket, stapleOf(n))));
    const tags = await etags(bucket, 'staples/');
    await responder.stop();
    try {
      await nextSecond();
      const res = await invoke(bucket, { mode: 'force', keys: [...HEALTHY, 'dead.pem'] });
      expect(res.report.counts).toMatchObject({ failed: HEALTHY.length + 1, renewed: 0 });
      for (const name of HEALTHY) {
        expect(row(res.report, name)).toMatchObject({ action: 'failed', stage: 'fetch' });
        // The row still describes the staple that is being served.
        expect(row(res.report, name).nextUpdate).toBeDefined();
      }
      expect(res.s3.byCommand.PutObjectCommand).toBe(1); // the run report, no staple (failure counts: the table)
      const after = await Promise.all(HEALTHY.map((n) => getBytes(bucket, stapleOf(n))));
      after.forEach((bytes, i) => expect(bytes.equals(before[i]!), HEALTHY[i]).toBe(true));
      expect(await etags(bucket, 'staples/')).toEqual(tags);

      // The next scheduled run: valid staples that are not due stay as they are (the failure
      // noted in their items); nothing is fetched.
      const next = await invoke(bucket, {});
      expect(next.ocsp).toEqual([]);
      const items = await stateItems(bucket);
      for (const name of HEALTHY) {
        expect(items[name], name).toMatchObject({ failures: 1, lastError: expect.stringMatching(/^fetch /) });
      }
      expect(await etags(bucket, 'staples/')).toEqual(tags);
    } finally {
      responder = await startDelegatedResponder(pki);
    }
  });
});

type EmfLine = Record<string, unknown> & { _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] } };
const emfOf = (logs: string[]): EmfLine => {
  const lines = logs.map((l) => JSON.parse(l) as Partial<EmfLine>).filter((l) => l._aws);
  expect(lines).toHaveLength(1);
  return lines[0] as EmfLine;
};

describe('handler: the alarm metrics', () => {
  const PAGE = { STATUS_PAGE_KEY: 'reports/status.html' };
  let bucket: string;
  let first: Invocation;

  beforeAll(async () => {
    bucket = await newBucket();
    await uploadHealthySet(bucket);
    await put(bucket, 'certs/dead.pem', deadLeafBundle);
    first = await invoke(bucket, {}, { env: PAGE });
  });

  it('should count a failing certificate that has no staple in FailingWithoutStaple', () => {
    const emf = emfOf(first.logs);
    expect(emf).toMatchObject({ FailingWithoutStaple: 1, Failed: 1, Renewed: HEALTHY.length });
    expect(emf._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)).toContain('FailingWithoutStaple');
    // And one log line for the dashboard's "last failing certificates" query.
    const failures = first.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.message === 'certificate failed');
    expect(failures).toEqual([
      expect.objectContaining({
        level: 'WARN',
        certificate: 'dead.pem',
        stage: 'fetch',
        reason: expect.stringMatching(/ECONNREFUSED/) as unknown,
      }),
    ]);
  });

  it('should not emit the heartbeat metric (Renewed) or write a page on a dry run', async () => {
    const dryBucket = await newBucket();
    await uploadHealthySet(dryBucket);
    const dry = await invoke(dryBucket, { dryRun: true }, { env: PAGE });
    const emf = emfOf(dry.logs);
    expect(emf.Renewed).toBeUndefined();
    expect(emf._aws.CloudWatchMetrics[0]!.Metrics.map((m) => m.Name)).not.toContain('Renewed');
    expect(emf).toMatchObject({ Failed: 0, FailingWithoutStaple: 0 });
    expect(await listKeys(dryBucket, 'reports/status.html')).toEqual([]);
  });

  it('should write reports/status.html from the state table after a scheduled run, at most hourly', async () => {
    const page = (await getBytes(bucket, 'reports/status.html')).toString('utf8');
    for (const name of ['dead.pem', ...HEALTHY]) expect(page).toContain(name);
    expect(page).toContain('ECONNREFUSED'); // the failing certificate's reason is shown
    // Within the hour: one GetItem for the page's marker, no Scan, the page untouched.
    const before = (await etags(bucket, 'reports/status.html'))['reports/status.html'];
    const soon = await invoke(bucket, {}, { env: PAGE });
    expect(soon.ddb.byCommand.ScanCommand).toBeUndefined();
    expect((await etags(bucket, 'reports/status.html'))['reports/status.html']).toBe(before);
    // An hour later: one Scan of the table, and a new page.
    const later = new Date(Date.now() + 61 * 60_000);
    const next = await invoke(bucket, {}, { env: PAGE, clock: () => later });
    expect(next.ddb.byCommand.ScanCommand).toBe(1);
    expect((await etags(bucket, 'reports/status.html'))['reports/status.html']).not.toBe(before);
  });
});
