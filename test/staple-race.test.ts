/**
 * Conditional staple writes: two overlapping runs never lose the newer staple.
 *
 * Peers: s3rver behind the precondition proxy (test/helpers/s3-preconditions.ts, which answers
 * If-Match / If-None-Match as S3 does), the filesystem store in a temp dir, and a fake responder
 * whose first answer is held back until a second run has stored its staple. Both runs read the
 * same stored staple before either writes: the race that used to let the later writer win.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsCertificateSource, FsStapleStore } from '../lambda/adapters/filesystem.js';
import { DEFAULT_HTTP } from '../lambda/adapters/http.js';
import { S3CertificateSource, S3StapleStore } from '../lambda/adapters/s3.js';
import { httpTransport } from '../lambda/adapters/transport.js';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { certIdFor } from '../lambda/core/ocsp-request.js';
import type { CertificateSource, StapleMeta, StapleStore, RunReport } from '../lambda/renew/ports.js';
import { run } from '../lambda/renew/run.js';
import {
  buildOcspResponse,
  loadSigner,
  startFakeResponder,
  type FakeResponder,
  type ResponseSigner,
} from './helpers/fake-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startPreconditionProxy, type PreconditionProxy } from './helpers/s3-preconditions.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { at, T0 } from './helpers/time.js';

const BUCKET = 'race';
const META: StapleMeta = {
  thisUpdate: T0,
  nextUpdate: undefined,
  producedAt: undefined,
  certStatus: 'good',
  certTag: undefined,
};

let fake: FakeResponder;
let pki: TestPki;
let s3: S3Server;
let proxy: PreconditionProxy;
let client: S3Client;
let work: string;
let chainPem: string;
let leaf: Certificate;
let issuer: Certificate;
let ca: ResponseSigner;

beforeAll(async () => {
  fake = await startFakeResponder(() => ({ status: 500, body: 'no handler set' }));
  [pki, s3, work] = await Promise.all([
    makeTestPki({ ocspUrl: fake.url }),
    startS3Server({ buckets: [BUCKET] }),
    mkdtemp(path.join(tmpdir(), 'ocsp-renewer-race-')),
  ]);
  proxy = await startPreconditionProxy(s3);
  client = proxy.client();
  const intermediatePem = await readFile(pki.intermediate.cert, 'utf8');
  chainPem = (await readFile(pki.leaves.good.cert, 'utf8')) + intermediatePem;
  issuer = parseCertificates(Buffer.from(intermediatePem))[0]!;
  leaf = parseCertificates(Buffer.from(chainPem))[0]!;
  ca = await loadSigner(pki.intermediate.cert, pki.intermediate.key);
}, 120_000);

afterAll(async () => {
  client?.destroy();
  await Promise.all([fake?.stop(), proxy?.stop()]);
  await s3?.stop();
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

/** A staple for the good leaf, fetched `hours` from T0, valid 24 h. */
const stapleAt = (hours: number) =>
  buildOcspResponse({
    certId: certIdFor(leaf, issuer),
    thisUpdate: at(hours),
    nextUpdate: at(hours + 24),
    signer: ca,
  });

interface Place {
  source: CertificateSource;
  store: StapleStore;
  /** The staple's bytes now. */
  staple(): Promise<Buffer | undefined>;
}

let seq = 0;

/** A certificate and a due staple (20 h into its 24 h) in S3, behind the precondition proxy. */
async function s3Place(): Promise<Place> {
  const prefix = `p${++seq}/`;
  await client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}certs/good.pem`, Body: Buffer.from(chainPem) }),
  );
  await client.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}staples/good.ocsp`, Body: await stapleAt(-20) }),
  );
  return {
    source: new S3CertificateSource(client, BUCKET, `${prefix}certs/`),
    store: new S3StapleStore(client, BUCKET, `${prefix}staples/`),
    staple: async () => {
      const res = await client.send(
        new GetObjectCommand({ Bucket: BUCKET, Key: `${prefix}staples/good.ocsp` }),
      );
      return Buffer.from(await res.Body!.transformToByteArray());
    },
  };
}

/** The same in a directory. */
async function fsPlace(): Promise<Place> {
  const dir = await mkdtemp(path.join(work, 'fs-'));
  await mkdir(path.join(dir, 'certs'));
  await mkdir(path.join(dir, 'staples'));
  await writeFile(path.join(dir, 'certs', 'good.pem'), chainPem);
  await writeFile(path.join(dir, 'staples', 'good.ocsp'), await stapleAt(-20));
  return {
    source: new FsCertificateSource(path.join(dir, 'certs')),
    store: new FsStapleStore(path.join(dir, 'staples')),
    staple: () => readFile(path.join(dir, 'staples', 'good.ocsp')),
  };
}

/** The same store without conditional writes: what every store was before. */
const unconditional = (store: StapleStore): StapleStore => ({
  description: store.description,
  get: (key) => store.get(key),
  put: (key, der, meta) => store.put(key, der, meta),
  delete: (key) => store.delete(key),
  putMarker: (key, text) => store.putMarker(key, text),
});

/**
 * Run A and run B over one place. The responder's first answer (A's, thisUpdate `aHours`) is held
 * back until B has finished; B's answer (thisUpdate `bHours`) is immediate.
 */
