/**
 * What the deployed design costs a month, from request counts measured here against real peers
 * (s3rver, dynalite, `openssl ocsp`) — never estimated by hand. Each scenario runs the real
 * handler with counting clients: a quiet scheduled run, a scheduled run that renews, an upload
 * batch, and a reconcile map child over certificates that are all fresh. `monthlyCost` turns
 * those counts into dollars at 10², 10⁴ and 10⁶ certificates, and docs/aws.md must carry exactly
 * the table it prints (between its cost markers): the docs cannot drift from what was measured.
 */
import { readFile } from 'node:fs/promises';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { createHandler } from '../lambda/aws/handler.js';
import { countRequests } from './helpers/count-requests.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { startCaSignedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { HOUR } from './helpers/time.js';
import { silentTelemetry } from './helpers/lambda-output.js';

const BUCKET = 'cost';
/** Certificates per measured scenario: enough to tell the per-certificate part from the constant. */
const K = 4;

let pki: TestPki;
let responder: OpensslResponder;
let s3: S3Server;
let dynamo: DynamoServer;
let admin: S3Client;
let chainPem: string;

beforeAll(async () => {
  pki = await makeTestPki();
  [responder, s3, dynamo] = await Promise.all([
    startCaSignedResponder(pki, 1),
    startS3Server({ buckets: [BUCKET] }),
    startDynalite(),
  ]);
  admin = s3.client();
  chainPem = (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8'));
}, 120_000);

afterAll(async () => {
  admin?.destroy();
  await Promise.all([responder?.stop(), dynamo?.stop()]);
  await s3?.stop();
  await pki?.cleanup();
});

type Counts = Record<string, number>;
interface Measured {
  s3: Counts;
  ddb: Counts;
}

/** A prefix with `n` certificates and a table; `run(event, at)` invokes the handler, counted. */
async function place(name: string, n: number) {
  const table = `cost-${name}`;
  await dynamo.createTable(stateTableDefinition(table));
  const certs = `${name}/certs/`;
  const keys = Array.from({ length: n }, (_, i) => `c${i}.pem`);
  for (const key of keys) {
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: certs + key, Body: Buffer.from(chainPem) }));
  }
  const s3Client = s3.client();
  const ddb: DynamoDBClient = dynamo.client();
  const s3Count = countRequests(s3Client);
  const ddbCount = countRequests(ddb);
  const run = async (event: unknown, at: Date): Promise<Measured> => {
    s3Count.reset();
    ddbCount.reset();
    await createHandler({
      env: {
        BUCKET,
        CERTS_PREFIX: certs,
        STAPLES_PREFIX: `${name}/staples/`,
        REPORTS_PREFIX: `${name}/reports/`,
        STATE_TABLE: table,
        OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
      },
      s3: s3Client,
      dynamodb: ddb,
      clock: () => at,
      ...silentTelemetry(),
    })(event);
    return { s3: { ...s3Count.byCommand }, ddb: { ...ddbCount.byCommand } };
  };
  return { certs, keys, run };
}

const sum = (c: Counts) => Object.values(c).reduce((a, b) => a + b, 0);

/** AWS list prices, us-east-1, on-demand, no free tier (as of 2026). */
export const PRICES = {
  s3Put: 0.005 / 1_000, // PUT, COPY, POST, LIST
  s3Get: 0.0004 / 1_000, // GET, HEAD and others
  ddbWrite: 0.625 / 1e6, // per write request unit (items ≤ 1 KB)
  ddbRead: 0.125 / 1e6, // per read request unit (strongly consistent, ≤ 4 KB; counted per request)
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334, // arm64
  sfnTransition: 0.025 / 1_000, // standard workflows, each child execution's transitions included
  alarm: 0.1, // standard-resolution metric alarm, a month
  metric: 0.3, // custom metric (EMF), a month
  dashboard: 3, // a month
} as const;

/** Write units per PutItem: the item (≤ 1 KB) and its due-index entry replaced (a delete and a put). */
const WRITE_UNITS_PER_PUT = 3;

/**
 * The model. Per month: 2 880 scheduled runs (rate(15 minutes)); each certificate renewed every
 * 3.5 days (a week's responses refreshed at half their window: ~8.6 a month); a daily reconcile
 * map run over every certificate (250 keys a child); the stack's 10 alarms. Lambda time is an
 * assumption, not a measurement: 1 GB for 0.5 s a quiet run, 0.05 s more per renewal, 1 s per
 * reconcile child. Uploads are extra, per upload (one queue message, measured below). The EMF
 * metrics (7) and the dashboard are the same as the old default's; they are a line of their own.
 */
