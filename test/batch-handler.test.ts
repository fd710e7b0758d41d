/**
 * The renewer's handler (lambda/aws/handler.ts: uploads, map batches, due runs) against real peers: s3rver behind the
 * precondition proxy (so every staple write is a conditional PUT the proxy records), dynalite for
 * the per-certificate state, and a fake OCSP responder on loopback.
 *
 * - SQS upload batches through Powertools' partial-response processor: created certificates are
 *   stapled, removed ones retired, a bad message is the only failure reported.
 * - The synthesized state machine's child workflow (the Distributed Map's ItemProcessor) run by
 *   aws-local-stepfunctions, its Task calling the worker in-process, over batches made the way
 *   the definition's ItemReader and ItemBatcher say. aws-local-stepfunctions does not implement
 *   ItemReader, ItemBatcher or ResultWriter, so the listing and batching are done here from the
 *   definition's own settings (prefix, MaxItemsPerBatch, BatchInput); the parent's Defaults and
 *   Summarise states are not run.
 * - The due-manifest map (RenewDue): its child workflow over batches read from a manifest object
 *   as the definition's ItemReader (Key from the input's `manifest`) and ItemBatcher say.
 */
import { readFile } from 'node:fs/promises';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { Template } from 'aws-cdk-lib/assertions';
import type { Stack } from 'aws-cdk-lib';
import { StateMachine } from 'aws-local-stepfunctions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_TABLE, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import {
  createHandler as createBatchHandler,
  type BatchSummary,
  type RunSummary,
} from '../lambda/aws/handler.js';
import { parseMapBatch } from '../lambda/aws/map-batch.js';
import { EventError } from '../lambda/aws/event.js';
import { OcspRenewerStack } from '../infra/stack.js';
import {
  buildOcspResponse,
  loadSigner,
  startFakeResponder,
  type FakeResponder,
} from './helpers/fake-responder.js';
import { cdkApps, renderCfnValue } from './helpers/cdk-app.js';
import { countRequests } from './helpers/count-requests.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startPreconditionProxy, type PreconditionProxy } from './helpers/s3-preconditions.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { at, T0 } from './helpers/time.js';
import './helpers/promise-with-resolvers.js';
import { recorded, silentTelemetry } from './helpers/lambda-output.js';

const BUCKET = 'fleet';
const newApp = cdkApps();

let fake: FakeResponder;
let pki: TestPki;
let s3: S3Server;
let proxy: PreconditionProxy;
let client: S3Client;
let dynamo: DynamoServer;
let ddb: DynamoDBClient;
let chainPem: string;
let tables = 0;
/** The responder's clock, in hours after T0: its answers are an hour old. */
let responderHours = 0;

beforeAll(async () => {
  fake = await startFakeResponder(() => ({ status: 500, body: 'no handler set' }));
  [pki, s3, dynamo] = await Promise.all([
    makeTestPki({ ocspUrl: fake.url }),
    startS3Server({ buckets: [BUCKET] }),
    startDynalite(),
  ]);
  proxy = await startPreconditionProxy(s3);
  client = proxy.client();
  ddb = dynamo.client();
  chainPem = (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8'));
  const ca = await loadSigner(pki.intermediate.cert, pki.intermediate.key);
  fake.setHandler(async (req) => ({
    body: await buildOcspResponse({
      request: req.requestDer!,
      thisUpdate: at(responderHours - 1),
      nextUpdate: at(responderHours + 23),
      signer: ca,
    }),
  }));
}, 120_000);

afterAll(async () => {
  client?.destroy();
  ddb?.destroy();
  await Promise.all([fake?.stop(), proxy?.stop(), dynamo?.stop()]);
  await s3?.stop();
  await pki?.cleanup();
});

/** A fresh prefix (certificates, staples) and state table for one test. */
async function place(certKeys: string[]) {
  const n = ++tables;
  const table = `fleet-state-${n}`;
  await dynamo.createTable(stateTableDefinition(table));
  const certs = `t${n}/certs/`;
  const staples = `t${n}/staples/`;
  for (const key of certKeys) {
    await client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: certs + key, Body: Buffer.from(chainPem) }),
    );
  }
  const logs: string[] = [];
  const handler = recorded(
    createBatchHandler({
      env: {
        BUCKET,
        CERTS_PREFIX: certs,
        STAPLES_PREFIX: staples,
        STATE_TABLE: table,
        OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
      },
      s3: client,
      dynamodb: ddb,
      clock: () => T0,
    }),
    (line) => logs.push(line),
  );
  const staple = async (key: string) => {
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: staples + key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch {
      return undefined;
    }
  };
  const stateItem = async (key: string) =>
    (
      await ddb.send(
        new GetItemCommand({
          TableName: table,
          Key: { [STATE_TABLE.partitionKey]: { S: key } },
          ConsistentRead: true,
        }),
      )
    ).Item;
  return { certs, staples, table, handler, logs, staple, stateItem };
}

