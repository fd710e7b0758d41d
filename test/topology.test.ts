/**
 * The deployed shape on loopback: a forced renewal of every certificate (ForceAllCommand's
 * `{"force":true}`) through the synthesized state machine — parent and children — run by
 * aws-local-stepfunctions, its Lambda tasks bound to the real handler, over s3rver (behind the
 * precondition proxy, so every staple write is a conditional PUT it records) and dynalite, with
 * bench/fleet.ts's distinct leaves answered by an in-process instant responder.
 *
 * aws-local-stepfunctions has no ItemReader, ItemBatcher or ResultWriter: the Distributed Maps
 * are emulated from the definition's own values by test/helpers/local-state-machine.ts (its
 * comment says how); the child Task and its Retry run as synthesized. Some children are
 * throttled (`Lambda.TooManyRequestsException`) on their first attempt and retried by that Retry.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoStateStore, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { createHandler, type RunSummary } from '../lambda/aws/handler.js';
import { OcspRenewerStack } from '../infra/stack.js';
import { makeFleet, type Fleet } from '../bench/fleet.js';
import { startInstantResponder } from '../bench/instant-responder.js';
import { uploadFleet } from '../bench/upload-fleet.js';
import { cdkApps } from './helpers/cdk-app.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import {
  LambdaServiceError,
  runLocally,
  synthesizedStateMachine,
  type DistributedMap,
  type StateMachineDefinition,
} from './helpers/local-state-machine.js';
import { freePort } from './helpers/pki.js';
import { startPreconditionProxy, type PreconditionProxy } from './helpers/s3-preconditions.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import './helpers/promise-with-resolvers.js';
import { silentTelemetry } from './helpers/lambda-output.js';

const N = Number(process.env.TOPOLOGY_CERTIFICATES ?? 5_000);
/** Uploads through the queue, under their own prefix and table. */
const U = Number(process.env.TOPOLOGY_UPLOADS ?? 1_000);
const UPLOADS = 'u/certs/';
const UPLOAD_TABLE = 'topology-uploads';
const BUCKET = 'topology';
const TABLE = 'topology-state';
const newApp = cdkApps();

type Json = Record<string, unknown>;

let s3: S3Server;
let proxy: PreconditionProxy;
let client: S3Client;
let dynamo: DynamoServer;
let ddb: DynamoDBClient;
let fleet: Fleet;
let uploads: Fleet;
let responder: Awaited<ReturnType<typeof startInstantResponder>>;

beforeAll(async () => {
  const port = await freePort();
  fleet = makeFleet(N, `http://127.0.0.1:${port}/`, new Date(), 21);
  uploads = makeFleet(U, `http://127.0.0.1:${port}/`, new Date(), 22);
  [s3, dynamo, responder] = await Promise.all([
    startS3Server({ buckets: [BUCKET] }),
    startDynalite(),
    startInstantResponder((der) => fleet.responseFor(der) ?? uploads.responseFor(der), port),
  ]);
  proxy = await startPreconditionProxy(s3);
  client = proxy.client();
  ddb = dynamo.client();
  await dynamo.createTable(stateTableDefinition(TABLE));
  await dynamo.createTable(stateTableDefinition(UPLOAD_TABLE));
  await uploadFleet(s3, BUCKET, fleet, N);
}, 600_000);

afterAll(async () => {
  client?.destroy();
  ddb?.destroy();
  await new Promise<void>((r) => (responder ? responder.server.close(() => r()) : r()));
  await Promise.all([proxy?.stop(), dynamo?.stop()]);
  await s3?.stop();
});

