/**
 * The handler against its limits, with real peers on loopback: s3rver, `openssl ocsp` for the
 * healthy certificates, and a responder that never answers (a plain node:http server that holds
 * every request open) for the slow ones.
 *
 * - The Lambda deadline: requests are cut at the time left, a certificate queued behind the slow
 *   host is not started, and the state items written while a request still hangs already hold
 *   every certificate decided (a run the Lambda kills loses nothing).
 * - The run report: thousands of failing rows go to the report object, never to a log line.
 */
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../lambda/aws/handler.js';
import { MAX_LOG_LINE_BYTES } from '../lambda/aws/log-line.js';
import { renewerLogger } from '../lambda/aws/telemetry.js';
import { captureOutput, capturing, recorded } from './helpers/lambda-output.js';
import { readRunReport, SUMMARY_FAILURES, type RunSummary } from '../lambda/aws/run-summary.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { DynamoStateStore, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { ScanCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { StateEntry, RunReport } from '../lambda/renew/ports.js';

/** A responder that never answers: every request stays open until the client gives up. */
interface HangingResponder {
  url: string;
  /** Every request received, with whether its connection has closed since. */
  requests: { path: string; closed: boolean }[];
  stop(): Promise<void>;
}

async function startHangingResponder(): Promise<HangingResponder> {
  const requests: HangingResponder['requests'] = [];
  const server = http.createServer((req) => {
    const entry = { path: req.url ?? '', closed: false };
    requests.push(entry);
    req.socket.on('close', () => (entry.closed = true));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let pki: TestPki;
let s3: S3Server;
let dynamo: DynamoServer;
let ddb: DynamoDBClient;
let admin: S3Client;
let responder: OpensslResponder;
let hanging: HangingResponder;
let work: string;

beforeAll(async () => {
  [pki, s3, hanging, work, dynamo] = await Promise.all([
    makeTestPki(),
    startS3Server({ buckets: [] }),
    startHangingResponder(),
    mkdtemp(join(tmpdir(), 'ocsp-renewer-deadline-')),
    startDynalite(),
  ]);
  ddb = dynamo.client();
  responder = await startDelegatedResponder(pki);
  admin = s3.client();
}, 120_000);

afterAll(async () => {
  admin?.destroy();
  ddb?.destroy();
  await Promise.all([responder?.stop(), s3?.stop(), hanging?.stop(), dynamo?.stop()]);
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

let bucketSeq = 0;
async function newBucket(): Promise<string> {
  const bucket = `deadline-${++bucketSeq}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  await dynamo.createTable(stateTableDefinition(bucket));
  return bucket;
}

async function put(bucket: string, key: string, body: string | Buffer): Promise<void> {
  await admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body) }));
}

/**
 * The state object's certificates; undefined while there is none. s3rver (unlike S3) writes an
 * object in place, so a read racing a write may see part of it: that also reads as undefined.
 */
async function stateOf(bucket: string): Promise<Record<string, StateEntry> | undefined> {
  const res = await ddb.send(new ScanCommand({ TableName: bucket, ConsistentRead: true }));
  const keys = (res.Items ?? []).map((item) => item.certKey!.S!).filter((k) => !k.startsWith('#'));
  if (keys.length === 0) return undefined;
  return Object.fromEntries(await new DynamoStateStore(ddb, bucket).load(keys));
}

/** Re-signs the good leaf's CSR with the given AIA OCSP URLs (leaf + intermediate, PEM). */
async function leafWithOcsp(name: string, serial: string, urls: string[]): Promise<string> {
  const ext = join(work, `${name}.cnf`);
  await writeFile(
    ext,
    [
      `[ ${name} ]`,
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = serverAuth',
      'authorityKeyIdentifier = keyid:always',
      `subjectAltName = DNS:${name}.test`,
      `authorityInfoAccess = ${urls.map((u) => `OCSP;URI:${u}`).join(', ')}`,
      '',
    ].join('\n'),
  );
  const cert = join(work, `${name}.pem`);
  await openssl([
    'x509', '-req', '-in', join(pki.dir, 'good.csr'),
    '-CA', pki.intermediate.cert, '-CAkey', pki.intermediate.key,
    '-set_serial', serial, '-days', '30',
    '-extfile', ext, '-extensions', name, '-out', cert,
  ]); // prettier-ignore
  return (await readFile(cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8'));
}

const HEALTHY = ['a/good.pem', 'a/revoked.pem', 'b/ec.crt', 'b/must-staple.pem'];

async function uploadHealthySet(bucket: string): Promise<void> {
  const l = pki.leaves;
  await Promise.all([
    put(bucket, 'certs/a/good.pem', await readFile(l.good.bundle)),
    put(bucket, 'certs/a/revoked.pem', await readFile(l.revoked.bundle)),
    put(bucket, 'certs/b/ec.crt', await readFile(l.ec.bundle)),
    put(bucket, 'certs/b/must-staple.pem', await readFile(l.mustStaple.bundle)),
  ]);
}

function envFor(bucket: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    BUCKET: bucket,
    STATE_TABLE: bucket,
    OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
    ...s3.env,
    ...extra,
  };
}

const parsed = (logs: string[]) => logs.map((l) => JSON.parse(l) as Record<string, unknown>);

describe('handler: the Lambda deadline with a responder that never answers', () => {
  /** The HTTP timeout (s) and the time left beyond it when the run starts (s, less than T). */
  const T = 4;
  const D = 3;
  let bucket: string;
  let summary: RunSummary;
  let report: RunReport;
  let logs: string[];
  /** The state object as a reader saw it while a request still hung. */
  let midRun: Record<string, StateEntry> | undefined;
  let settledWhenRead: boolean;
  let openWhenRead: number;

  beforeAll(async () => {
    bucket = await newBucket();
    await uploadHealthySet(bucket);
    // slow/1: two URLs on the hanging host; slow/2: one, queued behind slow/1 for the host's slot.
    await put(
      bucket,
      'certs/slow/1.pem',
      await leafWithOcsp('slow1', '0x51040001', [`${hanging.url}/a`, `${hanging.url}/b`]),
    );
    await put(bucket, 'certs/slow/2.pem', await leafWithOcsp('slow2', '0x51040002', [`${hanging.url}/c`]));

    // Five certificates at a time (the four healthy ones and slow/1, in key order); slow/2 starts
    // when the first healthy one is done, and waits for the hanging host's only slot. slow/1's
    // first URL takes the whole timeout T; then D < T seconds are left, so slow/2 is not started
    // and slow/1's second URL is cut at the deadline.
    const reserveMs = 5_000;
    const deadline = Date.now() + reserveMs + (T + D) * 1000;
    logs = [];
    const handler = recorded(
      createHandler({
        env: envFor(bucket, {
          HTTP_TIMEOUT_SECONDS: String(T),
          CONCURRENCY: '5',
          PER_HOST_CONCURRENCY: '1',
        }),
        s3: admin,
        dynamodb: ddb,
      }),
      (line) => logs.push(line),
    );
    let settled = false;
    const running = handler(
      { mode: 'scheduled' },
      { getRemainingTimeInMillis: () => deadline - Date.now(), awsRequestId: 'deadline-test-1' },
    ).finally(() => (settled = true));

    // "Killed": read the state items while the handler still awaits a hung request.
    for (let i = 0; i < 200 && !settled; i++) {
      const certs = await stateOf(bucket);
      if (certs && HEALTHY.every((k) => certs[k])) {
        midRun = certs;
        settledWhenRead = settled;
        openWhenRead = hanging.requests.filter((r) => !r.closed).length;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    summary = await running;
    report = await readRunReport(admin, summary.report!);
  }, 120_000);

  it('should have saved every decided certificate while a request still hung', () => {
    expect(midRun, 'the state table never held the healthy certificates during the run').toBeDefined();
    expect(settledWhenRead).toBe(false);
    expect(openWhenRead).toBe(1);
    for (const key of HEALTHY) expect(midRun![key]).toMatchObject({ failures: 0, action: 'renewed' });
    expect(midRun!['slow/1.pem']).toBeUndefined();
  });

  it('should cut the second request at the deadline and report the certificate failed, saying why', () => {
    const slow = report.results.find((r) => r.key === 'slow/1.pem');
    expect(slow).toMatchObject({ action: 'failed', stage: 'fetch' });
    expect(slow!.reason).toMatch(
      new RegExp(
        `^fetch slow/1\\.pem: run deadline: ${hanging.url}/b: cut after \\d+ ms: the run's deadline came ` +
          `\\(before: ${hanging.url}/a: timed out after ${T * 1000} ms\\); the next run asks again$`,
      ),
    );
    // Both requests reached the hanging host, and both were aborted by the client.
    const paths = hanging.requests.map((r) => r.path.split('/')[1]);
    expect(paths).toEqual(['a', 'b']);
    expect(hanging.requests.every((r) => r.closed)).toBe(true);
  });

  it('should leave the certificate queued behind the slow host for the next run, never asked', () => {
    expect(report.notReached).toEqual(['slow/2.pem']);
    expect(summary.notReached).toBe(1);
    expect(hanging.requests.some((r) => r.path.startsWith('/c'))).toBe(false);
    const emf = parsed(logs).find((l) => l._aws);
    expect(emf).toMatchObject({ NotReached: 1, Failed: 1, Renewed: HEALTHY.length });
    // Every log line names the invocation (Powertools' Lambda context keys).
    expect(parsed(logs).find((l) => l.message === 'run report')).toMatchObject({
      level: 'WARN',
      notReached: 1,
      function_request_id: 'deadline-test-1',
    });
  });

  it('should renew the healthy certificates and keep no backoff for the deadline', async () => {
    expect(summary.counts).toMatchObject({ renewed: HEALTHY.length, failed: 1 });
    const certs = await stateOf(bucket);
    for (const key of HEALTHY) expect(certs![key]).toMatchObject({ failures: 0 });
    // Not the responder's fault: no failure counted, no entry at all for a first try.
    expect(certs!['slow/1.pem']).toBeUndefined();
    expect(certs!['slow/2.pem']).toBeUndefined();
  });

  it('should name the report object after the start time and the request id', () => {
    expect(summary.report).toBe(`s3://${bucket}/reports/runs/${summary.startedAt}-deadline.json`);
  });
});