async function race(place: Place, aHours: number, bHours: number, store = place.store) {
  let releaseA!: () => void;
  const aHeld = new Promise<void>((r) => (releaseA = r));
  let aAsked!: () => void;
  const aArrived = new Promise<void>((r) => (aAsked = r));
  let n = 0;
  const served: Record<'a' | 'b', Buffer | undefined> = { a: undefined, b: undefined };
  fake.setHandler(async (req) => {
    const mine = ++n === 1 ? 'a' : 'b';
    const body = await buildOcspResponse({
      request: req.requestDer!,
      thisUpdate: at(mine === 'a' ? aHours : bHours),
      nextUpdate: at((mine === 'a' ? aHours : bHours) + 24),
      signer: ca,
    });
    served[mine] = body;
    if (mine === 'a') {
      aAsked();
      await aHeld;
    }
    return { body };
  });
  const once = (): Promise<RunReport> =>
    run({
      source: place.source,
      store,
      transport: httpTransport({ ...DEFAULT_HTTP, allowPrivate: true, timeoutMs: 60_000 }),
      clock: () => T0,
    });
  const a = once();
  await aArrived; // A has read the stored staple and is waiting for its answer
  const b = await once();
  releaseA();
  return { a: await a, b, served };
}

describe.each([
  ['S3 (If-Match / If-None-Match)', s3Place],
  ['filesystem (guarded rename)', fsPlace],
])('two overlapping runs on %s', (_name, makePlace) => {
  it('should keep the newer staple when the older write comes last', async () => {
    const place = await makePlace();
    const refusedBefore = proxy.refused.length;
    const { a, b, served } = await race(place, -2, -1);
    expect(b.results[0]).toMatchObject({ action: 'renewed', thisUpdate: at(-1).toISOString() });
    expect(a.results[0]).toMatchObject({
      action: 'fresh',
      reason: 'another writer stored a staple at least as new meanwhile; kept it',
      thisUpdate: at(-1).toISOString(),
    });
    expect(await place.staple()).toEqual(served.b);
    if (makePlace === s3Place) expect(proxy.refused.length).toBe(refusedBefore + 1);
  });

  it('should write the newer staple over the older one that got there first', async () => {
    const place = await makePlace();
    const { a, b, served } = await race(place, -1, -2);
    expect(b.results[0]).toMatchObject({ action: 'renewed', thisUpdate: at(-2).toISOString() });
    expect(a.results[0]).toMatchObject({ action: 'renewed', thisUpdate: at(-1).toISOString() });
    expect(await place.staple()).toEqual(served.a);
  });

  it('should lose the newer staple without conditional writes (the race is real)', async () => {
    const place = await makePlace();
    const { a, served } = await race(place, -2, -1, unconditional(place.store));
    expect(a.results[0]).toMatchObject({ action: 'renewed', thisUpdate: at(-2).toISOString() });
    expect(await place.staple()).toEqual(served.a);
  });
});

describe('S3StapleStore.putIfUnchanged through the precondition proxy', () => {
  it('should create only when absent, and replace only the ETag it read', async () => {
    const store = new S3StapleStore(client, BUCKET, 'cond/');
    const first = await store.putIfUnchanged('x.ocsp', Buffer.from('one'), META, null);
    expect(first).toMatchObject({ written: true, tag: expect.stringMatching(/^".+"$/) });
    expect(await store.putIfUnchanged('x.ocsp', Buffer.from('two'), META, null)).toEqual({ written: false });
    const tag = (first as { tag: string }).tag;
    const second = await store.putIfUnchanged('x.ocsp', Buffer.from('three'), META, tag);
    expect(second.written).toBe(true);
    expect(await store.putIfUnchanged('x.ocsp', Buffer.from('four'), META, tag)).toEqual({ written: false });
    expect((await store.get('x.ocsp'))?.der.toString()).toBe('three');
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'cond/x.ocsp' }));
    // If-Match on a staple deleted meanwhile: S3 says 404 NoSuchKey, which is a conflict too.
    expect(await store.putIfUnchanged('x.ocsp', Buffer.from('five'), META, tag)).toEqual({ written: false });
  });
});

describe('FsStapleStore.putIfUnchanged', () => {
  it('should create only when absent, replace only the tag it read, and leave no temp files', async () => {
    const dir = await mkdtemp(path.join(work, 'cond-'));
    const store = new FsStapleStore(dir);
    const first = await store.putIfUnchanged('x.ocsp', Buffer.from('one'), META, null);
    expect(first.written).toBe(true);
    expect(await store.putIfUnchanged('x.ocsp', Buffer.from('two'), META, null)).toEqual({ written: false });
    const tag = (first as { tag: string }).tag;
    expect((await store.putIfUnchanged('x.ocsp', Buffer.from('three!'), META, tag)).written).toBe(true);
    expect(await store.putIfUnchanged('x.ocsp', Buffer.from('four'), META, tag)).toEqual({ written: false });
    expect(await readFile(path.join(dir, 'x.ocsp'), 'utf8')).toBe('three!');
    expect(await readdir(dir)).toEqual(['x.ocsp']);
  });
});
