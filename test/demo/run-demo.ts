/**
 * `npm run demo`: the whole product on loopback, no AWS account, in well under a minute.
 *
 * A demo PKI (root → intermediate → leaves, a delegated OCSP signer) is made with openssl; an
 * `openssl ocsp` responder, a local S3 server (s3rver) and a local DynamoDB (dynalite) start on
 * loopback; the certificates are uploaded; the Lambda handler runs a scheduled run (the first one
 * seeds the state table, so every certificate is decided); the host pull script installs the
 * staples with the aws CLI and checks them with openssl; `openssl s_server` staples one; and
 * `openssl s_client -status` shows that a client receives a successful, good OCSP response.
 * Then the upload queue's path in-process: the same uploads as SQS-shaped S3 events to the
 * handler, and two `{"mode":"due"}` runs (now: nothing due; 20 hours later: the due ones renewed
 * inline). Last, "force all": `{"mode":"force"}` to the handler, whose StartExecution runs the
 * synthesized state machine (parent and children, test/helpers/local-state-machine.ts) with the
 * same handler as its Lambda tasks.
 * Everything is torn down at the end, and the exit code says whether it all worked.
 */
import type { SQSEvent } from 'aws-lambda';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { plural } from '../../lambda/core/plural.js';
import { formatRunReport } from '../../lambda/report/explain.js';
import { createHandler, type RunSummary } from '../../lambda/aws/handler.js';
import { stateTableDefinition } from '../../lambda/adapters/dynamo-state.js';
import { startDynalite } from '../helpers/dynalite.js';
import { startLocalStepFunctions, synthesizedStateMachine } from '../helpers/local-state-machine.js';
import { readRunReport } from '../../lambda/aws/run-summary.js';
import { startDelegatedResponder } from '../helpers/openssl-responder.js';
import { freePort, makeTestPki } from '../helpers/pki.js';
import { startS3Server } from '../helpers/s3-server.js';
import { sClient, sServerArgs, track } from '../helpers/processes.js';
import { recorded, silentTelemetry } from '../helpers/lambda-output.js';

const exec = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUCKET = 'ocsp-demo';

export interface DemoResult {
  ok: boolean;
  renewed: number;
  installed: string[];
  clientStatus: string;
  /** The fleet path: uploads as SQS batches to the worker, then scheduled due runs. */
  fleet: { uploadRenewed: number; dueNow: number; dueLater: number; dueRenewed: number };
  /** `{"mode":"force"}`: the execution it started, the map's children and what they renewed. */
  forced: { input: string; children: number; renewed: number; failed: number };
  seconds: number;
}

/** Debian's aws CLI v2 when present, else whatever `aws` is on PATH (v1 works too). */
export function findAwsCli(): string | undefined {
  if (existsSync('/usr/bin/aws')) return '/usr/bin/aws';
  const onPath = (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'aws'));
  return onPath.find((p) => existsSync(p));
}