describe('handler: a run with thousands of failing certificates', () => {
  const N = 2_000;
  let bucket: string;
  let lines: string[];
  let summary: RunSummary;

  beforeAll(async () => {
    bucket = await newBucket();
    const keys = Array.from({ length: N }, (_, i) => `certs/bad/${String(i).padStart(4, '0')}.pem`);
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k) => put(bucket, k, 'this is not a certificate\n')));
    }
    // The handler's own Logger and Metrics: stdout and stderr, as in Lambda.
    const output = captureOutput();
    try {
      summary = await createHandler({ env: envFor(bucket), s3: admin, dynamodb: ddb })({ mode: 'scheduled' });
    } finally {
      output.restore();
    }
    lines = output.lines;
  }, 300_000);

  it('should keep every output line under 200 KB, the summary listing only the first failures', () => {
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThan(200 * 1024);
    const runReport = parsed(lines).find((l) => l.message === 'run report')!;
    expect(runReport).toMatchObject({ level: 'WARN', counts: { failed: N }, notReached: 0 });
    expect(runReport.failures).toHaveLength(SUMMARY_FAILURES);
    expect((runReport.failures as { key: string }[])[0]).toMatchObject({
      key: 'bad/0000.pem',
      stage: 'parse',
    });
    expect(runReport.report).toBe(summary.report);
    // The metrics line is intact.
    expect(parsed(lines).find((l) => l._aws)).toMatchObject({ Failed: N });
    expect(parsed(lines).filter((l) => l.message === 'certificate failed')).toHaveLength(50);
  });

  it('should hold every row in the run report object', async () => {
    const report = await readRunReport(admin, summary.report!);
    expect(report.results).toHaveLength(N);
    expect(new Set(report.results.map((r) => r.key)).size).toBe(N);
    for (const r of report.results) {
      expect(r).toMatchObject({ action: 'failed', stage: 'parse' });
      expect(r.reason).toMatch(/^parse bad\/\d{4}\.pem: not a certificate/);
    }
    // What the old single log line would have carried: more than a log line may hold.
    expect(Buffer.byteLength(JSON.stringify(report.results))).toBeGreaterThan(MAX_LOG_LINE_BYTES);
  });
});

