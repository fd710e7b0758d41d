/**
 * The moto_server helper, and the S3 and SQS behaviour the tests rely on it for: conditional PUTs
 * answered as S3 answers them (s3rver ignores them) and S3 event notifications sent to a queue.
 * Skipped, saying so, where moto_server is not installed. And .ci/run's check for it, which
 * reports it and never fails CI without it.
 */
import {
  CreateBucketCommand,
  PutBucketNotificationConfigurationCommand,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli-process.js';
import { isMotoAvailable, startMoto, type MotoServer } from './helpers/moto.js';
import { onPath } from './helpers/shells.js';

const BUCKET = 'moto-smoke';

if (!isMotoAvailable()) console.warn('moto_server is not on PATH: the moto helper tests are skipped');

describe.runIf(isMotoAvailable())('test helpers: startMoto', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqs: SQSClient;

  beforeAll(async () => {
    moto = await startMoto();
    s3 = moto.s3();
    sqs = moto.sqs();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  }, 120_000);

  afterAll(async () => {
    s3?.destroy();
    sqs?.destroy();
    await moto?.stop();
  });

  /** The HTTP status S3 answered a PutObject with. */
  const put = async (key: string, conditions: { IfNoneMatch?: string; IfMatch?: string } = {}) => {
    try {
      const out = await s3.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from(key), ...conditions }),
      );
      return { status: 200, etag: out.ETag };
    } catch (err) {
      if (err instanceof S3ServiceException) return { status: err.$metadata.httpStatusCode, name: err.name };
      throw err;
    }
  };

  it('should answer conditional PUTs as S3 does: 412 for If-None-Match on an object, 404 for If-Match on none', async () => {
    const first = await put('a', { IfNoneMatch: '*' });
    expect(first.status).toBe(200);
    expect(await put('a', { IfNoneMatch: '*' })).toEqual({ status: 412, name: 'PreconditionFailed' });
    expect(await put('a', { IfMatch: '"0123456789abcdef0123456789abcdef"' })).toEqual({
      status: 412,
      name: 'PreconditionFailed',
    });
    expect((await put('a', { IfMatch: first.etag })).status).toBe(200);
    expect(await put('missing', { IfMatch: first.etag })).toEqual({ status: 404, name: 'NoSuchKey' });
  });

  it('should send S3 event notifications to an SQS queue, filtered by prefix, in S3 event shape', async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'smoke' }));
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: BUCKET,
        NotificationConfiguration: {
          QueueConfigurations: [
            {
              QueueArn: Attributes!.QueueArn,
              Events: ['s3:ObjectCreated:*'],
              Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'certs/' }] } },
            },
          ],
        },
      }),
    );
    await put('other/x.pem');
    await put('certs/a b.pem');
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const bodies = Messages.map((m) => JSON.parse(m.Body!) as Record<string, unknown>);
    // S3's test event when the configuration is set, then the one PUT under the prefix.
    expect(bodies).toMatchObject([
      { Event: 's3:TestEvent', Bucket: BUCKET },
      {
        Records: [
          { eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: BUCKET } } },
        ],
      },
    ]);
    // URL-encoded, + for a space (moto also encodes the slash, which S3 leaves as it is).
    const key = (bodies[1] as { Records: { s3: { object: { key: string } } }[] }).Records[0]!.s3.object.key;
    expect(decodeURIComponent(key.replace(/\+/g, ' '))).toBe('certs/a b.pem');
  });
});

describe('.ci/run: moto_server', () => {
  /** The script's moto_server block (from its comment to its `fi`), run by bash with `PATH`. */
  const runCheck = (PATH: string) => {
    const script = readFileSync(path.join(REPO_ROOT, '.ci/run'), 'utf8');
    const block = /^# moto_server[^]*?^fi$/m.exec(script);
    expect(block, '.ci/run has no moto_server block').not.toBeNull();
    return spawnSync(onPath('bash')!, ['-euo', 'pipefail', '-c', block![0]], {
      env: { PATH },
      encoding: 'utf8',
    });
  };

  it('should say that moto_server is missing and what falls back, and go on', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-no-moto-'));
    try {
      const result = runCheck(empty);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(
        /^moto_server: not on PATH: the topology test's upload path falls back to s3rver/,
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it.runIf(isMotoAvailable())('should name moto_server and its version where it is installed', () => {
    const result = runCheck(process.env.PATH!);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^moto_server: \/\S+ \(moto (\d+\.\d+\.\d+|version unknown)\)$/m);
  });
});