describe(`a forced renewal of ${N} certificates through the synthesized state machine`, () => {
  /** Step Functions' answer when the function's (or the account's) concurrency is used up. */
  const throttle = () => new LambdaServiceError('Lambda.TooManyRequestsException', 'Rate Exceeded.');
  let definition: StateMachineDefinition;
  beforeAll(() => {
    definition = synthesizedStateMachine(BUCKET);
  }, 120_000);

  it('should complete, a throttled child retried, every certificate renewed and its staple written exactly once', async () => {
    const renewAll = definition.States.RenewAll as unknown as DistributedMap;
    expect(renewAll.ItemReader).toMatchObject({
      Resource: 'arn:aws:states:::s3:listObjectsV2',
      Parameters: { Bucket: BUCKET, Prefix: 'certs/' },
    });
    const children = Math.ceil(N / renewAll.ItemBatcher.MaxItemsPerBatch);
    const handler = createHandler({
      env: {
        BUCKET,
        STATE_TABLE: TABLE,
        OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
        // The machine may be loaded by the rest of the suite: this test is about the map, not
        // about a responder's speed, so a slow answer must not fail a certificate.
        HTTP_TIMEOUT_SECONDS: '60',
      },
      s3: client,
      dynamodb: ddb,
      ...silentTelemetry(),
    });
    // Every third child (by first invocation) is throttled on its first attempt, as Lambda
    // answers when concurrency is used up; the child Task's Retry lists the throttle. runLocally
    // sets aws-local-stepfunctions' retryIntervalOverrides to 0 ms, so the test does not sleep the
    // Retry's real backoff (2 s doubling, full jitter).
    const attempts = new Map<string, number>();
    const throttled = new Set<string>();
    const invoke = async (payload: unknown) => {
      const child = (payload as { keys: string[] }).keys[0]!;
      const attempt = (attempts.get(child) ?? 0) + 1;
      attempts.set(child, attempt);
      if (attempt === 1 && attempts.size % 3 === 1) {
        throttled.add(child);
        throw throttle();
      }
      return handler(payload);
    };
    const acceptedBefore = proxy.accepted.length;
    const started = Date.now();
    const output = (await runLocally(definition, { force: true }, { s3: client, invoke })) as {
      force: boolean;
      children: { summary: RunSummary }[];
    };
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `${N} certificates through the map: ${children} children (${throttled.size} throttled once) in ${seconds.toFixed(1)} s`,
    );

    expect(output.force).toBe(true);
    expect(output.children).toHaveLength(children);
    expect(attempts.size).toBe(children);
    expect(throttled.size).toBe(Math.ceil(children / 3));
    for (const [child, n] of attempts) expect(n, child).toBe(throttled.has(child) ? 2 : 1);
    const renewed = output.children.reduce((n, child) => n + child.summary.counts.renewed, 0);
    const failures = output.children.flatMap((child) => child.summary.failures);
    expect(renewed, `not renewed: ${JSON.stringify(failures)}`).toBe(N);
    expect(
      output.children.every((child) => child.summary.counts.failed === 0 && child.summary.notReached === 0),
    ).toBe(true);
    // Every staple written once: one accepted conditional PUT per certificate, no second.
    const written = proxy.accepted.slice(acceptedBefore).filter((k) => k.startsWith('staples/'));
    expect(written).toHaveLength(N);
    expect(new Set(written).size).toBe(N);
    // And every certificate has its item.
    const state = await new DynamoStateStore(ddb, TABLE).load(fleet.leaves.map((_, i) => `leaf-${i}.pem`));
    expect(state.size).toBe(N);
  }, 900_000);

  it('should fail the child with the throttle once the Retry is removed: the Retry is what saves it', async () => {
    const noRetry = structuredClone(definition);
    const renewAll = noRetry.States.RenewAll as unknown as DistributedMap;
    expect(renewAll.ItemProcessor.States.RenewBatch!.Retry).toBeDefined();
    delete renewAll.ItemProcessor.States.RenewBatch!.Retry;
    // One child of one certificate (the ItemReader's own MaxItems): cheap.
    renewAll.ItemReader.ReaderConfig = { MaxItems: 1 };
    let invocations = 0;
    const run = runLocally(
      noRetry,
      { force: true },
      {
        s3: client,
        invoke: async () => {
          invocations++;
          throw throttle();
        },
      },
    );
    await expect(run).rejects.toMatchObject({
      name: 'ExecutionError',
      cause: { name: 'Lambda.TooManyRequestsException' },
    });
    expect(invocations).toBe(1);
  }, 120_000);
});

/**
 * SQS as the event source mapping sees it, in-process: messages stay in the queue until the
 * function's response says they succeeded; a reported failure becomes visible again (its
 * visibility timeout, here at once) and is delivered again, until maxReceiveCount sends it to the
 * dead-letter queue. The mapping polls batches of up to BatchSize.
 */
