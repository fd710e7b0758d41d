/**
 * `npm run bench:fleet`: what the renewer's handler (lambda/aws/handler.ts) costs, in requests,
 * against real peers on loopback: s3rver, dynalite and a fake OCSP responder (test/helpers).
 *
 * 1. 1 000 uploads arriving as the upload queue delivers them (10 batches of 100 S3
 *    notifications): invocations, S3 / DynamoDB / OCSP requests, every certificate stapled.
 * 2. A due run over a state table of 10 000 certificates, 5 of them due: the requests it makes
 *    (goal: a constant — one Query per index shard — plus a few per due certificate; no OCSP
 *    request for the 9 995 others).
 *
 * Wall times are printed for information only (a shared 2-core machine); the request counts are
 * the result. The bench exits 1 when a count is off its goal.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { BatchWriteItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { SQSEvent } from 'aws-lambda';
import pLimit from 'p-limit';
import { STATE_TABLE, stateItem, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { createHandler as createBatchHandler, type RunSummary } from '../lambda/aws/handler.js';
import { SEEDED_MARKER } from '../lambda/aws/due-run.js';
import { countRequests } from '../test/helpers/count-requests.js';
import { startDynalite } from '../test/helpers/dynalite.js';
import { buildOcspResponse, loadSigner, startFakeResponder } from '../test/helpers/fake-responder.js';
import { makeTestPki } from '../test/helpers/pki.js';
import { startS3Server } from '../test/helpers/s3-server.js';
import { silentTelemetry } from '../test/helpers/lambda-output.js';

const BUCKET = 'bench';
const UPLOADS = 1_000;
const BATCH = 100;
const TABLE_ITEMS = 10_000;
const DUE = 5;
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000);
const at = (hours: number) => new Date(T0.getTime() + hours * 3_600_000);
/** The responder's clock, in hours after T0; its answers are an hour old. */
let responderHours = 0;

