/**
 * The Secrets Manager certificate source, against a loopback fake that speaks the Secrets Manager
 * JSON protocol (POST / with `X-Amz-Target: secretsmanager.<Operation>`, awsJson1_1 bodies), so the
 * real SDK client does the (de)serialisation; then the deployed renewer's handler with
 * SECRETS_PREFIX over it, with s3rver, dynalite (the state table) and `openssl ocsp`.
 */
import { createPrivateKey } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HTTP } from '../lambda/adapters/http.js';
import { DynamoStateStore, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { SecretsManagerCertificateSource } from '../lambda/adapters/secrets-manager.js';
import { httpTransport } from '../lambda/adapters/transport.js';
import { createHandler } from '../lambda/aws/handler.js';
import { recorded } from './helpers/lambda-output.js';
import { readRunReport } from '../lambda/aws/run-summary.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import type { RunReport } from '../lambda/renew/ports.js';
import { startDynalite, type DynamoServer } from './helpers/dynalite.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { opensslVerify } from './helpers/openssl-verify.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

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
      // As AWS: secrets scheduled for deletion are listed only with IncludePlannedDeletion.
      const matching = secrets.filter(
        (s) =>
          names.every((v) => s.Name.toLowerCase().includes(v)) &&
          (s.DeletedDate === undefined || body.IncludePlannedDeletion === true),
      );
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
      if (secret.DeletedDate !== undefined) {
        return send(res, 400, {
          __type: 'InvalidRequestException',
          message: "You can't perform this operation on the secret because it was marked for deletion.",
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
    expect(lists[0]!.body.IncludePlannedDeletion).toBe(true);
    expect((await src.listing()).deleted).toEqual(['gone.example']);
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

// --- the deployed renewer over Secrets Manager ----------------------------------------------------

describe('the renewer handler with SECRETS_PREFIX (regression: issue 21 had stopped reading secrets)', () => {
  let responder: OpensslResponder;
  let s3: S3Server;
  let dynamo: DynamoServer;
  let admin: S3Client;
  let fake: FakeSecretsManager;
  let secrets: SecretsManagerClient;
  const bucket = 'secrets-staples';
  const table = 'secrets-state';
  const logs: string[] = [];
  const started: unknown[] = [];
  const sfn = {
    send: async (command: StartExecutionCommand) => {
      started.push(JSON.parse(command.input.input!));
      return {
        executionArn: `arn:aws:states:us-east-1:123456789012:execution:renew-all:${command.input.name}`,
      };
    },
  } as unknown as SFNClient;

  const stored: FakeSecret[] = [];
  const rotate = (name: string) => {
    const secret = stored.find((s) => s.Name === name)!;
    secret.LastChangedDate = (secret.LastChangedDate ?? T0) + 3600;
  };

  beforeAll(async () => {
    stored.push(
      { Name: 'tls/good.test', SecretString: await pem(pki.leaves.good.bundle), LastChangedDate: T0 },
      {
        Name: 'tls/a/ec.test',
        SecretString: JSON.stringify({
          certificate: await pem(pki.leaves.ec.cert),
          chain: await pem(pki.intermediate.cert),
          private_key: ecKeyPem,
        }),
        LastChangedDate: T0,
      },
      {
        Name: 'tls/broken.test',
        SecretString: JSON.stringify({ private_key: goodKeyPem }),
        LastChangedDate: T0,
      },
      { Name: 'other/ignored.test', SecretString: await pem(pki.leaves.good.bundle), LastChangedDate: T0 },
      // Deleted, and shadowed by the S3 certificate of the same key (S3 comes first): never retired.
      {
        Name: 'tls/plain.pem',
        SecretString: await pem(pki.leaves.good.bundle),
        LastChangedDate: T0,
        DeletedDate: T0 + 1,
      },
    );
    [responder, s3, dynamo, fake] = await Promise.all([
      startDelegatedResponder(pki),
      startS3Server({ buckets: [bucket] }),
      startDynalite(),
      startFakeSecretsManager(stored),
    ]);
    await dynamo.createTable(stateTableDefinition(table));
    admin = s3.client();
    secrets = clientFor(fake);
    // One certificate in S3 beside the secrets: one run renews both kinds.
    await admin.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'certs/plain.pem',
        Body: await readFile(pki.leaves.good.bundle),
      }),
    );
  });

  afterAll(async () => {
    admin?.destroy();
    secrets?.destroy();
    await Promise.all([responder?.stop(), s3?.stop(), dynamo?.stop(), fake?.close()]);
  });

  const invoke = async (event: unknown): Promise<RunReport> => {
    const summary = await summaryOf(event);
    return readRunReport(admin, summary.report!);
  };

  /** `faulty` names an S3 command the invocation's client fails (an outage of that call). */
  const summaryOf = async (event: unknown, faulty?: string) => {
    const s3Client = s3.client();
    if (faulty)
      s3Client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === faulty)
            throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
          return next(args);
        },
        { step: 'initialize' },
      );
    const ddb = dynamo.client();
    try {
      const handler = recorded(
        createHandler({
          env: {
            BUCKET: bucket,
            CERTS_PREFIX: 'certs/',
            STAPLES_PREFIX: 'staples/',
            SECRETS_PREFIX: 'tls/',
            STATE_TABLE: table,
            STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:123456789012:stateMachine:renew-all',
            OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
            ...s3.env,
          },
          s3: s3Client,
          dynamodb: ddb,
          secrets,
          sfn,
          transport: httpTransport({ ...DEFAULT_HTTP, timeoutMs: 5_000, allowPrivate: true }),
          clock: () => new Date(),
        }),
        (line) => logs.push(line),
      );
      return await handler(event);
    } finally {
      s3Client.destroy();
      ddb.destroy();
    }
  };

  const getBytes = async (key: string) => {
    const res = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  };
  const allKeys = async () =>
    ((await admin.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? [])
      .map((o) => o.Key!)
      .sort();
  /** What the renewer wrote (certs/ is the operator's input). */
  const written = async () => (await allKeys()).filter((k) => !k.startsWith('certs/'));
  const secretReads = () => fake.calls.filter((c) => c.op === 'GetSecretValue').map((c) => c.body.SecretId);

  let first: RunReport;

  it('should renew the secrets beside the S3 certificates on the first scheduled run, staples openssl verifies', async () => {
    first = await invoke({});
    expect(first.results.map((r) => [r.key, r.action]).sort()).toEqual([
      ['a/ec.test', 'renewed'],
      ['broken.test', 'failed'],
      ['good.test', 'renewed'],
      ['plain.pem', 'renewed'],
    ]);
    expect((await allKeys()).filter((k) => k.startsWith('staples/'))).toEqual([
      'staples/a/ec.test.ocsp',
      'staples/good.test.ocsp',
      'staples/plain.ocsp',
    ]);
    for (const [key, leaf] of [
      ['staples/good.test.ocsp', pki.leaves.good.cert],
      ['staples/a/ec.test.ocsp', pki.leaves.ec.cert],
    ] as const) {
      const out = await opensslVerify(await getBytes(key), leaf, pki);
      expect(out, key).toContain('Response verify OK');
      expect(out, key).toMatch(/: good/);
    }
  });

  it('should fail a secret without a certificate at the source stage with a clear reason', () => {
    const broken = first.results.find((r) => r.key === 'broken.test')!;
    expect(broken).toMatchObject({ action: 'failed', stage: 'source' });
    expect(broken.reason).toMatch(
      /^source broken\.test: cannot read: SecretString JSON has no certificate field/,
    );
  });

  it('should never let a private key out: not in the report, the logs or any S3 object', async () => {
    for (const key of [goodKey, ecKey]) {
      expectNoKey(JSON.stringify(first), key, 'the run report');
      expectNoKey(logs.join('\n'), key, 'the logs');
      for (const objectKey of await written()) expectNoKey(await getBytes(objectKey), key, objectKey);
    }
    expect(logs.join('\n')).toContain('broken.test'); // not vacuous: the logs name the failing secret
  });

  it('should read no healthy secret on a quiet run (their items say when they are due)', async () => {
    const before = secretReads().length;
    const quiet = await summaryOf({});
    expect(quiet.counts).toMatchObject({ renewed: 0 });
    expect(secretReads().slice(before)).not.toContain('tls/good.test');
    expect(secretReads().slice(before)).not.toContain('tls/a/ec.test');
  });

  it('should read a rotated secret again (new LastChangedDate) on the next scheduled run', async () => {
    const before = secretReads().length;
    rotate('tls/good.test');
    const next = await invoke({});
    // Re-read and re-validated against the stored staple, which is still fresh: no OCSP request.
    expect(next.results.find((r) => r.key === 'good.test')).toMatchObject({ action: 'fresh' });
    expect(secretReads().slice(before)).toContain('tls/good.test');
    expect(secretReads().slice(before)).not.toContain('tls/a/ec.test');
    for (const objectKey of await written()) expectNoKey(await getBytes(objectKey), goodKey, objectKey);
  });

  it('should force a secret by its key, and the secrets beside a force of everything', async () => {
    const before = secretReads().length;
    const forcedKey = await invoke({ mode: 'force', keys: ['a/ec.test'] });
    // Forced: read and fetched again (a response identical to the stored one is kept as fresh).
    expect(forcedKey.results.map((r) => r.key)).toEqual(['a/ec.test']);
    expect(forcedKey.counts.failed).toBe(0);
    expect(secretReads().slice(before)).toEqual(['tls/a/ec.test']);
    const all = await invoke({ mode: 'force' });
    expect(started).toEqual([{ force: true }]); // the S3 certificates go through the map
    expect(all.results.map((r) => [r.key, r.action === 'failed']).sort()).toEqual([
      ['a/ec.test', false],
      ['broken.test', true],
      ['good.test', false],
    ]);
  });

  it('should retire a secret scheduled for deletion as an S3 ObjectRemoved retires its certificate', async () => {
    const ddb = dynamo.client();
    /** The certificate's state item, read as the renewer reads it (consistent). */
    const item = async (key: string) => (await new DynamoStateStore(ddb, table).load([key])).get(key);
    try {
      expect(await written()).toEqual(
        expect.arrayContaining(['staples/good.test.ocsp', 'staples/plain.ocsp']),
      );
      expect(await item('good.test')).toBeDefined();
      // DeleteSecret: listed only with IncludePlannedDeletion, GetSecretValue refused. Its item is
      // not due: the run retires it anyway, without reading it.
      stored.find((x) => x.Name === 'tls/good.test')!.DeletedDate = T0 + 7200;
      // A dry run says it would retire it, and retires nothing; nor does it read it as a failure.
      const dry = await summaryOf({ dryRun: true });
      expect(dry.retired).toEqual(['good.test']);
      expect(dry.failures.map((f) => f.key)).not.toContain('good.test');
      expect(await item('good.test')).toBeDefined();
      expect(await written()).toContain('staples/good.test.ocsp');
      // A retirement that fails (S3 refuses the staple's delete) is logged and left for the next
      // run; the run itself goes on, and nothing of good.test is lost or counted as failing.
      logs.length = 0;
      const refused = await summaryOf({}, 'DeleteObjectCommand');
      expect(refused.retired).toBeUndefined();
      expect(refused.failures.map((f) => f.key)).not.toContain('good.test');
      expect(await item('good.test')).toBeDefined();
      expect(logs.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
        expect.objectContaining({
          level: 'WARN',
          message: 'cannot retire a deleted secret; the next run tries again',
          certificate: 'good.test',
        }),
      );
      const before = secretReads().length;
      const due = await summaryOf({});
      expect(due.retired).toEqual(['good.test']); // not plain.pem: its deleted secret is shadowed by S3
      expect(await item('good.test')).toBeUndefined();
      expect(await written()).not.toContain('staples/good.test.ocsp');
      expect(await written()).toContain('staples/plain.ocsp');
      expect(secretReads().slice(before)).not.toContain('tls/good.test');
      expect(due.failures.map((f) => f.key)).not.toContain('good.test');

      // The S3 certificate beside it, deleted with its notification: the same end state.
      await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'certs/plain.pem' }));
      const removed = {
        Records: [
          {
            eventSource: 'aws:s3',
            eventName: 'ObjectRemoved:Delete',
            s3: { bucket: { name: bucket }, object: { key: 'certs/plain.pem' } },
          },
        ],
      };
      await summaryOf({
        Records: [
          { messageId: 'm0', receiptHandle: 'r0', body: JSON.stringify(removed), attributes: {}, messageAttributes: {},
            md5OfBody: '', eventSource: 'aws:sqs', eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:uploads', awsRegion: 'us-east-1' },
        ],
      }); // prettier-ignore
      expect(await item('plain.pem')).toBeUndefined();
      expect(await written()).not.toContain('staples/plain.ocsp');

      // Retired once: the next run has nothing to retire and nothing of theirs fails.
      const next = await summaryOf({});
      expect(next.retired).toBeUndefined();
      expect(next.failures.filter((f) => f.key !== 'broken.test')).toEqual([]);
      expect(await item('good.test')).toBeUndefined();
    } finally {
      ddb.destroy();
    }
  });
});