export function monthlyCost(n: number, m: { quietRun: Measured; perRenewal: Measured; perChild: Measured }) {
  const runs = 2_880;
  const renewals = n * (30 / 3.5);
  const children = 30 * Math.ceil(n / 250);
  const listings = 30 * Math.ceil(n / 1_000);
  const s3Puts = (c: Counts) =>
    (c.PutObjectCommand ?? 0) + (c.ListObjectsV2Command ?? 0) + (c.DeleteObjectCommand ?? 0);
  const s3Gets = (c: Counts) => (c.GetObjectCommand ?? 0) + (c.HeadObjectCommand ?? 0);
  const ddbWrites = (c: Counts) => (c.PutItemCommand ?? 0) + (c.DeleteItemCommand ?? 0);
  const ddbReads = (c: Counts) =>
    (c.QueryCommand ?? 0) + (c.GetItemCommand ?? 0) + (c.BatchGetItemCommand ?? 0);
  const s3 =
    (runs * s3Puts(m.quietRun.s3) +
      renewals * s3Puts(m.perRenewal.s3) +
      children * s3Puts(m.perChild.s3) +
      listings) *
      PRICES.s3Put +
    (runs * s3Gets(m.quietRun.s3) + renewals * s3Gets(m.perRenewal.s3) + children * s3Gets(m.perChild.s3)) *
      PRICES.s3Get;
  const dynamodb =
    (runs * ddbWrites(m.quietRun.ddb) +
      renewals * ddbWrites(m.perRenewal.ddb) +
      children * ddbWrites(m.perChild.ddb)) *
      WRITE_UNITS_PER_PUT *
      PRICES.ddbWrite +
    // A child's BatchGetItem reads up to 100 items: one read unit each.
    (runs * ddbReads(m.quietRun.ddb) + renewals * ddbReads(m.perRenewal.ddb) + children * 250) *
      PRICES.ddbRead;
  const lambda =
    (runs + children) * PRICES.lambdaRequest +
    (runs * 0.5 + renewals * 0.05 + children * 1) * PRICES.lambdaGbSecond;
  // A reconcile: the parent's states (Defaults, ForceDefault, Source, the map, Summarise) and
  // each child's (start, its Task).
  const stepFunctions = (30 * 5 + children * 2) * PRICES.sfnTransition;
  const alarms = 10 * PRICES.alarm;
  const metricsAndDashboard = 7 * PRICES.metric + PRICES.dashboard;
  const total = s3 + dynamodb + lambda + stepFunctions + alarms + metricsAndDashboard;
  return { s3, dynamodb, lambda, stepFunctions, alarms, metricsAndDashboard, total };
}

const dollars = (x: number) => (x < 0.01 ? '< $0.01' : `$${x.toFixed(2)}`);