export async function runDemo(say: (line: string) => void = console.log): Promise<DemoResult> {
  const started = Date.now();
  const step = (text: string) => say(`\n== ${text} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  const aws = findAwsCli();
  if (!aws) throw new Error('the demo needs the aws CLI (Debian: apt-get install awscli)');
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    step('making a demo PKI with openssl');
    const pki = await makeTestPki();
    cleanups.push(() => pki.cleanup());
    say(`root → intermediate → leaves good, revoked, noOcsp, mustStaple; delegated OCSP signer (${pki.dir})`);

    step('starting an openssl OCSP responder, a local S3 server and a local DynamoDB on loopback');
    const responder = await startDelegatedResponder(pki);
    cleanups.push(() => responder.stop());
    const s3 = await startS3Server({ buckets: [BUCKET] });
    cleanups.push(() => s3.stop());
    const dynamo = await startDynalite();
    cleanups.push(() => dynamo.stop());
    await dynamo.createTable(stateTableDefinition('ocsp-demo'));
    const ddb = dynamo.client();
    cleanups.push(async () => ddb.destroy());
    say(`OCSP responder ${responder.url}, S3 ${s3.endpoint}, DynamoDB ${dynamo.endpoint}`);

    step('uploading certificates to s3://ocsp-demo/certs/');
    const client = s3.client();
    const uploads: Array<[string, string]> = [
      ['certs/web/good.pem', pki.leaves.good.bundle], // leaf + intermediate + its private key (ignored)
      ['certs/web/mustStaple.pem', pki.leaves.mustStaple.bundle],
      ['certs/mail/revoked.pem', pki.leaves.revoked.bundle],
      ['certs/legacy/noOcsp.pem', pki.leaves.noOcsp.bundle],
    ];
    for (const [key, file] of uploads) {
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: await readFile(file) }));
      say(`  ${key}`);
    }

    step('running the Lambda handler: {"mode":"scheduled"} (the first run seeds the state table)');
    const env = {
      ...process.env,
      ...s3.env,
      BUCKET,
      STATE_TABLE: 'ocsp-demo',
      OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1', // the demo responder is on loopback
    };
    const handler = createHandler({ env, s3: client, dynamodb: ddb, ...silentTelemetry() });
    const summary = await handler({ mode: 'scheduled' });
    // The handler returns a summary; the full run report is an object in the bucket.
    say(`run report: ${summary.report}`);
    const report = await readRunReport(client, summary.report!);
    say(formatRunReport(report));

    step('pulling staples with host/pull-staples.sh (aws CLI + openssl checks)');
    const work = await mkdtemp(path.join(tmpdir(), 'ocsp-demo-host-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const dest = path.join(work, 'staples');
    const pull = await exec(
      'sh',
      [
        path.join(root, 'host', 'pull-staples.sh'),
        '--bucket',
        BUCKET,
        '--dest',
        dest,
        '--endpoint-url',
        s3.endpoint,
        '--aws-cli',
        aws,
        '--issuer',
        pki.intermediate.cert,
        '--ca-file',
        pki.chain,
        // The script installs a valid revoked staple by default; the demo shows the opt-out.
        '--on-revoked',
        'withhold',
        '--reload',
        'echo "reload: $OCSP_INSTALLED"',
      ],
      { env: { ...env } },
    ).catch((err: { stdout?: string; stderr?: string; code?: number }) => err);
    say(`${pull.stdout ?? ''}${pull.stderr ?? ''}`.trim());
    const installed = ['web/good.ocsp', 'web/mustStaple.ocsp', 'mail/revoked.ocsp'].filter((f) =>
      existsSync(path.join(dest, f)),
    );

    step('serving web/good.ocsp with openssl s_server; asking with openssl s_client -status');
    const port = await freePort();
    const server = spawn(
      'openssl',
      sServerArgs({
        port,
        leaf: pki.leaves.good,
        chain: pki.intermediate.cert,
        staple: path.join(dest, 'web', 'good.ocsp'),
      }),
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    track(server);
    cleanups.push(async () => {
      if (server.exitCode === null) server.kill('SIGKILL');
    });
    await waitForAccept(server);
    const clientOut = await sClient(['-connect', `127.0.0.1:${port}`, '-status', '-CAfile', pki.root.cert]);
    const responseStatus = /OCSP Response Status: (\w+)/.exec(clientOut)?.[1] ?? 'none';
    const certStatus = /Cert Status: (\w+)/.exec(clientOut)?.[1] ?? 'none';
    const verified = /Verify return code: 0 \(ok\)/.test(clientOut);
    say(
      `client: OCSP Response Status: ${responseStatus}; Cert Status: ${certStatus}; TLS verify ${verified ? 'ok' : 'FAILED'}`,
    );

    step('uploads through the queue, then scheduled due runs (another prefix, its own table)');
    await dynamo.createTable(stateTableDefinition('ocsp-demo-state'));
    for (const [key, file] of uploads) {
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `fleet/${key}`, Body: await readFile(file) }),
      );
    }
    const fleetEnv = {
      ...env,
      CERTS_PREFIX: 'fleet/certs/',
      STAPLES_PREFIX: 'fleet/staples/',
      REPORTS_PREFIX: 'fleet/reports/',
      STATE_TABLE: 'ocsp-demo-state',
    };
    const worker = (clock: () => Date) =>
      createHandler({ env: fleetEnv, s3: client, dynamodb: ddb, clock, ...silentTelemetry() });
    // What the upload queue hands the worker: S3 notifications, one per SQS record.
    const records = uploads.map(([key], i) => ({
      messageId: `m${i}`,
      receiptHandle: `r${i}`,
      body: JSON.stringify({
        Records: [
          {
            eventName: 'ObjectCreated:Put',
            s3: { bucket: { name: BUCKET }, object: { key: `fleet/${key}` } },
          },
        ],
      }),
      attributes: {},
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:demo:000000000000:uploads',
      awsRegion: 'demo',
    }));
    const uploadLog: string[] = [];
    const uploadResponse = (await recorded(
      createHandler({ env: fleetEnv, s3: client, dynamodb: ddb }),
      (line) => uploadLog.push(line),
    )({ Records: records } as SQSEvent)) as { batchItemFailures: unknown[] };
    const uploadLine = uploadLog
      .map((l) => JSON.parse(l) as { message?: string; counts?: { renewed: number } })
      .find((l) => l.message === 'run report');
    const uploadRenewed = uploadLine?.counts?.renewed ?? 0;
    say(
      `upload batch of ${records.length} SQS records: ${uploadRenewed} renewed, ${uploadResponse.batchItemFailures.length} records failed`,
    );
    const now = new Date();
    const dueNow = (await worker(() => now)({ mode: 'due' })) as RunSummary;
    say(`{"mode":"due"} now: ${dueNow.due} due (the due index: 8 queries, no listing, no OCSP request)`);
    // OCSP times have one-second resolution: a response from the same second as the staple is
    // no newer, and is not a renewal. Wait for the next second.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const later = new Date(now.getTime() + 20 * 3_600_000);
    const dueLater = (await worker(() => later)({ mode: 'due' })) as RunSummary;
    say(
      `{"mode":"due"} 20 h later: ${dueLater.due} due, ${dueLater.counts.renewed} renewed inline (up to INLINE_MAX_KEYS; more would start the state machine)`,
    );
    const fleet = {
      uploadRenewed,
      dueNow: dueNow.due ?? -1,
      dueLater: dueLater.due ?? -1,
      dueRenewed: dueLater.counts.renewed,
    };

    step('forcing every certificate through the state machine: {"mode":"force"} (ForceAllCommand)');
    const forced = await forceAll(env, BUCKET, client, ddb, cleanups, say);

    const ok =
      fleet.uploadRenewed >= 3 &&
      fleet.dueNow === 0 &&
      fleet.dueLater >= 3 &&
      fleet.dueRenewed === fleet.dueLater &&
      forced.children >= 1 &&
      forced.renewed === report.counts.renewed &&
      forced.failed === 0 &&
      report.counts.renewed >= 3 &&
      installed.includes('web/good.ocsp') &&
      !installed.includes('mail/revoked.ocsp') &&
      responseStatus === 'successful' &&
      certStatus === 'good' &&
      verified;
    const seconds = (Date.now() - started) / 1000;
    step('summary');
    say(
      [
        `Lambda run: ${report.counts.renewed} renewed, ${report.counts.skipped} skipped (no OCSP URL), ${report.revoked} revoked`,
        `pull script installed: ${installed.join(', ') || 'nothing'} (the revoked staple was kept out)`,
        `TLS client received a stapled OCSP response: ${responseStatus}, ${certStatus}`,
        `queue and due runs: ${fleet.uploadRenewed} renewed from uploads; due runs: ${fleet.dueNow} due now, ${fleet.dueRenewed} of ${fleet.dueLater} renewed 20 h later`,
        `force all: ${forced.renewed} renewed by ${plural(forced.children, 'map child', 'map children')} of the state machine`,
        `${ok ? 'DEMO OK' : 'DEMO FAILED'} in ${seconds.toFixed(1)} s`,
      ].join('\n'),
    );
    return {
      ok,
      renewed: report.counts.renewed,
      installed,
      clientStatus: `${responseStatus}/${certStatus}`,
      fleet,
      forced,
      seconds,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

/**
 * "Force all" as deployed: `{"mode":"force"}` to the handler, which starts the state machine
 * (here: StartExecution on loopback, the synthesized definition run by aws-local-stepfunctions,
 * no bundling, no cdk.out left); its Distributed Map's children invoke the same handler.
 */
async function forceAll(
  env: NodeJS.ProcessEnv,
  bucket: string,
  s3: S3Client,
  dynamodb: DynamoDBClient,
  cleanups: Array<() => Promise<unknown>>,
  say: (line: string) => void,
): Promise<DemoResult['forced']> {
  const definition = synthesizedStateMachine(bucket);
  // The map's children invoke the handler that starts the execution: one function, as deployed.
  const sfn = await startLocalStepFunctions(definition, { s3, invoke: (payload) => handler(payload) });
  cleanups.push(() => sfn.stop());
  const handler = createHandler({
    env: { ...env, STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:ocsp-demo' },
    s3,
    dynamodb,
    sfn: sfn.client,
    ...silentTelemetry(),
  });
  const answer = (await handler({ mode: 'force' })) as RunSummary;
  const [execution] = sfn.executions;
  if (!execution) throw new Error('{"mode":"force"} started no execution');
  say(
    `handler: StartExecution ${execution.name} with ${JSON.stringify(execution.input)} (on AWS the map writes its results under ${answer.results})`,
  );
  const output = (await execution.output) as { children: { summary: RunSummary }[] };
  const sum = (f: (s: RunSummary) => number) => output.children.reduce((n, c) => n + f(c.summary), 0);
  const forced = {
    input: JSON.stringify(execution.input),
    children: output.children.length,
    renewed: sum((s) => s.counts.renewed),
    failed: sum((s) => s.counts.failed),
  };
  say(
    `state machine (synthesized, run by aws-local-stepfunctions): RenewAll listed certs/ → ${plural(forced.children, 'map child', 'map children')} → the handler: ${forced.renewed} renewed, ${forced.failed} failed`,
  );
  return forced;
}

/** s_server prints ACCEPT once it listens (a probe connection would be served as a client). */
function waitForAccept(server: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`s_server did not start: ${seen}`)), 5_000);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('ACCEPT')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout?.on('data', onData);
    server.stderr?.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    server.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s_server exited (${code}): ${seen}`));
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runDemo().then(
    (r) => {
      process.exitCode = r.ok ? 0 : 1;
    },
    (err: unknown) => {
      console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
