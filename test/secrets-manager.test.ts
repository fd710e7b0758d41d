/**
 * The Secrets Manager certificate source, against a loopback fake that speaks the Secrets Manager
 * JSON protocol (POST / with `X-Amz-Target: secretsmanager.<Operation>`, awsJson1_1 bodies), so the
 * real SDK client does the (de)serialisation. (The deployed renewer reads S3 only since issue 21;
 * the CLI reads secretsmanager:// locations through this source.)
 */
import { createPrivateKey } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SecretsManagerCertificateSource } from '../lambda/adapters/secrets-manager.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';

// --- the fake -----------------------------------------------------------------------------------

interface FakeSecret {
  Name: string;
  SecretString?: string;
  SecretBinary?: Buffer;
  /** Epoch seconds, as the JSON protocol sends timestamps. */
  LastChangedDate?: number;
  DeletedDate?: number;
}

interface FakeSecretsManager {
  url: string;
  /** Every call: operation and request body. */
  calls: { op: string; body: Record<string, unknown> }[];
  count(op: string): number;
  close(): Promise<void>;
}

const ACCOUNT_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:';
const arnOf = (name: string) => `${ACCOUNT_ARN}${name}-AbCdEf`;

/**
 * ListSecrets pages `pageSize` at a time (fewer if MaxResults says so). Its name filter is looser
 * than AWS's on purpose (any case-insensitive substring), so the adapter must keep exact name
 * prefixes itself.
 */
async function startFakeSecretsManager(secrets: FakeSecret[], pageSize = 2): Promise<FakeSecretsManager> {
  const calls: FakeSecretsManager['calls'] = [];
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': 'c0ffee00-0000-4000-8000-000000000000',
    });
    res.end(JSON.stringify(body));
  };
  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.method !== 'POST' || req.url !== '/' || !target.startsWith('secretsmanager.')) {
      return send(res, 400, {
        __type: 'UnknownOperationException',
        message: `${req.method} ${req.url} ${target}`,
      });
    }
    const op = target.slice('secretsmanager.'.length);
    const body = (raw ? JSON.parse(raw) : {}) as Record<string, unknown>;
    calls.push({ op, body });
    if (op === 'ListSecrets') {
      const filters = (body.Filters ?? []) as { Key: string; Values: string[] }[];
      const names = filters
        .filter((f) => f.Key === 'name')
        .flatMap((f) => f.Values.map((v) => v.toLowerCase()));
      const matching = secrets.filter((s) => names.every((v) => s.Name.toLowerCase().includes(v)));
      const start = body.NextToken ? Number(String(body.NextToken).replace('page-', '')) : 0;
      const size = Math.min(pageSize, Number(body.MaxResults ?? 100));
      const page = matching.slice(start, start + size);
      return send(res, 200, {
        SecretList: page.map((s) => ({
          ARN: arnOf(s.Name),
          Name: s.Name,
          ...(s.LastChangedDate !== undefined ? { LastChangedDate: s.LastChangedDate } : {}),
          ...(s.DeletedDate !== undefined ? { DeletedDate: s.DeletedDate } : {}),
        })),
        ...(start + size < matching.length ? { NextToken: `page-${start + size}` } : {}),
      });
    }
    if (op === 'GetSecretValue') {
      const id = String(body.SecretId);
      const secret = secrets.find((s) => s.Name === id || arnOf(s.Name) === id);
      if (!secret) {
        return send(res, 400, {
          __type: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret.",
        });
      }
      return send(res, 200, {
        ARN: arnOf(secret.Name),
        Name: secret.Name,
        VersionId: '01234567-89ab-4cde-8f01-23456789abcd',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: secret.LastChangedDate ?? 1_700_000_000,
        ...(secret.SecretString !== undefined ? { SecretString: secret.SecretString } : {}),
        ...(secret.SecretBinary ? { SecretBinary: secret.SecretBinary.toString('base64') } : {}),
      });
    }
    return send(res, 400, { __type: 'UnknownOperationException', message: op });
  };
  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => handle(req, res, raw));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    count: (op) => calls.filter((c) => c.op === op).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function clientFor(fake: FakeSecretsManager): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint: fake.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    maxAttempts: 1,
  });
}