export function costTable(m: Parameters<typeof monthlyCost>[1]): string {
  const rows = [100, 10_000, 1_000_000].map((n) => {
    const c = monthlyCost(n, m);
    return `| ${n.toLocaleString('en-US')} | ${dollars(c.s3)} | ${dollars(c.dynamodb)} | ${dollars(c.lambda)} | ${dollars(c.stepFunctions)} | ${dollars(c.alarms)} | ${dollars(c.metricsAndDashboard)} | **${dollars(c.total)}** |`;
  });
  return [
    '| certificates | S3 | DynamoDB | Lambda | Step Functions | alarms | metrics, dashboard | a month |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

describe('the monthly cost, from measured request counts', () => {
  let measured: { quietRun: Measured; perRenewal: Measured; perChild: Measured; perUpload: Measured };

  beforeAll(async () => {
    const t0 = new Date();
    // A scheduled run that renews K certificates (the first run over a table also seeds it: list,
    // read the items, the old state object; measured apart), then a quiet one.
    const due = await place('due', K);
    await due.run({ mode: 'due' }, t0); // seeds and renews all: the first run after a deploy
    const quietRun = await due.run({ mode: 'due' }, new Date(t0.getTime() + HOUR));
    // openssl ocsp signs with second-resolution times: a response from the same second as the
    // staple is no newer. The next second, then well past every refresh point (12 h ± 10 %).
    await new Promise((r) => setTimeout(r, 1_100));
    const renewing = await due.run({ mode: 'due' }, new Date(t0.getTime() + 20 * HOUR));
    const perRenewal = (c: Counts, q: Counts) =>
      Object.fromEntries(Object.keys({ ...c, ...q }).map((k) => [k, ((c[k] ?? 0) - (q[k] ?? 0)) / K]));
    // An upload batch of K records (one certificate each).
    const up = await place('upload', K);
    const records = up.keys.map((key, i) => ({
      messageId: `m${i}`,
      receiptHandle: `r${i}`,
      body: JSON.stringify({
        Records: [
          {
            eventName: 'ObjectCreated:Put',
            s3: { bucket: { name: BUCKET }, object: { key: up.certs + key } },
          },
        ],
      }),
      attributes: {},
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:uploads',
      awsRegion: 'us-east-1',
    }));
    const upload = await up.run({ Records: records } as unknown as SQSEvent, t0);
    // A reconcile child (unforced) over K certificates that are all fresh.
    const child = await up.run({ mode: 'batch', keys: up.keys, force: false }, new Date(t0.getTime() + HOUR));
    expect(sum(child.s3)).toBeGreaterThan(0);
    measured = {
      quietRun,
      perRenewal: { s3: perRenewal(renewing.s3, quietRun.s3), ddb: perRenewal(renewing.ddb, quietRun.ddb) },
      perChild: {
        // Per child of 250 keys: the measured per-key part times 250; one BatchGetItem per 100 keys.
        // (the run report object: one per child, not per key).
        s3: Object.fromEntries(
          Object.entries(child.s3).map(([k, v]) => [
            k,
            k === 'PutObjectCommand' ? ((v - 1) / K) * 250 + 1 : (v / K) * 250,
          ]),
        ),
        ddb: Object.fromEntries(
          Object.entries(child.ddb).map(([k, v]) => [
            k,
            k === 'BatchGetItemCommand' ? Math.ceil(250 / 100) : (v / K) * 250,
          ]),
        ),
      },
      perUpload: {
        s3: Object.fromEntries(Object.entries(upload.s3).map(([k, v]) => [k, v / K])),
        ddb: Object.fromEntries(Object.entries(upload.ddb).map(([k, v]) => [k, v / K])),
      },
    };
  }, 300_000);

  it('should read the due index and nothing of S3 when nothing is due', () => {
    expect(measured.quietRun).toEqual({ s3: {}, ddb: { QueryCommand: 8, GetItemCommand: 1 } });
  });

  it('should spend per renewal two S3 reads, one staple write and one item write', () => {
    expect(measured.perRenewal).toEqual({
      s3: { GetObjectCommand: 2, PutObjectCommand: 1 + 1 / K }, // the run report, shared by the run
      ddb: { QueryCommand: 0, GetItemCommand: 0, PutItemCommand: 1 },
    });
  });

  it('should read each certificate and staple in a reconcile child, and rewrite each item', () => {
    // What a daily reconcile costs per key today (the largest line at 10⁶): no replay from the
    // item, whose check time changes. Measured, so the table says it.
    expect(measured.perChild.s3.GetObjectCommand).toBe(2 * 250);
    expect(measured.perChild.ddb).toMatchObject({ BatchGetItemCommand: 3 });
  });

  it('should put exactly the table it computes in docs/aws.md', async () => {
    const table = costTable(measured);
    const doc = await readFile(new URL('../docs/aws.md', import.meta.url), 'utf8');
    const between = /<!-- cost:begin -->\n([\s\S]*?)\n<!-- cost:end -->/.exec(doc)?.[1];
    if (between !== table)
      console.log(
        `docs/aws.md should hold:\n${table}\nper upload: ${JSON.stringify(measured.perUpload)}\nper child: ${JSON.stringify(measured.perChild)}\nper renewal: ${JSON.stringify(measured.perRenewal)}`,
      );
    expect(between).toBe(table);
    // The README quotes the three totals.
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const quoted = /<!-- cost:readme -->([\s\S]*?)<!-- cost:readme-end -->/.exec(readme)?.[1];
    const totals = [100, 10_000, 1_000_000].map((n) => dollars(monthlyCost(n, measured).total));
    expect(quoted?.match(/\$[\d.]+/g)).toEqual(totals);
    // At 10², no more than the old default (≈ $6.00 a month: its 8 alarms, metrics, dashboard,
    // $0.09 of requests and compute) beyond the two alarms added.
    expect(monthlyCost(100, measured).total).toBeLessThan(6.0 + 2 * PRICES.alarm);
  });
});
