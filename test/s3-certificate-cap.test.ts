/**
 * The 1 MiB certificate cap on S3 objects (issue 20): a 300 MB `certs/big.pem` took a run to
 * 1.27 GB. Against s3rver, objects over the cap are refused and those under it read; against a
 * loopback server that answers a GET as S3 would but never sends the whole body (s3rver cannot),
 * the refusal comes from Content-Length before the body is read, and a body without a length
 * stops being read at the cap.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeS3Client, S3CertificateSource, S3KeyedCertificateSource } from '../lambda/adapters/s3.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import { MAX_CERTIFICATE_BYTES } from '../lambda/renew/ports.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

const BUCKET = 'certificate-caps';
let s3: S3Server;
let admin: S3Client;
let pki: TestPki;
let bundle: Buffer;

beforeAll(async () => {
  [s3, pki] = await Promise.all([startS3Server({ buckets: [BUCKET] }), makeTestPki()]);
  admin = s3.client();
  bundle = await readFile(pki.leaves.good.bundle);
  const padded = (size: number) => Buffer.concat([bundle, Buffer.alloc(size - bundle.length, 0x23)]);
  const put = (key: string, body: Buffer) =>
    admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  await Promise.all([
    put('certs/big.pem', padded(2 * MAX_CERTIFICATE_BYTES)),
    put('certs/max.pem', padded(MAX_CERTIFICATE_BYTES)),
    put('certs/small.pem', bundle),
    put('certs/small.issuer.pem', padded(MAX_CERTIFICATE_BYTES + 1)),
  ]);
}, 120_000);

afterAll(async () => {
  admin?.destroy();
  await s3?.stop();
  await pki?.cleanup();
});

describe('S3 certificate objects are capped at 1 MiB', () => {
  it('refuses a 2 MiB certificate and a 1 MiB + 1 issuer sibling, reads one of exactly 1 MiB (listed source)', async () => {
    const source = new S3CertificateSource(admin, BUCKET, 'certs/');
    expect((await source.list()).map((o) => o.key).sort()).toEqual(['big.pem', 'max.pem', 'small.pem']);
    await expect(source.read('big.pem')).rejects.toThrow(
      /^2\.0 MiB is too large for a certificate object \(limit 1 MiB\)$/,
    );
    expect((await source.read('max.pem')).length).toBe(MAX_CERTIFICATE_BYTES);
    expect(parseCertificates(await source.read('small.pem'))).toHaveLength(2);
    await expect(source.readIssuerSibling('small.pem')).rejects.toThrow(/too large for a certificate object/);
  });

  it('the same for the keyed source of the fleet worker', async () => {
    const source = new S3KeyedCertificateSource(admin, BUCKET, 'certs/', [
      { key: 'big.pem', tag: undefined },
    ]);
    await expect(source.read('big.pem')).rejects.toThrow(/^2\.0 MiB is too large for a certificate object/);
    await expect(source.readIssuerSibling('small.pem')).rejects.toThrow(/too large for a certificate object/);
  });
});

describe('S3 certificate objects: the cap holds whatever the body does', () => {
  let server: Server;
  let client: S3Client;
  /** Bytes of body the server wrote before the client went away, per request. */
  const written: number[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let sent = 0;
      const index = written.push(0) - 1;
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const headers = {
        'content-type': 'application/x-pem-file',
        etag: '"0123456789abcdef0123456789abcdef"',
        'last-modified': new Date(0).toUTCString(),
      };
      // `huge.pem` says 300 MB and sends 64 KiB, then nothing: only its length can refuse it.
      if (req.url?.includes('huge.pem')) {
        res.writeHead(200, { ...headers, 'content-length': String(300 * 1024 * 1024) });
        res.write(chunk);
        written[index] = chunk.length;
        return;
      }
      // `endless.pem` has no length and never ends: reading must stop at the cap.
      res.writeHead(200, headers);
      const pump = () => {
        while (!res.destroyed && sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          written[index] = sent;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.on('close', () => undefined);
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = makeS3Client(
      { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` },
      { region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 },
    );
  });

  afterAll(async () => {
    client?.destroy();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  it('refuses an object whose Content-Length is 300 MB from its headers, without waiting for its body', async () => {
    const source = new S3KeyedCertificateSource(client, BUCKET, 'certs/', [
      { key: 'huge.pem', tag: undefined },
    ]);
    await expect(source.read('huge.pem')).rejects.toThrow(
      /^300\.0 MiB is too large for a certificate object \(limit 1 MiB\)$/,
    );
  });

  it('stops reading a body sent without a length past 1 MiB', async () => {
    const source = new S3KeyedCertificateSource(client, BUCKET, 'certs/', [
      { key: 'endless.pem', tag: undefined },
    ]);
    await expect(source.read('endless.pem')).rejects.toThrow(
      /^too large for a certificate object: more than the limit 1 MiB$/,
    );
    // What the server got out before the connection went: the cap plus socket buffers, far
    // from the 64 MiB it would send to a reader without a cap.
    await new Promise((r) => setTimeout(r, 200));
    expect(written.at(-1)).toBeLessThan(16 * 1024 * 1024);
  });
});