function sqsEvent(bodies: (Record<string, unknown> | string)[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `m${i}`,
      receiptHandle: `r${i}`,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      attributes: {} as SQSEvent['Records'][number]['attributes'],
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:uploads',
      awsRegion: 'us-east-1',
    })),
  };
}

const s3Notification = (eventName: string, key: string) => ({
  Records: [
    {
      eventSource: 'aws:s3',
      eventName,
      s3: { bucket: { name: BUCKET }, object: { key: encodeURIComponent(key).replace(/%2F/g, '/') } },
    },
  ],
});

describe('parseMapBatch', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown field', { mode: 'batch', keys: [], prefix: 'x' }, 'unsupported event field(s): prefix'],
    ['keys that are not strings', { mode: 'batch', keys: [1] }, 'keys must be an array of certificate keys'],
    [
      'a force that is not a boolean',
      { mode: 'batch', keys: ['a.pem'], force: 'yes' },
      'force must be a boolean',
    ],
    [
      'etags not one per key',
      { mode: 'batch', keys: ['a.pem'], etags: [] },
      'etags must be an array of strings, one per key',
    ],
    [
      'a per-host limit that is not a whole number',
      { mode: 'batch', keys: ['a.pem'], perHostConcurrency: 0.5 },
      'perHostConcurrency must be a whole number ≥ 1',
    ],
  ])('should refuse %s with a clear error', (_name, event, message) => {
    let thrown: unknown;
    try {
      parseMapBatch(event, 'certs/');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(EventError);
    expect((thrown as Error).message).toBe(message);
  });

  it('should take the share of the per-host limit the map passes', () => {
    const request = parseMapBatch({ mode: 'batch', keys: ['a.pem'], perHostConcurrency: 1 }, 'certs/');
    expect(request).toMatchObject({ mode: 'batch', perHostConcurrency: 1 });
  });

  it('should strip the certs prefix, drop duplicates and pair ETags with keys', () => {
    const request = parseMapBatch(
      { mode: 'batch', keys: ['certs/a.pem', 'b.pem'], etags: ['"1"', '"2"'], force: true },
      'certs/',
    );
    expect(request).toEqual({
      mode: 'batch',
      keys: ['a.pem', 'b.pem'],
      force: true,
      etags: new Map([
        ['a.pem', '"1"'],
        ['b.pem', '"2"'],
      ]),
    });
  });

  it('should refuse any run without a state table, naming the variable', async () => {
    const handler = createBatchHandler({ env: { BUCKET }, s3: client, ...silentTelemetry() });
    await expect(handler({ mode: 'due' })).rejects.toThrow(
      'STATE_TABLE is not set (the per-certificate state table)',
    );
  });

  it.each<[string, unknown, string]>([
    ['an array', [], 'event must be a JSON object'],
    ['another mode', { mode: 'sweep' }, 'unsupported mode "sweep" (scheduled or force)'],
    ['a due run with keys', { mode: 'due', keys: ['a.pem'] }, '{"mode":"due"} takes no other field'],
  ])('should refuse %s at the handler with a clear error, doing nothing', async (_name, event, message) => {
    const handler = createBatchHandler({
      env: { BUCKET, STATE_TABLE: 'none' },
      s3: client,
      dynamodb: ddb,
      ...silentTelemetry(),
    });
    await expect(handler(event)).rejects.toThrow(EventError);
    await expect(handler(event)).rejects.toThrow(message);
  });
});

