/**
 * `npm run local-lambda -- --certs <dir> [--event <json>] [--out <dir>]`: the Lambda handler, run
 * on this machine against a local S3 (s3rver on loopback), no AWS account needed.
 *
 * Starts s3rver with an empty bucket and dynalite with an empty state table, uploads every file
 * under --certs to certs/<path>, calls the handler once with the event (default
 * {"mode":"scheduled"}: the first run seeds the table, so every certificate is decided), prints
 * the full run report (the
 * object the handler's summary names in reports/runs/) as JSON on
 * stdout (the handler's log lines go to stderr), copies the staples the run stored under staples/
 * into --out when given, and stops both. The handler reads its settings from this environment as
 * it would in Lambda (REFRESH_AT, ON_REVOKED, CERTID_HASH, ...; BUCKET is set here); a responder on
 * loopback needs OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS=1. Exit 0 when no certificate failed.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHandler } from '../lambda/aws/handler.js';
import { recorded } from './helpers/lambda-output.js';
import { readRunReport } from '../lambda/aws/run-summary.js';
import { startS3Server } from './helpers/s3-server.js';
import { startDynalite } from './helpers/dynalite.js';
import { stateTableDefinition } from '../lambda/adapters/dynamo-state.js';

const BUCKET = 'ocsp-local';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      certs: { type: 'string' },
      event: { type: 'string', default: '{"mode":"scheduled"}' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help || !values.certs) {
    (values.help ? process.stdout : process.stderr).write(
      'Usage: npm run local-lambda -- --certs <dir> [--event <json>] [--out <dir>]\n',
    );
    return values.help ? 0 : 2;
  }
  let event: unknown;
  try {
    event = JSON.parse(values.event);
  } catch {
    process.stderr.write(`local-lambda: --event is not JSON: ${values.event}\n`);
    return 2;
  }
  const [s3, dynamo] = await Promise.all([startS3Server({ buckets: [BUCKET] }), startDynalite()]);
  await dynamo.createTable(stateTableDefinition(BUCKET));
  const ddb = dynamo.client();
  try {
    const client = s3.client();
    const files = (await readdir(values.certs, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => path.relative(values.certs!, path.join(e.parentPath, e.name)));
    for (const file of files.sort()) {
      const key = `certs/${file.split(path.sep).join('/')}`;
      await client.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: key,
          Body: await readFile(path.join(values.certs, file)),
        }),
      );
      process.stderr.write(`local-lambda: uploaded s3://${BUCKET}/${key}\n`);
    }
    // The handler's log lines and metrics (Powertools, on stdout and stderr) go to stderr: stdout
    // is for the report.
    const handler = recorded(
      createHandler({
        env: { ...process.env, ...s3.env, BUCKET, STATE_TABLE: BUCKET },
        s3: client,
        dynamodb: ddb,
      }),
      (line) => process.stderr.write(`${line}\n`),
    );
    const summary = await handler(event as Parameters<typeof handler>[0]);
    // The handler returns a summary; the full run report is the object it names.
    const report = summary.report ? await readRunReport(client, summary.report) : summary;
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (values.out) {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'staples/' }));
      for (const { Key } of listed.Contents ?? []) {
        if (!Key) continue;
        const target = path.join(values.out, Key.slice('staples/'.length));
        const body = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, Buffer.from(await body.Body!.transformToByteArray()));
        process.stderr.write(`local-lambda: s3://${BUCKET}/${Key} → ${target}\n`);
      }
    }
    return report.counts.failed > 0 ? 1 : 0;
  } finally {
    ddb.destroy();
    await Promise.all([s3.stop(), dynamo.stop()]);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`local-lambda: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