describe('handler: the run report object cannot be written', () => {
  it('should log it and finish the run, the summary saying there is no report', async () => {
    const bucket = await newBucket();
    await put(bucket, 'certs/a/good.pem', await readFile(pki.leaves.good.bundle));
    const logs: string[] = [];
    // A key segment longer than any file name: s3rver cannot store it.
    const env = envFor(bucket, { REPORTS_PREFIX: `${'x'.repeat(300)}/` });
    const summary = await recorded(createHandler({ env, s3: admin, dynamodb: ddb }), (l) => logs.push(l))({});
    expect(summary.report).toBeNull();
    expect(summary.counts).toMatchObject({ renewed: 1, failed: 0 });
    expect(parsed(logs).find((l) => l.message === 'cannot write the run report')).toMatchObject({
      level: 'WARN',
      key: expect.stringMatching(new RegExp(`^s3://${bucket}/x{300}/runs/`)) as unknown,
    });
    // Powertools leaves a null out of the line: no `report` key, no report object.
    const line = parsed(logs).find((l) => l.message === 'run report');
    expect(line).toMatchObject({ level: 'INFO', counts: { renewed: 1 } });
    expect(line).not.toHaveProperty('report');
    // The staple and the state are written all the same.
    const listed = await admin.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual([
      'certs/a/good.pem',
      'staples/a/good.ocsp',
    ]);
    expect(await stateOf(bucket)).toMatchObject({ 'a/good.pem': { failures: 0 } });
  });
});