describe('the fleet worker on SQS upload batches', () => {
  it('should staple created certificates, retire removed ones, and report only the bad message', async () => {
    const p = await place(['a.pem', 'sub/b c.pem']);
    // gone.pem was stapled earlier and has since been deleted.
    await client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${p.staples}gone.ocsp`, Body: Buffer.from('old') }),
    );
    await ddb.send(
      new PutItemCommand({
        TableName: p.table,
        Item: { [STATE_TABLE.partitionKey]: { S: 'gone.pem' }, version: { N: '1' }, failures: { N: '0' } },
      }),
    );
    const response = (await p.handler(
      sqsEvent([
        s3Notification('ObjectCreated:Put', `${p.certs}a.pem`),
        s3Notification('ObjectCreated:Put', `${p.certs}sub/b c.pem`),
        s3Notification('ObjectRemoved:Delete', `${p.certs}gone.pem`),
        'not json',
        { Service: 'Amazon S3', Event: 's3:TestEvent' },
      ]),
    )) as SQSBatchResponse;

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'm3' }]);
    expect((await p.staple('a.ocsp'))?.length).toBeGreaterThan(100);
    expect((await p.staple('sub/b c.ocsp'))?.length).toBeGreaterThan(100);
    expect(await p.staple('gone.ocsp')).toBeUndefined();
    expect(await p.stateItem('gone.pem')).toBeUndefined();
    expect(await p.stateItem('a.pem')).toMatchObject({ failures: { N: '0' }, action: { S: 'renewed' } });
    const line = p.logs
      .map((l) => JSON.parse(l) as BatchSummary & { message: string })
      .find((l) => l.message === 'upload batch')!;
    expect(line).toMatchObject({
      level: 'INFO',
      message: 'upload batch',
      counts: { renewed: 2 },
      retired: ['gone.pem'],
      batchItemFailures: 1,
    });
  });

  it('should not retire a certificate that was uploaded again after its removal', async () => {
    const p = await place(['back.pem']);
    await client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${p.staples}back.ocsp`, Body: Buffer.from('kept') }),
    );
    const response = (await p.handler(
      sqsEvent([s3Notification('ObjectRemoved:Delete', `${p.certs}back.pem`)]),
    )) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    expect((await p.staple('back.ocsp'))?.toString()).toBe('kept');
  });

  it('should not retire a removed key with a .. component, which no run ever stapled', async () => {
    // S3 refuses such a key (400): its DeleteObject would fail the record at every delivery.
    const p = await place(['b.pem']);
    await client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${p.staples}other.ocsp`, Body: Buffer.from('kept') }),
    );
    const response = (await p.handler(
      sqsEvent([s3Notification('ObjectRemoved:Delete', `${p.certs}a/../other.pem`)]),
    )) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    expect((await p.staple('other.ocsp'))?.toString()).toBe('kept');
    const line = p.logs
      .map((l) => JSON.parse(l) as BatchSummary & { message: string })
      .find((l) => l.message === 'upload batch')!;
    expect(line.retired).toEqual([]);
  });

  it('should guess no certificate from an issuer file with a .. component', async () => {
    const p = await place(['b.pem']);
    const response = (await p.handler(
      sqsEvent([s3Notification('ObjectCreated:Put', `${p.certs}a/../b.issuer.pem`)]),
    )) as SQSBatchResponse;
    expect(response.batchItemFailures).toEqual([]);
    const line = p.logs
      .map((l) => JSON.parse(l) as BatchSummary & { message: string })
      .find((l) => l.message === 'upload batch')!;
    expect(line.counts).toMatchObject({ renewed: 0, failed: 0 });
  });
  it('should report an upload the deadline left as a batch item failure, and renew it on redelivery', async () => {
    const p = await place(['late.pem', 'later.pem']);
    const event = sqsEvent([
      s3Notification('ObjectCreated:Put', `${p.certs}late.pem`),
      s3Notification('ObjectCreated:Put', `${p.certs}later.pem`),
    ]);
    // Less than the reserve and one HTTP timeout left: no certificate may start.
    const late = { getRemainingTimeInMillis: () => 6_000, awsRequestId: 'late-run' };
    const first = (await p.handler(event, late)) as SQSBatchResponse;
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm0' }, { itemIdentifier: 'm1' }]);
    expect(await p.staple('late.ocsp')).toBeUndefined();

    // SQS delivers the failed records again, to an invocation with time.
    const again = { getRemainingTimeInMillis: () => 300_000, awsRequestId: 'again' };
    const second = (await p.handler(event, again)) as SQSBatchResponse;
    expect(second.batchItemFailures).toEqual([]);
    expect((await p.staple('late.ocsp'))?.length).toBeGreaterThan(100);
    expect(await p.stateItem('later.pem')).toMatchObject({ action: { S: 'renewed' } });
  });
});

describe('the fleet worker on {"mode":"due"}', () => {
  it("should write each certificate's state item as it is decided, before the batch ends", async () => {
    const keys = ['s1.pem', 's2.pem'];
    const p = await place(keys);
    const worker = createBatchHandler({
      env: {
        BUCKET,
        CERTS_PREFIX: p.certs,
        STAPLES_PREFIX: p.staples,
        STATE_TABLE: p.table,
        CONCURRENCY: '1',
        OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
      },
      s3: client,
      dynamodb: ddb,
      clock: () => T0,
      ...silentTelemetry(),
    });
    // While the responder answers the second certificate, the first one's item is already there:
    // a worker ended midway (Lambda's timeout) keeps what it decided.
    const seenDuringSecond: unknown[] = [];
    const ca = await loadSigner(pki.intermediate.cert, pki.intermediate.key);
    let requests = 0;
    fake.setHandler(async (req) => {
      if (++requests === 2) seenDuringSecond.push(await p.stateItem('s1.pem'));
      return {
        body: await buildOcspResponse({
          request: req.requestDer!,
          thisUpdate: at(responderHours - 1),
          nextUpdate: at(responderHours + 23),
          signer: ca,
        }),
      };
    });
    const summary = (await worker({ mode: 'batch', keys, force: true })) as RunSummary;
    expect(summary.counts.renewed).toBe(2);
    expect(seenDuringSecond).toHaveLength(1);
    expect(seenDuringSecond[0]).toMatchObject({ [STATE_TABLE.partitionKey]: { S: 's1.pem' } });
    expect(await p.stateItem('s2.pem')).toBeDefined();
  });

  it('should read only the due index when nothing is due, and renew exactly the due ones later', async () => {
    const keys = ['d1.pem', 'd2.pem', 'd3.pem'];
    const p = await place(keys);
    await p.handler({ mode: 'batch', keys, force: true }); // stapled at T0, valid until T0 + 23 h
    // The first due run over a table seeds it (due-run.test.ts); the ones measured below follow.
    expect(await p.handler({ mode: 'due' })).toMatchObject({ due: 0, seeded: 0 });

    const counted = { s3: proxy.client(), ddb: dynamo.client() };
    const s3Requests = countRequests(counted.s3);
    const ddbRequests = countRequests(counted.ddb);
    const due = (now: Date) =>
      createBatchHandler({
        env: {
          BUCKET,
          CERTS_PREFIX: p.certs,
          STAPLES_PREFIX: p.staples,
          STATE_TABLE: p.table,
          OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
        },
        s3: counted.s3,
        dynamodb: counted.ddb,
        clock: () => now,
        ...silentTelemetry(),
      })({ mode: 'due' }) as Promise<RunSummary>;

    fake.clearRequests();
    expect(await due(at(1))).toMatchObject({ due: 0, counts: { renewed: 0 } });
    // One Query per shard, and one GetItem: the table's seeded marker.
    expect(ddbRequests.byCommand).toEqual({ QueryCommand: STATE_TABLE.defaultShards, GetItemCommand: 1 });
    expect(s3Requests.total).toBe(0);
    expect(fake.requests).toHaveLength(0);

    // Past every refresh point (half the 24 h window, ± 10 % jitter: at most T0 + 13.4 h).
    ddbRequests.reset();
    s3Requests.reset();
    responderHours = 14;
    const summary = await due(at(14)).finally(() => (responderHours = 0));
    expect(summary).toMatchObject({ due: 3, counts: { renewed: 3, failed: 0 } });
    expect(fake.requests).toHaveLength(3);
    // A constant (one Query per shard, one run report object) plus, per due certificate: read the
    // certificate (its bundle holds the issuer), read the staple, write the staple, write the
    // state item. No withheld-marker delete: a certificate with a stored staple that the state
    // does not call withheld has no marker.
    expect(ddbRequests.byCommand).toEqual({
      QueryCommand: STATE_TABLE.defaultShards,
      GetItemCommand: 1,
      PutItemCommand: 3,
    });
    expect(s3Requests.byCommand).toEqual({ GetObjectCommand: 3 * 2, PutObjectCommand: 3 + 1 });
    counted.s3.destroy();
    counted.ddb.destroy();
  });
});

describe('the Distributed Map child workflow, run by aws-local-stepfunctions', () => {
  it('should renew 10 certificates in 3 batches of at most 4 keys, each exactly once', async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `c${String(i).padStart(2, '0')}.pem`);
    const p = await place([...keys, 'c00.issuer.pem', 'README.txt']);

    const app = newApp({
      'aws:cdk:bundling-stacks': [],
      '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true,
    });
    const stack = new OcspRenewerStack(app, 'Local', { keysPerBatch: 4, certsPrefix: p.certs });
    const definition = machineDefinition(stack) as {
      States: Record<string, Record<string, unknown>>;
    };
    const map = definition.States.RenewAll! as {
      ItemReader: { Parameters: { Prefix: string } };
      ItemBatcher: { MaxItemsPerBatch: number; BatchInput: Record<string, string> };
      ItemProcessor: Record<string, unknown>;
    };
    expect(map.ItemBatcher.MaxItemsPerBatch).toBe(4);

    // ItemReader: ListObjectsV2 over the prefix; ItemBatcher: Items in chunks, plus BatchInput.
    expect(map.ItemReader.Parameters.Prefix).toBe(p.certs);
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: map.ItemReader.Parameters.Prefix }),
    );
    const items = (listed.Contents ?? []).map((o) => ({ Key: o.Key!, Etag: o.ETag, Size: o.Size }));
    const batches: { Items: typeof items; BatchInput: { force: boolean } }[] = [];
    for (let i = 0; i < items.length; i += map.ItemBatcher.MaxItemsPerBatch) {
      batches.push({
        Items: items.slice(i, i + map.ItemBatcher.MaxItemsPerBatch),
        BatchInput: { force: true },
      });
    }
    expect(map.ItemBatcher.BatchInput).toEqual({ 'force.$': '$.force' });
    expect(batches.length).toBeGreaterThanOrEqual(3);

    const { ProcessorConfig: _config, ...childDefinition } = map.ItemProcessor;
    const child = new StateMachine(childDefinition as never, { validationOptions: { checkArn: false } });
    const invocations: unknown[] = [];
    const acceptedBefore = proxy.accepted.length;
    fake.clearRequests();
    const outputs = [];
    for (const batch of batches) {
      const execution = child.run(batch as never, {
        overrides: {
          taskResourceLocalHandlers: {
            RenewBatch: async (input) => {
              const payload = (input as { Payload: unknown }).Payload;
              invocations.push(payload);
              return { StatusCode: 200, Payload: (await p.handler(payload)) as never };
            },
          },
        },
      });
      outputs.push((await execution.result) as unknown as { summary: RunSummary });
    }

    expect(invocations).toHaveLength(batches.length);
    expect(invocations[0]).toMatchObject({
      mode: 'batch',
      etags: expect.arrayContaining([expect.stringMatching(/^".+"$/)]),
      force: true,
      keys: expect.arrayContaining([`${p.certs}c00.pem`]),
    });
    expect(outputs.reduce((n, o) => n + o.summary.counts.renewed, 0)).toBe(10);
    // Each staple written once (one conditional PUT per key, through the proxy), one OCSP request each.
    const written = proxy.accepted.slice(acceptedBefore).filter((k) => k.startsWith(p.staples));
    expect(written.sort()).toEqual(keys.map((k) => `${p.staples}${k.replace('.pem', '.ocsp')}`));
    expect(fake.requests).toHaveLength(10);
    // The listing's ETags came along (etags), so the state knows which certificate it stapled.
    const etagOf = new Map(items.map((i) => [i.Key, i.Etag]));
    for (const key of keys) {
      expect(await p.stateItem(key)).toMatchObject({
        action: { S: 'renewed' },
        certTag: { S: etagOf.get(p.certs + key) },
      });
    }
  }, 300_000);

  it("should retry a child that Lambda throttles, with the definition's own Retry, and renew its keys once", async () => {
    const keys = ['t0.pem', 't1.pem'];
    const p = await place(keys);
    const app = newApp({ 'aws:cdk:bundling-stacks': [] });
    const stack = new OcspRenewerStack(app, 'Throttle', { certsPrefix: p.certs });
    const definition = machineDefinition(stack) as {
      States: Record<string, { ItemProcessor: Record<string, unknown> }>;
    };
    const { ProcessorConfig: _config, ...childDefinition } = definition.States.RenewAll!.ItemProcessor;
    const child = new StateMachine(childDefinition as never, { validationOptions: { checkArn: false } });
    // One batch as the ItemReader (ListObjectsV2) and ItemBatcher give it.
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: p.certs }));
    const items = (listed.Contents ?? []).map((o) => ({ Key: o.Key!, Etag: o.ETag, Size: o.Size }));
    let attempts = 0;
    const acceptedBefore = proxy.accepted.length;
    const execution = child.run({ Items: items, BatchInput: { force: true } } as never, {
      overrides: {
        taskResourceLocalHandlers: {
          RenewBatch: async (input) => {
            // What Step Functions reports when Lambda refuses the invocation (429): twice.
            if (++attempts <= 2) {
              const throttled = new Error('Rate Exceeded.');
              throttled.name = 'Lambda.TooManyRequestsException';
              throw throttled;
            }
            return {
              StatusCode: 200,
              Payload: (await p.handler((input as { Payload: unknown }).Payload)) as never,
            };
          },
        },
        // The definition's backoff and jitter are asserted in fleet.stack.test.ts; here, no wait.
        retryIntervalOverrides: { RenewBatch: 0 },
      },
    });
    const output = (await execution.result) as unknown as { summary: RunSummary };
    expect(attempts).toBe(3);
    expect(output.summary.counts.renewed).toBe(2);
    const written = proxy.accepted.slice(acceptedBefore).filter((k) => k.startsWith(p.staples));
    expect(written.sort()).toEqual(keys.map((k) => `${p.staples}${k.replace('.pem', '.ocsp')}`));
  }, 120_000);
});

describe('the due-manifest map (RenewDue) child workflow, run by aws-local-stepfunctions', () => {
  it("should renew the keys of a due manifest, read and batched as the definition's ItemReader and ItemBatcher say", async () => {
    const keys = ['m0.pem', 'm1.pem', 'm2.pem'];
    const p = await place(keys);
    const app = newApp({
      'aws:cdk:bundling-stacks': [],
      '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true,
    });
    const stack = new OcspRenewerStack(app, 'LocalDue', { keysPerBatch: 2, certsPrefix: p.certs });
    const definition = machineDefinition(stack) as { States: Record<string, Record<string, unknown>> };
    const map = definition.States.RenewDue! as {
      ItemReader: { ReaderConfig: { InputType: string }; Parameters: Record<string, string> };
      ItemBatcher: { MaxItemsPerBatch: number };
      ItemProcessor: Record<string, unknown>;
    };
    // A due run's manifest: a JSON array of certificate object keys, named by the input.
    const manifestKey = `t-due/manifests/${Date.now()}.json`;
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: manifestKey,
        Body: Buffer.from(JSON.stringify(keys.map((k) => p.certs + k))),
      }),
    );
    const input = { manifest: manifestKey, force: false };
    expect(map.ItemReader.ReaderConfig.InputType).toBe('JSON');
    expect(map.ItemReader.Parameters['Key.$']).toBe('$.manifest');
    const object = await client.send(
      new GetObjectCommand({
        Bucket: BUCKET,
        Key: input[map.ItemReader.Parameters['Key.$']!.slice(2) as 'manifest'],
      }),
    );
    const items = JSON.parse(await object.Body!.transformToString()) as string[];
    const batches = [];
    for (let i = 0; i < items.length; i += map.ItemBatcher.MaxItemsPerBatch) {
      batches.push({
        Items: items.slice(i, i + map.ItemBatcher.MaxItemsPerBatch),
        BatchInput: { force: false },
      });
    }
    expect(batches).toHaveLength(2);

    const { ProcessorConfig: _config, ...childDefinition } = map.ItemProcessor;
    const child = new StateMachine(childDefinition as never, { validationOptions: { checkArn: false } });
    const invocations: unknown[] = [];
    let renewed = 0;
    for (const batch of batches) {
      const execution = child.run(batch as never, {
        overrides: {
          taskResourceLocalHandlers: {
            RenewDueBatch: async (event) => {
              const payload = (event as { Payload: unknown }).Payload;
              invocations.push(payload);
              return { StatusCode: 200, Payload: (await p.handler(payload)) as never };
            },
          },
        },
      });
      renewed += ((await execution.result) as unknown as { summary: RunSummary }).summary.counts.renewed;
    }
    expect(invocations[0]).toEqual({
      mode: 'batch',
      keys: [p.certs + 'm0.pem', p.certs + 'm1.pem'],
      force: false,
      perHostConcurrency: 1,
    });
    expect(renewed).toBe(3);
    for (const key of keys)
      expect((await p.staple(key.replace('.pem', '.ocsp')))?.length).toBeGreaterThan(100);
  }, 300_000);
});

/** The stack's state machine definition, its tokens rendered as plausible literals. */
function machineDefinition(stack: Stack): unknown {
  const machine = Object.values(
    Template.fromStack(stack).findResources('AWS::StepFunctions::StateMachine'),
  )[0]!;
  return JSON.parse(renderCfnValue((machine.Properties as Record<string, unknown>).DefinitionString));
}