// --- fixtures -----------------------------------------------------------------------------------

let pki: TestPki;
let work: string;
/** PEM text of two leaves' private keys, and what of them must never be seen. */
let goodKeyPem: string;
let ecKeyPem: string;
let goodKey: KeyMaterial;
let ecKey: KeyMaterial;

const pem = (path: string) => readFile(path, 'utf8');
const T0 = 1_750_000_000; // epoch seconds

interface KeyMaterial {
  /** Base64 lines of the key's PEM body that hold private material (not also in the certificate). */
  lines: string[];
  /** The private scalar / exponent (JWK `d`). */
  d: Buffer;
}

/**
 * What must never leave the renewer. An EC key's last PEM line is its public key, which the
 * certificate's PEM holds too, so lines found in the certificate are not counted as secret.
 */
function keyMaterial(keyPem: string, certPem: string): KeyMaterial {
  const lines = keyPem
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('-----') && !certPem.includes(l));
  const jwk = createPrivateKey(keyPem).export({ format: 'jwk' });
  return { lines, d: Buffer.from(jwk.d!, 'base64url') };
}

function expectNoKey(haystack: Buffer | string, key: KeyMaterial, where: string): void {
  const bytes = Buffer.isBuffer(haystack) ? haystack : Buffer.from(haystack);
  const text = bytes.toString('latin1');
  expect(text, where).not.toContain('PRIVATE KEY');
  for (const line of key.lines)
    expect(text.includes(line), `${where} holds a line of the private key`).toBe(false);
  expect(bytes.includes(key.d), `${where} holds the private key's d`).toBe(false);
  expect(text.includes(key.d.toString('base64')), `${where} holds d in base64`).toBe(false);
}

beforeAll(async () => {
  [pki, work] = await Promise.all([makeTestPki(), mkdtemp(join(tmpdir(), 'ocsp-renewer-secrets-'))]);
  [goodKeyPem, ecKeyPem] = await Promise.all([pem(pki.leaves.good.key), pem(pki.leaves.ec.key)]);
  goodKey = keyMaterial(goodKeyPem, await pem(pki.leaves.good.cert));
  ecKey = keyMaterial(ecKeyPem, await pem(pki.leaves.ec.cert));
  // The checks below would be empty without private lines to look for.
  expect(goodKey.lines.length).toBeGreaterThan(10);
  expect(ecKey.lines.length).toBeGreaterThan(0);
});