const fake = await startFakeResponder(() => ({ status: 500, body: 'not ready' }));
const [pki, s3, dynamo] = await Promise.all([
  makeTestPki({ ocspUrl: fake.url }),
  startS3Server({ buckets: [BUCKET] }),
  startDynalite(),
]);
let failed = false;
try {
  const ca = await loadSigner(pki.intermediate.cert, pki.intermediate.key);
  fake.setHandler(async (req) => ({
    body: await buildOcspResponse({
      request: req.requestDer!,
      thisUpdate: at(responderHours - 1),
      nextUpdate: at(responderHours + 23),
      signer: ca,
    }),
  }));
  const chain = Buffer.from(
    (await readFile(pki.leaves.good.cert, 'utf8')) + (await readFile(pki.intermediate.cert, 'utf8')),
  );
  const admin = s3.client();
  const ddbAdmin = dynamo.client();
  const limit = pLimit(16);
  // Every upload is the same bytes: S3 notifications carry the object's ETag (unquoted).
  const uploadedTag = createHash('md5').update(chain).digest('hex');
  const keys = Array.from({ length: UPLOADS }, (_, i) => `u${String(i).padStart(5, '0')}.pem`);
  await Promise.all(
    keys.map((key) =>
      limit(() => admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: `certs/${key}`, Body: chain }))),
    ),
  );

  // --- 1. uploads through the queue ----------------------------------------------------------
  await dynamo.createTable(stateTableDefinition('uploads'));
  const s3Client = s3.client();
  const ddbClient = dynamo.client();
  const s3Count = countRequests(s3Client);
  const ddbCount = countRequests(ddbClient);
  const env = {
    BUCKET,
    CERTS_PREFIX: 'certs/',
    STAPLES_PREFIX: 'staples/',
    OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
  };
  const worker = (table: string) =>
    createBatchHandler({
      env: { ...env, STATE_TABLE: table },
      s3: s3Client,
      dynamodb: ddbClient,
      clock: () => T0,
      ...silentTelemetry(),
    });
  const uploads = worker('uploads');
  fake.clearRequests();
  let invocations = 0;
  let failures = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < UPLOADS; i += BATCH) {
    const event: SQSEvent = {
      Records: keys.slice(i, i + BATCH).map((key, j) => ({
        messageId: `m${i + j}`,
        receiptHandle: '',
        body: JSON.stringify({
          Records: [
            {
              eventSource: 'aws:s3',
              eventName: 'ObjectCreated:Put',
              s3: { bucket: { name: BUCKET }, object: { key: `certs/${key}`, eTag: uploadedTag } },
            },
          ],
        }),
        attributes: {} as SQSEvent['Records'][number]['attributes'],
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:uploads',
        awsRegion: 'us-east-1',
      })),
    };
    invocations++;
    const res = (await uploads(event)) as { batchItemFailures: unknown[] };
    failures += res.batchItemFailures.length;
  }
  const uploadSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const staples = await admin.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'staples/' }));
  const stapled = staples.KeyCount ?? 0;
  console.log(`\n1) ${UPLOADS} uploads, ${BATCH} notifications per invocation`);
  console.log(`   invocations            ${invocations}`);
  console.log(`   failed records         ${failures}`);
  console.log(`   staples written        ${stapled}`);
  console.log(`   OCSP requests          ${fake.requests.length}`);
  console.log(`   S3 requests            ${s3Count.total} ${JSON.stringify(s3Count.byCommand)}`);
  console.log(`   DynamoDB requests      ${ddbCount.total} ${JSON.stringify(ddbCount.byCommand)}`);
  console.log(
    `   wall time              ${uploadSeconds.toFixed(1)} s (${(UPLOADS / uploadSeconds).toFixed(0)}/s)`,
  );
  if (stapled !== UPLOADS || failures !== 0 || fake.requests.length !== UPLOADS) failed = true;

  // --- 2. a due run over 10 000 state items, 5 due ---------------------------------------------
  await dynamo.createTable(stateTableDefinition('quiet'));
  const items = Array.from({ length: TABLE_ITEMS }, (_, i) => {
    // The first 5 are real certificates whose staples are due; the rest are not due for a day.
    const key = i < DUE ? keys[i]! : `other/c${i}.pem`;
    return stateItem(key, { failures: 0, nextDue: i < DUE ? at(-1).toISOString() : at(24).toISOString() }, 1);
  });
  for (let i = 0; i < items.length; i += 25 * 8) {
    await Promise.all(
      Array.from({ length: 8 }, (_, j) => items.slice(i + j * 25, i + (j + 1) * 25))
        .filter((b) => b.length > 0)
        .map((b) =>
          ddbAdmin.send(
            new BatchWriteItemCommand({
              RequestItems: { quiet: b.map((Item) => ({ PutRequest: { Item } })) },
            }),
          ),
        ),
    );
  }
  // A table the renewer has run over before: marked seeded (lambda/aws/due-run.ts), so this is a
  // steady due run, not the first one after a deploy.
  await ddbAdmin.send(
    new PutItemCommand({
      TableName: 'quiet',
      Item: { [STATE_TABLE.partitionKey]: { S: `#${SEEDED_MARKER}` }, at: { S: at(0).toISOString() } },
    }),
  );
  s3Count.reset();
  ddbCount.reset();
  fake.clearRequests();
  responderHours = 14;
  const dueStarted = process.hrtime.bigint();
  const summary = (await createBatchHandler({
    env: { ...env, STATE_TABLE: 'quiet' },
    s3: s3Client,
    dynamodb: ddbClient,
    clock: () => at(14), // past every staple's refresh point: the 5 due ones renew
    ...silentTelemetry(),
  })({ mode: 'due' })) as RunSummary;
  const dueSeconds = Number(process.hrtime.bigint() - dueStarted) / 1e9;
  console.log(`\n2) due run over ${TABLE_ITEMS} state items, ${DUE} due`);
  console.log(`   due / renewed          ${summary.due} / ${summary.counts.renewed}`);
  console.log(`   OCSP requests          ${fake.requests.length}`);
  console.log(`   S3 requests            ${s3Count.total} ${JSON.stringify(s3Count.byCommand)}`);
  console.log(`   DynamoDB requests      ${ddbCount.total} ${JSON.stringify(ddbCount.byCommand)}`);
  console.log(
    `   = ${STATE_TABLE.defaultShards} queries and the seeded marker + per due certificate ` +
      `${(s3Count.total / DUE).toFixed(0)} S3 and ${((ddbCount.total - STATE_TABLE.defaultShards - 1) / DUE).toFixed(0)} DynamoDB requests`,
  );
  console.log(`   wall time              ${dueSeconds.toFixed(2)} s`);
  if (
    summary.due !== DUE ||
    summary.counts.renewed !== DUE ||
    fake.requests.length !== DUE ||
    ddbCount.byCommand.QueryCommand !== STATE_TABLE.defaultShards
  ) {
    failed = true;
  }
  for (const c of [admin, ddbAdmin, s3Client, ddbClient]) c.destroy();
} finally {
  await Promise.all([fake.stop(), dynamo.stop(), s3.stop()]);
  await pki.cleanup();
}
process.exit(failed ? 1 : 0);
