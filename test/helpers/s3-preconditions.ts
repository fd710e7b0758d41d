/**
 * Conditional PUTs for the test s3rver, which ignores them: a small HTTP proxy in front of it that
 * does what S3 does with `If-Match` / `If-None-Match` on PutObject.
 *
 * For a PUT carrying either header, the proxy takes a per-key lock, HEADs the object on s3rver
 * (its own signed client) and compares:
 * - `If-None-Match: *` and the object exists → 412 PreconditionFailed;
 * - `If-Match: <etag>` and the object is missing → 404 NoSuchKey; its ETag differs → 412;
 * otherwise it forwards the request unchanged and releases the lock when s3rver has answered, so
 * check-and-write is atomic per key, as on S3. Every other request is forwarded untouched, the
 * `Host` header included, so SigV4 signatures made for the proxy's address still verify.
 *
 * Not modelled: S3's 409 ConditionalRequestConflict (the lock serialises instead), conditional
 * multipart uploads, and `If-Match` on other operations.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeadObjectCommand, NotFound, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '../../lambda/adapters/s3.js';
import type { S3Server } from './s3-server.js';

export interface PreconditionProxy {
  /** http://127.0.0.1:<port>, to use in place of the s3rver's endpoint. */
  endpoint: string;
  env: Record<string, string>;
  /** A new client talking to the proxy. */
  client(): S3Client;
  /** Conditional PUTs refused (412, or 404 for If-Match on a missing object), by key. */
  readonly refused: string[];
  /** Conditional PUTs let through, by key. */
  readonly accepted: string[];
  stop(): Promise<void>;
}

export async function startPreconditionProxy(s3: S3Server): Promise<PreconditionProxy> {
  const upstream = new URL(s3.endpoint);
  // The proxy's own HEAD is retried as an SDK client retries a dropped connection: on a loaded
  // machine s3rver can close a kept-alive socket just as it is reused ("socket hang up"), and
  // that is the proxy's hiccup, not a failed staple write of the code under test.
  const head = makeS3Client(s3.env, {
    region: s3.env.AWS_REGION,
    credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! },
    maxAttempts: 3,
  });
  const locks = new Map<string, Promise<void>>();
  const refused: string[] = [];
  const accepted: string[] = [];

  /** Runs `fn` once every earlier holder of `key` is done. */
  const withLock = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const before = locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = before.then(() => mine);
    locks.set(key, chain);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (locks.get(key) === chain) locks.delete(key);
    }
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) =>
    new Promise<void>((resolve) => {
      const out = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          // A fresh connection each time: s3rver closes idle ones after 5 s, and a reused one
          // that it closed meanwhile would surface as ECONNRESET.
          agent: false,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('end', resolve);
          answer.on('error', () => resolve());
        },
      );
      out.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(err));
        resolve();
      });
      out.end(body);
    });

  const fail = (res: http.ServerResponse, status: number, code: string, message: string) => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
    );
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const ifMatch = req.headers['if-match'];
      const ifNoneMatch = req.headers['if-none-match'];
      if (req.method !== 'PUT' || (ifMatch === undefined && ifNoneMatch === undefined)) {
        void forward(req, res, body);
        return;
      }
      // Path-style: /<bucket>/<key>?<query>
      const url = new URL(req.url ?? '/', 'http://proxy');
      const [, bucket, ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      void withLock(`${bucket}/${key}`, async () => {
        const etag = await currentEtag(head, bucket!, key);
        let refusal: [number, string] | undefined;
        if (ifNoneMatch === '*' && etag !== undefined) refusal = [412, 'PreconditionFailed'];
        else if (ifMatch !== undefined && etag === undefined) refusal = [404, 'NoSuchKey'];
        else if (ifMatch !== undefined && unquote(ifMatch) !== unquote(etag!)) {
          refusal = [412, 'PreconditionFailed'];
        }
        if (refusal) {
          refused.push(key);
          fail(res, refusal[0], refusal[1], 'At least one of the pre-conditions you specified did not hold');
          return;
        }
        accepted.push(key);
        await forward(req, res, body);
      }).catch((err: unknown) => fail(res, 500, 'InternalError', `precondition proxy: ${String(err)}`));
    });
  });
  // Clients keep connections to the proxy: idle ones live longer than the slowest test step.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env: Record<string, string> = { ...s3.env, AWS_ENDPOINT_URL_S3: endpoint };
  return {
    endpoint,
    env,
    client: () =>
      makeS3Client(env, {
        region: env.AWS_REGION,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
        maxAttempts: 1,
      }),
    refused,
    accepted,
    stop: async () => {
      head.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function currentEtag(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag;
  } catch (err) {
    if (
      err instanceof NotFound ||
      (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404)
    ) {
      return undefined;
    }
    throw err;
  }
}

const unquote = (etag: string) => etag.replace(/^W\//, '').replace(/"/g, '');