afterAll(async () => {
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

// --- the adapter --------------------------------------------------------------------------------

describe('SecretsManagerCertificateSource', () => {
  let fake: FakeSecretsManager | undefined;
  let client: SecretsManagerClient | undefined;

  afterEach(async () => {
    client?.destroy();
    await fake?.close();
    fake = client = undefined;
  });

  const source = async (secrets: FakeSecret[], prefix = 'tls/') => {
    fake = await startFakeSecretsManager(secrets);
    client = clientFor(fake);
    return new SecretsManagerCertificateSource(client, prefix);
  };

  it('should list every page and keep only names that start with the exact prefix', async () => {
    const src = await source([
      { Name: 'tls/a.example', LastChangedDate: T0 },
      { Name: 'old-tls/b.example', LastChangedDate: T0 }, // matched by the loose name filter
      { Name: 'tls/sub/c.example', LastChangedDate: T0 + 60 },
      { Name: 'TLS/d.example', LastChangedDate: T0 },
      { Name: 'tls/', LastChangedDate: T0 }, // the prefix itself names no certificate
      { Name: 'tls/gone.example', LastChangedDate: T0, DeletedDate: T0 + 1 },
      { Name: 'tls/e.example', LastChangedDate: T0 + 120 },
      { Name: 'db/password' },
    ]);
    const listed = await src.list();
    expect(listed).toEqual([
      { key: 'a.example', tag: new Date(T0 * 1000).toISOString() },
      { key: 'sub/c.example', tag: new Date((T0 + 60) * 1000).toISOString() },
      { key: 'e.example', tag: new Date((T0 + 120) * 1000).toISOString() },
    ]);
    const lists = fake!.calls.filter((c) => c.op === 'ListSecrets');
    // 7 matching secrets, 2 a page: 4 pages, each asked for with the previous NextToken.
    expect(lists.map((c) => c.body.NextToken)).toEqual([undefined, 'page-2', 'page-4', 'page-6']);
    expect(lists[0]!.body.Filters).toEqual([{ Key: 'name', Values: ['tls/'] }]);
    expect(src.description).toBe('secretsmanager://tls/');
  });

  it('should read a PEM bundle secret as its certificates only, dropping the private key', async () => {
    const bundle = await pem(pki.leaves.good.bundle);
    expect(bundle).toContain('PRIVATE KEY');
    const src = await source([{ Name: 'tls/bundle', SecretString: bundle }]);
    const bytes = await src.read('bundle');
    const certs = parseCertificates(bytes);
    expect(certs).toHaveLength(2);
    expect(certs[0]!.serialHex.toUpperCase()).toBe(pki.leaves.good.serialHex);
    expectNoKey(bytes, goodKey, 'the bytes read');
  });

  it('should read the ACM export JSON shape {certificate, chain, private_key} as the certificate and chain', async () => {
    const secret = JSON.stringify({
      certificate: await pem(pki.leaves.ec.cert),
      chain: await pem(pki.chain),
      private_key: ecKeyPem,
    });
    const src = await source([{ Name: 'tls/acm', SecretString: secret }]);
    const bytes = await src.read('acm');
    const certs = parseCertificates(bytes);
    expect(certs).toHaveLength(3); // leaf, intermediate, root
    expect(certs[0]!.serialHex.toUpperCase()).toBe(pki.leaves.ec.serialHex);
    expectNoKey(bytes, ecKey, 'the bytes read');
  });

  it('should refuse a JSON secret without a certificate field, naming the fields it looks for', async () => {
    const src = await source([
      { Name: 'tls/keyonly', SecretString: JSON.stringify({ private_key: goodKeyPem }) },
    ]);
    const attempt = src.read('keyonly');
    await expect(attempt).rejects.toThrow(
      /SecretString JSON has no certificate field \(one of certificate, cert,/,
    );
    const message = await attempt.catch((err: Error) => err.message);
    expectNoKey(message, goodKey, 'the error');
  });

  it('should read a DER SecretBinary as is', async () => {
    const der = await readFile(pki.goodDer);
    const src = await source([{ Name: 'tls/binary', SecretBinary: der }]);
    const bytes = await src.read('binary');
    expect(Buffer.compare(bytes, der)).toBe(0);
    expect(parseCertificates(bytes)[0]!.serialHex.toUpperCase()).toBe(pki.leaves.good.serialHex);
  });

  it('should read a PEM SecretBinary as PEM, dropping its key', async () => {
    const src = await source([{ Name: 'tls/binpem', SecretBinary: await readFile(pki.leaves.good.bundle) }]);
    const bytes = await src.read('binpem');
    expect(parseCertificates(bytes)).toHaveLength(2);
    expectNoKey(bytes, goodKey, 'the bytes read');
  });

  it('should refuse a value over the 1 MiB certificate cap before parsing it (issue 20)', async () => {
    const bundle = await pem(pki.leaves.good.bundle);
    const padding = '#'.repeat(1024 * 1024); // text outside PEM blocks is allowed, and was read whole
    const src = await source([
      { Name: 'tls/huge', SecretString: bundle + padding },
      { Name: 'tls/hugebin', SecretBinary: Buffer.concat([Buffer.from(bundle), Buffer.from(padding)]) },
      { Name: 'tls/fits', SecretString: bundle + '#'.repeat(1024 * 1024 - bundle.length) },
    ]);
    await expect(src.read('huge')).rejects.toThrow(
      /^1\.0 MiB is too large for a certificate secret \(limit 1 MiB\)$/,
    );
    await expect(src.read('hugebin')).rejects.toThrow(/too large for a certificate secret \(limit 1 MiB\)/);
    expect(parseCertificates(await src.read('fits'))).toHaveLength(2);
  });

  it('should surface a missing secret as the service error', async () => {
    const src = await source([]);
    await expect(src.read('nope')).rejects.toThrow(/can't find the specified secret/);
    expect(fake!.calls.at(-1)).toEqual({ op: 'GetSecretValue', body: { SecretId: 'tls/nope' } });
  });
});
