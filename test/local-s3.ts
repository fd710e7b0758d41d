/**
 * `npm run local-s3 -- [--staples <dir>] [--certs <dir>] [--bucket <name>]`: a local S3 (s3rver on
 * loopback) that keeps running, to try docs/hosts.md without an AWS account.
 *
 * Starts s3rver with one bucket, uploads the files under --staples to staples/<path> and those
 * under --certs to certs/<path>, prints the environment variables that host/pull-staples.sh, the
 * aws CLI and ocsp-renewer need to use it, and then waits. Ctrl-C (SIGINT) or SIGTERM stops
 * s3rver, removes its data and exits 0.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server } from './helpers/s3-server.js';

const USAGE = 'Usage: npm run local-s3 -- [--staples <dir>] [--certs <dir>] [--bucket <name>]\n';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        staples: { type: 'string' },
        certs: { type: 'string' },
        bucket: { type: 'string', default: 'ocsp-local' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`local-s3: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const bucket = values.bucket;
  // Waiting for a signal from here on: one that comes during start-up still stops cleanly. The
  // handlers stay (`on`, not `once`): the s3rver helper re-raises a signal nobody else listens to.
  const stopped = new Promise<string>((resolve) => {
    process.on('SIGINT', () => resolve('SIGINT'));
    process.on('SIGTERM', () => resolve('SIGTERM'));
  });
  const s3 = await startS3Server({ buckets: [bucket] });
  try {
    const client = s3.client();
    const uploaded: string[] = [];
    for (const [dir, prefix] of [
      [values.staples, 'staples/'],
      [values.certs, 'certs/'],
    ] as const) {
      if (!dir) continue;
      const files = (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile() && !e.name.startsWith('.'))
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
      for (const file of files.sort()) {
        const key = prefix + file.split(path.sep).join('/');
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(path.join(dir, file)) }),
        );
        uploaded.push(key);
      }
    }
    client.destroy();
    const { endpoint } = s3;
    const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION } = s3.env;
    process.stdout.write(
      [
        `local S3 (s3rver) at ${endpoint}, bucket ${bucket}; Ctrl-C stops it and removes its data.`,
        ...uploaded.map((key) => `uploaded s3://${bucket}/${key}`),
        '',
        '# In another shell. For host/pull-staples.sh:',
        `export OCSP_BUCKET=${bucket} OCSP_ENDPOINT_URL=${endpoint}`,
        '# For the aws CLI and ocsp-renewer (the credentials s3rver accepts):',
        `export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY} AWS_REGION=${AWS_REGION}`,
        `export AWS_ENDPOINT_URL=${endpoint} AWS_ENDPOINT_URL_S3=${endpoint}`,
        '# Then, for instance (an aws CLI older than 2.13 needs --endpoint-url):',
        `aws --endpoint-url ${endpoint} s3 ls s3://${bucket}/ --recursive`,
        `aws --endpoint-url ${endpoint} s3 cp www.ocsp s3://${bucket}/staples/www.ocsp`,
        'host/pull-staples.sh --dest /tmp/ocsp-pulled --verbose',
        `ocsp-renewer renew --certs ./certs --staples s3://${bucket}/staples/ --allow-private-responders`,
        '',
      ].join('\n'),
    );
    const signal = await stopped;
    process.stdout.write(`${signal}: stopping the local S3\n`);
    return 0;
  } finally {
    await s3.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`local-s3: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