class LocalQueue {
  private next = 0;
  readonly messages: { id: string; body: string; receives: number }[] = [];
  readonly deadLetters: string[] = [];
  constructor(private readonly maxReceiveCount: number) {}
  send(body: string): void {
    this.messages.push({ id: `m${this.next++}`, body, receives: 0 });
  }
  receive(max: number) {
    const batch = this.messages.slice(0, max);
    for (const m of batch) m.receives++;
    return batch;
  }
  settle(batch: { id: string }[], failed: Set<string>): void {
    for (const m of batch) {
      const i = this.messages.findIndex((x) => x.id === m.id);
      const message = this.messages[i]!;
      if (!failed.has(m.id)) this.messages.splice(i, 1);
      else if (message.receives >= this.maxReceiveCount) {
        this.deadLetters.push(message.id);
        this.messages.splice(i, 1);
      }
    }
  }
}

describe(`${U} uploads through the upload queue`, () => {
  it('should renew every upload in a handful of invocations, a batch the deadline left delivered again', async () => {
    const app = newApp({ 'aws:cdk:bundling-stacks': [] });
    const template = Template.fromStack(new OcspRenewerStack(app, 'Uploads', {}));
    const mapping = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'))[0]!
      .Properties as Json;
    const uploadQueue = Object.entries(template.findResources('AWS::SQS::Queue')).find(([id]) =>
      id.startsWith('RenewerFleetUploadQueue'),
    )![1].Properties as { RedrivePolicy: { maxReceiveCount: number } };
    expect(mapping).toMatchObject({ BatchSize: 100, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    const queue = new LocalQueue(uploadQueue.RedrivePolicy.maxReceiveCount);

    // Uploads, and the notification S3 sends for each (s3rver sends none): one message each.
    let next = 0;
    const put = async () => {
      for (let i = next++; i < U; i = next++) {
        const key = `${UPLOADS}leaf-${i}.pem`;
        await client.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(uploads.leaves[i]!.bundle) }),
        );
        queue.send(
          JSON.stringify({
            Records: [
              {
                eventSource: 'aws:s3',
                eventName: 'ObjectCreated:Put',
                s3: { bucket: { name: BUCKET }, object: { key } },
              },
            ],
          }),
        );
      }
    };
    await Promise.all(Array.from({ length: 16 }, put));

    const handler = createHandler({
      env: {
        BUCKET,
        CERTS_PREFIX: UPLOADS,
        STAPLES_PREFIX: 'u/staples/',
        STATE_TABLE: UPLOAD_TABLE,
        OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
        HTTP_TIMEOUT_SECONDS: '60',
      },
      s3: client,
      dynamodb: ddb,
      ...silentTelemetry(),
    });
    const acceptedBefore = proxy.accepted.length;
    let invocations = 0;
    while (queue.messages.length > 0) {
      const batch = queue.receive(mapping.BatchSize as number);
      // The first invocation is one whose deadline has all but come: nothing may start.
      const time = invocations === 0 ? 6_000 : 300_000;
      invocations++;
      const response = await handler(
        {
          Records: batch.map((m) => ({
            messageId: m.id,
            receiptHandle: m.id,
            body: m.body,
            attributes: { ApproximateReceiveCount: String(m.receives) },
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:uploads',
            awsRegion: 'us-east-1',
          })),
        } as unknown as SQSEvent,
        { getRemainingTimeInMillis: () => time, awsRequestId: `upload-${invocations}` },
      );
      if (invocations === 1) expect(response.batchItemFailures).toHaveLength(batch.length);
      queue.settle(batch, new Set(response.batchItemFailures.map((f) => f.itemIdentifier)));
    }
    // 1 000 uploads, batches of 100: ten invocations, and one more for the batch delivered again.
    expect(invocations).toBe(Math.ceil(U / 100) + 1);
    expect(queue.deadLetters).toEqual([]);
    const written = proxy.accepted.slice(acceptedBefore).filter((k) => k.startsWith('u/staples/'));
    expect(new Set(written).size).toBe(U);
    expect(written).toHaveLength(U);
    const state = await new DynamoStateStore(ddb, UPLOAD_TABLE).load(
      uploads.leaves.map((_, i) => `leaf-${i}.pem`),
    );
    expect(state.size).toBe(U);
  }, 900_000);
});
