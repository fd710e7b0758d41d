/**
 * The renewer's scheduled path, `{"mode":"due"}` (lambda/aws/due-run.ts), against real
 * peers: dynalite for the state table and its due index, s3rver for certificates, staples and
 * reports, `openssl ocsp` answering for the test CA. A due set that fits INLINE_MAX_KEYS is
 * renewed in the invocation; a larger one becomes a manifest object and a StartExecution request,
 * sent to a loopback fake of the Step Functions JSON protocol that records it (the SDK client's
 * endpoint points at it): the state machine itself is not run here, and no real AWS is involved.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStateStore, stateItem, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { createHandler as createBatchHandler, type RunSummary } from '../lambda/aws/handler.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { startCaSignedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { HOUR } from './helpers/time.js';
import { recorded, silentTelemetry } from './helpers/lambda-output.js';

const BUCKET = 'due';
const MACHINE = 'arn:aws:states:us-east-1:123456789012:stateMachine:renew-all';
const SERVICE = 'ocsp-renewer/Test/Renewer';

interface SfnRequest {
  target: string | undefined;
  body: Record<string, unknown>;
}

/** Answers StartExecution as Step Functions does (awsJson1_0) and keeps every request. */
async function startFakeStepFunctions(): Promise<{
  url: string;
  requests: SfnRequest[];
  stop(): Promise<void>;
}> {
  const requests: SfnRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: IncomingHttpHeaders = req.headers;
      const target = headers['x-amz-target'] as string | undefined;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      requests.push({ target, body });
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (target !== 'AWSStepFunctions.StartExecution') {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: 'UnknownOperationException' }));
        return;
      }
      const machine = String(body.stateMachineArn).replace(':stateMachine:', ':execution:');
      res.end(JSON.stringify({ executionArn: `${machine}:${String(body.name)}`, startDate: 1_700_000_000 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let pki: TestPki;
let responder: OpensslResponder;
let s3: S3Server;
let client: S3Client;
let dynamo: DynamoServer;
let ddb: DynamoDBClient;
let sfnFake: Awaited<ReturnType<typeof startFakeStepFunctions>>;
let sfn: SFNClient;
let chainPem: string;
let tests = 0;

beforeAll(async () => {
  pki = await makeTestPki();
  [responder, s3, dynamo, sfnFake] = await Promise.all([
    startCaSignedResponder(pki, 1),
    startS3Server({ buckets: [BUCKET] }),
    startDynalite(),
    startFakeStepFunctions(),
  ]);
  client = s3.client();
  ddb = dynamo.client();
  sfn = new SFNClient({
    endpoint: sfnFake.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
  chainPem = (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8'));
}, 120_000);

afterAll(async () => {
  client?.destroy();
  ddb?.destroy();
  sfn?.destroy();
  await Promise.all([responder?.stop(), dynamo?.stop(), sfnFake?.stop()]);
  await s3?.stop();
  await pki?.cleanup();
});

/**
 * A fresh prefix and table: `due` certificates whose state says they are due an hour ago,
 * `later` ones due tomorrow, and the worker over them with INLINE_MAX_KEYS 3.
 */
async function place(due: string[], later: string[]) {
  const n = ++tests;
  const table = `due-state-${n}`;
  await dynamo.createTable(stateTableDefinition(table));
  const p = { certs: `t${n}/certs/`, staples: `t${n}/staples/`, reports: `t${n}/reports/`, table };
  const now = new Date();
  for (const [keys, nextDue] of [
    [due, new Date(now.getTime() - HOUR)],
    [later, new Date(now.getTime() + 24 * HOUR)],
  ] as const) {
    for (const key of keys) {
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: p.certs + key, Body: Buffer.from(chainPem) }),
      );
      await ddb.send(
        new PutItemCommand({
          TableName: table,
          Item: stateItem(key, { failures: 0, nextDue: nextDue.toISOString() }, 1),
        }),
      );
    }
  }
  const logs: Record<string, unknown>[] = [];
  const handler = recorded(
    createBatchHandler({
      env: {
        BUCKET,
        CERTS_PREFIX: p.certs,
        STAPLES_PREFIX: p.staples,
        REPORTS_PREFIX: p.reports,
        STATE_TABLE: table,
        STATE_MACHINE_ARN: MACHINE,
        INLINE_MAX_KEYS: '3',
        METRICS_SERVICE: SERVICE,
        OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
      },
      s3: client,
      dynamodb: ddb,
      sfn,
    }),
    (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  );
  const list = async (prefix: string) =>
    ((await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map(
      (o) => o.Key!,
    );
  const read = async (key: string) =>
    await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();
  return { ...p, handler, logs, list, read };
}

describe('the fleet worker on {"mode":"due"}, scheduled', () => {
  it('should renew a due set that fits INLINE_MAX_KEYS in the invocation, and report it as the renewer does', async () => {
    const p = await place(['a.pem', 'b.pem'], ['later.pem']);
    const before = sfnFake.requests.length;

    const summary = (await p.handler({ mode: 'due' })) as RunSummary;

    expect(summary).toMatchObject({ due: 2, counts: { renewed: 2, failed: 0 } });
    expect(summary.manifest).toBeUndefined();
    expect(sfnFake.requests.length).toBe(before);
    expect((await p.list(p.staples)).sort()).toEqual([`${p.staples}a.ocsp`, `${p.staples}b.ocsp`]);
    expect(await p.list(`${p.reports}manifests/`)).toEqual([]);

    // The renewer's run report object, summary line and EMF metrics, with the deployment's dimension.
    const [reportKey] = await p.list(`${p.reports}runs/`);
    expect(summary.report).toBe(`s3://${BUCKET}/${reportKey}`);
    const report = JSON.parse(await p.read(reportKey!)) as { results: { key: string; action: string }[] };
    expect(report.results.map((r) => [r.key, r.action]).sort()).toEqual([
      ['a.pem', 'renewed'],
      ['b.pem', 'renewed'],
    ]);
    expect(p.logs.find((l) => l.message === 'run report')).toMatchObject({
      mode: 'due',
      due: 2,
      inline: true,
      counts: { renewed: 2 },
      report: summary.report,
    });
    const emf = p.logs.find((l) => l._aws);
    expect(emf).toMatchObject({ Service: SERVICE, Renewed: 2, Failed: 0, FailingWithoutStaple: 0 });
    expect(emf!.LeastValidityHours).toBeGreaterThan(20);
  }, 120_000);

  it('should hand a due set over INLINE_MAX_KEYS to the state machine as a manifest of exactly those keys', async () => {
    const due = ['m1.pem', 'm2.pem', 'sub/m 3.pem', 'm4.pem'];
    const p = await place(due, ['later.pem']);
    const before = sfnFake.requests.length;

    const summary = (await p.handler({ mode: 'due' })) as RunSummary;

    expect(summary).toMatchObject({ due: 4, counts: { renewed: 0 } });
    const manifests = await p.list(`${p.reports}manifests/`);
    expect(manifests).toHaveLength(1);
    expect(manifests[0]).toMatch(new RegExp(`^${p.reports}manifests/\\d{4}-\\d\\d-\\d\\dT[^/]+\\.json$`));
    expect(summary.manifest).toBe(`s3://${BUCKET}/${manifests[0]}`);
    const keys = JSON.parse(await p.read(manifests[0]!)) as string[];
    expect(keys.sort()).toEqual(due.map((k) => p.certs + k).sort());

    const sent = sfnFake.requests.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.target).toBe('AWSStepFunctions.StartExecution');
    expect(sent[0]!.body.stateMachineArn).toBe(MACHINE);
    expect(sent[0]!.body.name).toMatch(/^due-[0-9A-Za-z-]{1,76}$/);
    expect(JSON.parse(String(sent[0]!.body.input))).toEqual({ manifest: manifests[0], force: false });
    expect(summary.execution).toBe(
      `${MACHINE.replace(':stateMachine:', ':execution:')}:${String(sent[0]!.body.name)}`,
    );

    // Nothing renewed here: the map's workers do that. The heartbeat is still emitted.
    expect(await p.list(p.staples)).toEqual([]);
    expect(p.logs.find((l) => l.message === 'run report')).toMatchObject({
      mode: 'due',
      due: 4,
      inline: false,
      manifest: summary.manifest,
      execution: summary.execution,
    });
    expect(p.logs.find((l) => l._aws)).toMatchObject({ Service: SERVICE, Renewed: 0 });
  }, 120_000);

  it('should refuse an INLINE_MAX_KEYS that is not a whole number, naming it', async () => {
    const handler = createBatchHandler({
      env: { BUCKET, STATE_TABLE: 'x', INLINE_MAX_KEYS: 'many' },
      s3: client,
      dynamodb: ddb,
      ...silentTelemetry(),
    });
    await expect(handler({ mode: 'due' })).rejects.toMatchObject({
      name: 'ConfigError',
      code: 'CONFIG',
      message: 'INLINE_MAX_KEYS must be a whole number ≥ 0, got "many"',
    });
  });
});

describe('the first due run over a bucket of the old design (issue 21: no staple lapses)', () => {
  it('should give every certificate an item, keep the old failure counts and next due times, and renew the due ones', async () => {
    const n = ++tests;
    const table = `seed-state-${n}`;
    await dynamo.createTable(stateTableDefinition(table));
    const p = { certs: `s${n}/certs/`, staples: `s${n}/staples/`, state: `s${n}/state/` };
    const env = {
      BUCKET,
      CERTS_PREFIX: p.certs,
      STAPLES_PREFIX: p.staples,
      STATE_PREFIX: p.state,
      REPORTS_PREFIX: `s${n}/reports/`,
      STATE_TABLE: table,
      STATE_MACHINE_ARN: MACHINE,
      OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
    };
    // The old design's bucket: four certificates; fresh staples for kept.pem and stapled.pem (as
    // the old renewer left them); its state/state.json knows kept.pem (not due, two failures
    // counted) and due.pem (due an hour ago); new.pem and stapled.pem were uploaded after its last
    // save. No item in the table.
    const keys = ['due.pem', 'kept.pem', 'new.pem', 'stapled.pem'];
    for (const key of keys) {
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: p.certs + key, Body: Buffer.from(chainPem) }),
      );
    }
    const scratch = `seed-scratch-${n}`;
    await dynamo.createTable(stateTableDefinition(scratch));
    const old = createBatchHandler({
      env: { ...env, STATE_TABLE: scratch },
      s3: client,
      dynamodb: ddb,
      ...silentTelemetry(),
    });
    expect(await old({ mode: 'force', keys: ['kept.pem', 'stapled.pem'] })).toMatchObject({
      counts: { renewed: 2 },
    });
    const now = Date.now();
    const keptDue = new Date(now + 6 * HOUR).toISOString();
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: `${p.state}state.json`,
        Body: Buffer.from(
          JSON.stringify({
            version: 1,
            savedAt: new Date(now - HOUR).toISOString(),
            certs: {
              'kept.pem': {
                failures: 2,
                lastError: 'fetch kept.pem: responder answered HTTP 503',
                nextDue: keptDue,
              },
              'due.pem': { failures: 0, nextDue: new Date(now - HOUR).toISOString() },
            },
          }),
        ),
      }),
    );
    const stapleTag = async (key: string) =>
      (await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: p.staples + key }))).Contents?.[0]
        ?.ETag;
    const keptStaple = await stapleTag('kept.ocsp');

    // One scheduled run after the deploy.
    const logs: Record<string, unknown>[] = [];
    const handler = recorded(createBatchHandler({ env, s3: client, dynamodb: ddb, sfn }), (line) =>
      logs.push(JSON.parse(line) as Record<string, unknown>),
    );
    const summary = (await handler({ mode: 'due' })) as RunSummary;

    // Every certificate has its item.
    const items = new DynamoStateStore(ddb, table);
    const state = await items.load(keys);
    expect([...state.keys()].sort()).toEqual(keys);
    // kept.pem: the old entry, its failures and next due time kept; not due, so not fetched.
    expect(state.get('kept.pem')).toMatchObject({ failures: 2, nextDue: keptDue });
    expect(await stapleTag('kept.ocsp')).toBe(keptStaple);
    // due.pem (due by the old state) and new.pem (never seen): renewed now.
    expect(state.get('due.pem')).toMatchObject({ failures: 0, action: 'renewed' });
    expect(state.get('new.pem')).toMatchObject({ failures: 0, action: 'renewed' });
    // stapled.pem: never in the old state, its staple still fresh: read, kept, and remembered.
    expect(state.get('stapled.pem')).toMatchObject({ action: 'fresh' });
    expect(summary).toMatchObject({ mode: 'due', due: 3, seeded: 4, counts: { renewed: 2, fresh: 1 } });
    expect(logs.find((l) => l.message === 'state table seeded')).toMatchObject({
      listed: 4,
      imported: 2,
      renewNow: 3,
      oldState: `s3://${BUCKET}/${p.state}state.json`,
    });

    // The next run reads the due index only: the table is marked seeded.
    const next = (await handler({ mode: 'due' })) as RunSummary;
    expect(next).toMatchObject({ due: 0, seeded: 0 });
    expect(logs.filter((l) => l.message === 'state table seeded')).toHaveLength(1);
  });

  it('should hand a seeding set larger than INLINE_MAX_KEYS to the state machine as one manifest', async () => {
    const n = ++tests;
    const table = `seed-state-${n}`;
    await dynamo.createTable(stateTableDefinition(table));
    const certs = `s${n}/certs/`;
    const keys = ['1.pem', '2.pem', '3.pem', '4.pem', '5.pem'];
    for (const key of keys) {
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: certs + key, Body: Buffer.from(chainPem) }),
      );
    }
    const before = sfnFake.requests.length;
    const summary = (await createBatchHandler({
      env: {
        BUCKET,
        CERTS_PREFIX: certs,
        STAPLES_PREFIX: `s${n}/staples/`,
        REPORTS_PREFIX: `s${n}/reports/`,
        STATE_TABLE: table,
        STATE_MACHINE_ARN: MACHINE,
        INLINE_MAX_KEYS: '3',
      },
      s3: client,
      dynamodb: ddb,
      sfn,
      ...silentTelemetry(),
    })({ mode: 'due' })) as RunSummary;
    expect(summary).toMatchObject({
      due: 5,
      seeded: 5,
      inline: false,
      manifest: expect.stringContaining('/manifests/'),
    });
    const started = sfnFake.requests.slice(before);
    expect(started).toHaveLength(1);
    const input = JSON.parse(started[0]!.body.input as string) as { manifest: string; force: boolean };
    expect(input.force).toBe(false);
    const manifest = JSON.parse(
      await (
        await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: input.manifest }))
      ).Body!.transformToString(),
    ) as string[];
    expect(manifest.sort()).toEqual(keys.map((k) => certs + k));
  });
});