describe('the Logger: no line over MAX_LOG_LINE_BYTES (capLogLine)', () => {
  /** What renewerLogger writes for `info(message, { pad })`. */
  async function lineWith(message: string, pad: string): Promise<string[]> {
    const { output } = await capturing(async () => renewerLogger().info(message, { pad }));
    return output.lines;
  }

  it('should pass a line of exactly the cap unchanged, Powertools keys included', async () => {
    // (Powertools leaves an empty string out of the line: measure with one character.)
    const [short] = await lineWith('x', 'a');
    const pad = 'a'.repeat(MAX_LOG_LINE_BYTES - Buffer.byteLength(short!) + 1);
    const lines = await lineWith('x', pad);
    expect(lines).toHaveLength(1);
    expect(Buffer.byteLength(lines[0]!)).toBe(MAX_LOG_LINE_BYTES);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'INFO', message: 'x', pad });
    // One byte more is cut.
    const [over] = await lineWith('x', `${pad}a`);
    expect(JSON.parse(over!)).toMatchObject({
      message: 'log line too long; cut',
      bytes: MAX_LOG_LINE_BYTES + 1,
    });
  });

  it('should replace a longer line by a short warning with its size and first characters', async () => {
    const [short] = await lineWith('run report', 'é');
    const pad = 'é'.repeat(150 * 1024);
    const lines = await lineWith('run report', pad);
    expect(lines).toHaveLength(1);
    expect(Buffer.byteLength(lines[0]!)).toBeLessThan(MAX_LOG_LINE_BYTES);
    const cut = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(cut).toEqual({
      level: 'WARN',
      message: 'log line too long; cut',
      timestamp: expect.any(String) as unknown,
      service: 'ocsp-renewer',
      bytes: Buffer.byteLength(short!) - Buffer.byteLength('é') + Buffer.byteLength(pad),
      limit: MAX_LOG_LINE_BYTES,
      head: expect.stringMatching(/^\{"level":"INFO","message":"run report",.*"pad":"éé/) as unknown,
    });
    expect((cut.head as string).length).toBe(4_000);
  });
});
