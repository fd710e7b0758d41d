/**
 * run() end to end over real HTTP: filesystem certificates and staples in temp dirs, the production
 * httpTransport (loopback allowed), an injected clock, and a test PKI whose leaves point at a fake
 * responder that answers what `openssl ocsp` cannot: tryLater, HTTP errors, a wrong CertID, foreign
 * signers, bad times, unknown, revoked, older responses, max-age, nonces, slow answers.
 *
 * Every case checks the report row (action, stage, reason) and the staple file: absent, or
 * byte-identical to what was there before, unless the run renewed it.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsCertificateSource, FsStapleStore } from '../lambda/adapters/filesystem.js';
import { DEFAULT_HTTP } from '../lambda/adapters/http.js';
import { httpTransport } from '../lambda/adapters/transport.js';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { certIdFor } from '../lambda/core/ocsp-request.js';
import { DEFAULT_POLICY } from '../lambda/core/refresh-policy.js';
import type { RunOptions } from '../lambda/renew/run-inputs.js';
import { run } from '../lambda/renew/run.js';
import {
  buildOcspResponse,
  loadSigner,
  readOcspRequest,
  startFakeResponder,
  unrelatedRsaKey,
  type BuildOcspResponseOptions,
  type FakeHandler,
  type FakeResponder,
  type ResponseSigner,
} from './helpers/fake-responder.js';
import { makeTestPki, openssl, type LeafName, type TestPki } from './helpers/pki.js';
import { at, T0 } from './helpers/time.js';
import type { ReportRow, StateEntry, RunReport, RunState, StateSink } from '../lambda/renew/ports.js';

/** The fixed "now" of every run: captured once, whole seconds (OCSP times have no fractions). */

let fake: FakeResponder;
let pki: TestPki;
let work: string;
let intermediatePem: string;
let issuer: Certificate;
let ca: ResponseSigner;
let delegated: ResponseSigner;
let delegatedNoEku: ResponseSigner;
let root: ResponseSigner;
const leafPem = {} as Record<LeafName, string>;
const leaf = {} as Record<LeafName, Certificate>;

beforeAll(async () => {
  fake = await startFakeResponder(() => ({ status: 500, body: 'no handler set' }));
  pki = await makeTestPki({ ocspUrl: fake.url });
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-run-fake-'));
  intermediatePem = await readFile(pki.intermediate.cert, 'utf8');
  issuer = parseCertificates(Buffer.from(intermediatePem))[0]!;
  [ca, delegated, delegatedNoEku, root] = await Promise.all([
    loadSigner(pki.intermediate.cert, pki.intermediate.key),
    loadSigner(pki.signer.cert, pki.signer.key),
    loadSigner(pki.signerNoEku.cert, pki.signerNoEku.key),
    loadSigner(pki.root.cert, pki.root.key),
  ]);
  for (const name of Object.keys(pki.leaves) as LeafName[]) {
    leafPem[name] = await readFile(pki.leaves[name].cert, 'utf8');
    leaf[name] = parseCertificates(Buffer.from(leafPem[name]))[0]!;
  }
});

afterAll(async () => {
  await fake?.stop();
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  fake.clearRequests();
});

// --- helpers --------------------------------------------------------------------------------------

interface Env {
  certs: string;
  staples: string;
  /** The staple file's bytes, or undefined when there is none. */
  staple(key: string): Promise<Buffer | undefined>;
  run(
    options?: RunOptions,
    extra?: { clock?: () => Date; state?: RunState; stateSink?: StateSink },
  ): Promise<RunReport>;
}

/** Fresh certificate and staple dirs holding `files` (key → PEM: leaf + intermediate). */
async function makeEnv(files: Record<string, string>): Promise<Env> {
  const dir = await mkdtemp(path.join(work, 'env-'));
  const certs = path.join(dir, 'certs');
  const staples = path.join(dir, 'staples');
  await mkdir(certs);
  await mkdir(staples);
  for (const [key, pem] of Object.entries(files)) await writeFile(path.join(certs, key), pem);
  return {
    certs,
    staples,
    staple: (key) =>
      readFile(path.join(staples, key)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      }),
    run: (options = {}, extra = {}) =>
      run(
        {
          source: new FsCertificateSource(certs),
          store: new FsStapleStore(staples),
          transport: httpTransport({ ...DEFAULT_HTTP, allowPrivate: true, timeoutMs: 5_000 }),
          clock: extra.clock ?? (() => T0),
          ...(extra.state ? { state: extra.state } : {}),
          ...(extra.stateSink ? { stateSink: extra.stateSink } : {}),
        },
        options,
      ),
  };
}

const chainOf = (name: LeafName) => leafPem[name] + intermediatePem;

/** An env with one certificate, `good.pem`, and optionally a valid stored staple that is due. */
async function goodEnv(seed: boolean): Promise<{ env: Env; before: Buffer | undefined }> {
  const env = await makeEnv({ 'good.pem': chainOf('good') });
  let before: Buffer | undefined;
  if (seed) {
    // Valid, but past its refresh point (20 h of a 24 h window), so the run fetches.
    before = await buildOcspResponse({
      certId: certIdFor(leaf.good, issuer),
      thisUpdate: at(-20),
      nextUpdate: at(4),
      signer: ca,
    });
    await writeFile(path.join(env.staples, 'good.ocsp'), before);
  }
  return { env, before };
}

type Answer = Partial<BuildOcspResponseOptions> & { headers?: Record<string, string> };

/** The bodies the fake responder served, newest last. */
let served: Buffer[] = [];

/** A handler answering each request for its own CertID: CA-signed, good, 1 h old, valid 24 h. */
function answer(opts: Answer | ((req: Buffer) => Answer) = {}): FakeHandler {
  served = [];
  return async (req) => {
    if (!req.requestDer) return { status: 400, body: 'no OCSP request' };
    const { headers, ...build } = typeof opts === 'function' ? opts(req.requestDer) : opts;
    const body = await buildOcspResponse({
      request: req.requestDer,
      signer: ca,
      thisUpdate: at(-1),
      nextUpdate: at(23),
      ...build,
    });
    served.push(body);
    return { ...(headers ? { headers } : {}), body };
  };
}

const only = (report: RunReport): ReportRow => {
  expect(report.results).toHaveLength(1);
  return report.results[0]!;
};

const methods = () => fake.requests.map((r) => r.method);

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A reason as run() words it: `<stage> <key>: <responder url>: <problems>`, containing `problem`. */
const reasonFrom = (stage: string, key: string, problem: string) =>
  new RegExp(`^${stage} ${escape(key)}: ${escape(fake.url)}[^ ]*: .*${escape(problem)}`);

// --- responder statuses and HTTP ------------------------------------------------------------------

describe('run() against a fake responder: responder answers', () => {
  it('should name the certificate in each report row as key, and still as name (the old spelling)', async () => {
    const { env } = await goodEnv(true);
    fake.setHandler(answer());
    const report = await env.run();
    const json = JSON.parse(JSON.stringify(report)) as { results: Record<string, unknown>[] };
    expect(Object.keys(json.results[0]!).slice(0, 3)).toEqual(['key', 'name', 'staple']);
    expect(json.results[0]).toMatchObject({ key: 'good.pem', name: 'good.pem', staple: 'good.ocsp' });
  });

  it('should fail at validate on tryLater and keep the stored staple', async () => {
    const { env, before } = await goodEnv(true);
    fake.setHandler(async () => ({
      body: await buildOcspResponse({ responseStatus: 'tryLater', thisUpdate: T0, signer: ca }),
    }));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'failed', stage: 'validate', code: 'status:tryLater' });
    expect(row.reason).toMatch(reasonFrom('validate', 'good.pem', 'responseStatus tryLater'));
    expect(await env.staple('good.ocsp')).toEqual(before);
  });

  it('should renew by POST after a 503 to GET', async () => {
    const { env } = await goodEnv(true);
    const good = answer();
    fake.setHandler((req, res) => (req.method === 'GET' ? { status: 503, body: 'busy' } : good(req, res)));
    const row = only(await env.run());
    expect(row).toMatchObject({
      action: 'renewed',
      reason: 'renewed',
      certStatus: 'good',
      responder: fake.url,
    });
    expect(row.thisUpdate).toBe(at(-1).toISOString());
    expect(methods()).toEqual(['GET', 'POST']);
    expect(fake.requests[1]!.contentType).toBe('application/ocsp-request');
    expect(await env.staple('good.ocsp')).toEqual(served[0]);
  });

  it('should fail at fetch when GET and POST both get 500, writing nothing', async () => {
    const { env } = await goodEnv(false);
    fake.setHandler(() => ({ status: 500, body: 'oops' }));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'failed', stage: 'fetch' });
    expect(row.reason).toMatch(reasonFrom('fetch', 'good.pem', 'responder answered HTTP 500'));
    expect(await env.staple('good.ocsp')).toBeUndefined();
  });
});

// --- what validation must refuse ------------------------------------------------------------------

describe('run() against a fake responder: invalid responses never replace the staple', () => {
  // Functions: the PKI exists only once beforeAll has run.
  const cases: {
    name: string;
    answer: () => Promise<Answer> | Answer;
    problem: () => string;
    code: string;
  }[] = [
    {
      name: 'wrong CertID (the serial of another certificate)',
      answer: () => ({ serial: leaf.revoked.serial }),
      problem: () => `no SingleResponse matches the certificate's CertID (serial ${leaf.good.serialHex})`,
      code: 'certid-mismatch',
    },
    {
      name: 'signed by an unrelated key in the issuer’s name',
      answer: async () => ({ signer: { cert: issuer, key: await unrelatedRsaKey() }, certs: [] }),
      problem: () => 'signature does not verify with the issuer key',
      code: 'signature',
    },
    {
      name: 'delegated responder without id-kp-OCSPSigning',
      answer: () => ({ signer: delegatedNoEku }),
      problem: () => 'delegated responder certificate lacks id-kp-OCSPSigning',
      code: 'signer-not-authorised',
    },
    {
      name: 'signed by the root (not the issuer), root embedded',
      answer: () => ({ signer: root }),
      problem: () => 'is not issued by the issuer',
      code: 'signer-not-authorised',
    },
    {
      name: 'delegated responder whose certificate is not embedded',
      answer: () => ({ signer: delegated, certs: [] }),
      problem: () => 'responderID designates neither the issuer nor a certificate in the response',
      code: 'responder-id',
    },
    {
      name: 'expired (nextUpdate an hour ago)',
      answer: () => ({ thisUpdate: at(-25), nextUpdate: at(-1) }),
      problem: () => `expired: nextUpdate ${at(-1).toISOString()} has passed`,
      code: 'stale',
    },
    {
      name: 'thisUpdate an hour in the future',
      answer: () => ({ thisUpdate: at(1), nextUpdate: at(25) }),
      problem: () => `thisUpdate ${at(1).toISOString()} is in the future`,
      // producedAt moves with thisUpdate here, and is the first problem found.
      code: 'produced-in-future',
    },
    {
      name: 'an unknown critical response extension',
      answer: () => ({
        extensions: [{ oid: '1.3.6.1.4.1.55555.1', critical: true, value: Buffer.from([5, 0]) }],
      }),
      problem: () => 'unknown critical responseExtension 1.3.6.1.4.1.55555.1',
      code: 'critical-extension',
    },
    {
      name: 'no nextUpdate',
      answer: () => ({ nextUpdate: undefined }),
      problem: () => 'nextUpdate is absent',
      code: 'no-next-update',
    },
  ];

  it.each(cases)('should fail at validate: $name', async (c) => {
    const { env, before } = await goodEnv(true);
    fake.setHandler(answer(await c.answer()));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'failed', stage: 'validate', code: c.code });
    expect(row.reason).toMatch(reasonFrom('validate', 'good.pem', c.problem()));
    expect(served).toHaveLength(1);
    expect(await env.staple('good.ocsp')).toEqual(before);
  });

  it('should accept a delegated responder with the EKU (control)', async () => {
    const { env } = await goodEnv(true);
    fake.setHandler(answer({ signer: delegated, responderId: 'byKey' }));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'renewed', reason: 'renewed' });
    expect(await env.staple('good.ocsp')).toEqual(served[0]);
  });

  it('should accept a thisUpdate 4 minutes ahead, within the default 5 minute skew (control)', async () => {
    const { env } = await goodEnv(false);
    fake.setHandler(answer({ thisUpdate: new Date(T0.getTime() + 4 * 60_000), nextUpdate: at(24) }));
    const row = only(await env.run());
    expect(row.action).toBe('renewed');
    expect(await env.staple('good.ocsp')).toEqual(served[0]);
  });

  it('should fail an unknown status and never write it', async () => {
    const { env } = await goodEnv(false);
    fake.setHandler(answer({ certStatus: 'unknown' }));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'failed', stage: 'validate', code: 'cert-status-unknown' });
    expect(row.reason).toBe('validate good.pem: responder does not know the certificate (unknown)');
    expect(await env.staple('good.ocsp')).toBeUndefined();
  });

  it('should keep a stored staple over an older response, and report it as a failure that backs off', async () => {
    // Stored: -16 h → +8 h, past its refresh point (≤ 60 %) and outside the lapse guard (last 6 h).
    const env = await makeEnv({ 'good.pem': chainOf('good') });
    const before = await buildOcspResponse({
      certId: certIdFor(leaf.good, issuer),
      thisUpdate: at(-16),
      nextUpdate: at(8),
      signer: ca,
    });
    await writeFile(path.join(env.staples, 'good.ocsp'), before);
    fake.setHandler(answer({ thisUpdate: at(-17), nextUpdate: at(7) }));
    const state: RunState = new Map();
    const report = await env.run({}, { state });
    const row = only(report);
    expect(row).toMatchObject({ action: 'failed', stage: 'validate', code: 'older-than-stored' });
    expect(row.reason).toBe(
      `validate good.pem: responder returned an older response than the stored staple ` +
        `(thisUpdate ${at(-17).toISOString()}, stored ${at(-16).toISOString()})`,
    );
    expect(report.counts.failed).toBe(1);
    expect(await env.staple('good.ocsp')).toEqual(before);
    expect(state.get('good.pem')).toMatchObject({ failures: 1, action: 'failed' });
    // The next run a minute later backs off instead of asking again.
    fake.clearRequests();
    const next = only(await env.run({}, { state, clock: () => new Date(T0.getTime() + 60_000) }));
    expect(next.reason).toMatch(/backing off after 1 failure/);
    expect(fake.requests).toHaveLength(0);
  });
});

// --- revoked --------------------------------------------------------------------------------------

describe('run() against a fake responder: revoked', () => {
  const revokedAnswer = () => answer({ certStatus: 'revoked', revocationTime: at(-48), revocationReason: 1 });

  it('should withhold a revoked staple with onRevoked withhold, writing only the marker', async () => {
    const env = await makeEnv({ 'revoked.pem': chainOf('revoked') });
    fake.setHandler(revokedAnswer());
    const report = await env.run({ onRevoked: 'withhold' });
    const row = only(report);
    expect(row).toMatchObject({
      action: 'withheld',
      reason: 'certificate is REVOKED; staple withheld (--on-revoked withhold)',
      certStatus: 'revoked',
      revocationTime: at(-48).toISOString(),
      revocationReason: 'keyCompromise',
    });
    expect(row.stage).toBeUndefined();
    expect(report.revoked).toBe(1);
    expect(await env.staple('revoked.ocsp')).toBeUndefined();
    expect((await env.staple('revoked.ocsp.withheld'))?.toString()).toBe(
      `withheld: certificate revoked (${at(-1).toISOString()})\n`,
    );
  });

  it('should publish a revoked staple by default', async () => {
    const env = await makeEnv({ 'revoked.pem': chainOf('revoked') });
    fake.setHandler(revokedAnswer());
    const report = await env.run({ onRevoked: 'publish' });
    const row = only(report);
    expect(row).toMatchObject({
      action: 'renewed',
      reason: 'certificate is REVOKED; revoked staple published',
      certStatus: 'revoked',
      revocationReason: 'keyCompromise',
    });
    expect(report.revoked).toBe(1);
    expect(await env.staple('revoked.ocsp')).toEqual(served[0]);
  });
});

// --- max-age --------------------------------------------------------------------------------------

describe('run() against a fake responder: Cache-Control max-age', () => {
  it('should report fresh past the refresh point while max-age lasts, and renew after it', async () => {
    const { env } = await goodEnv(false);
    // Window -3 h → +5 h, no jitter: refresh point at +1 h; max-age 2 h from the fetch at T0.
    const policy = { ...DEFAULT_POLICY, jitter: 0 };
    fake.setHandler(
      answer({ thisUpdate: at(-3), nextUpdate: at(5), headers: { 'cache-control': 'max-age=7200' } }),
    );
    const state: RunState = new Map();
    const first = only(await env.run({ policy }, { state }));
    expect(first).toMatchObject({ action: 'renewed', nextDue: at(2).toISOString() });
    expect(state.get('good.pem')?.maxAgeUntil).toBe(at(2).toISOString());
    const stored = await env.staple('good.ocsp');
    expect(stored).toEqual(served[0]);

    const pastRefresh = new Date(at(1).getTime() + 60_000);
    fake.clearRequests();
    const second = only(await env.run({ policy }, { state, clock: () => pastRefresh }));
    expect(second).toMatchObject({
      action: 'fresh',
      reason: 'fresh (responder max-age)',
      nextDue: at(2).toISOString(),
    });
    expect(fake.requests).toEqual([]);
    expect(await env.staple('good.ocsp')).toEqual(stored);

    // Without the state the same run is due: the max-age is what kept it fresh.
    const stateless = only(await env.run({ policy, dryRun: true }, { clock: () => pastRefresh }));
    expect(stateless).toMatchObject({ action: 'due', reason: 'would renew: refresh point passed' });

    const pastMaxAge = new Date(at(2).getTime() + 60_000);
    fake.setHandler(answer({ thisUpdate: at(2), nextUpdate: at(10) }));
    const third = only(await env.run({ policy }, { state, clock: () => pastMaxAge }));
    expect(third).toMatchObject({ action: 'renewed', thisUpdate: at(2).toISOString() });
    expect(await env.staple('good.ocsp')).toEqual(served[0]);
  });
});

// --- several responders, several certificates -----------------------------------------------------

describe('run() against a fake responder: several URLs and certificates', () => {
  let twoUrlsPem: string;
  let tenUrlsPem: string;

  /** A leaf issued by the test PKI's intermediate whose AIA names `urls` (makeTestPki's name one). */
  async function leafWithUrls(name: string, serial: string, urls: string[]): Promise<string> {
    const dir = await mkdtemp(path.join(work, `${name}-urls-`));
    const ext = path.join(dir, 'ext.cnf');
    await writeFile(
      ext,
      [
        '[ ext ]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth',
        'authorityKeyIdentifier = keyid:always',
        `subjectAltName = DNS:${name}.test`,
        `authorityInfoAccess = ${urls.map((u) => `OCSP;URI:${u}`).join(', ')}`,
        '',
      ].join('\n'),
    );
    const csr = path.join(dir, `${name}.csr`);
    const cert = path.join(dir, `${name}.pem`);
    await openssl([
      'req',
      '-new',
      '-key',
      pki.leaves.good.key,
      '-subj',
      `/O=ocsp-renewer tests/CN=${name}.test`,
      '-out',
      csr,
    ]);
    await openssl([
      'x509', '-req', '-in', csr,
      '-CA', pki.intermediate.cert, '-CAkey', pki.intermediate.key,
      '-set_serial', serial, '-days', '30', '-sha256',
      '-extfile', ext, '-extensions', 'ext', '-out', cert,
    ]); // prettier-ignore
    const pem = (await readFile(cert, 'utf8')) + intermediatePem;
    expect(parseCertificates(Buffer.from(pem))[0]!.ocspUrls).toEqual(urls);
    return pem;
  }

  beforeAll(async () => {
    twoUrlsPem = await leafWithUrls('two', '0x7E57000000000002', [`${fake.url}first`, `${fake.url}second`]);
    tenUrlsPem = await leafWithUrls(
      'ten',
      '0x7E57000000000010',
      Array.from({ length: 10 }, (_, i) => `${fake.url}u${i + 1}`),
    );
  });

  it('should try at most 4 of a certificate’s OCSP URLs and report the rest as skipped (issue 20)', async () => {
    const env = await makeEnv({ 'ten.pem': tenUrlsPem });
    fake.setHandler(() => ({ status: 404, body: 'no' }));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'failed', stage: 'fetch' });
    expect(new Set(fake.requests.map((r) => r.url.split('/')[1]))).toEqual(new Set(['u1', 'u2', 'u3', 'u4']));
    expect(row.reason).toMatch(/ \| 6 more OCSP URL\(s\) skipped \(at most 4 are tried\)$/);
    expect(row.reason).not.toContain(`${fake.url}u5`);
  });

  it('should renew from the second OCSP URL when the first answers 500', async () => {
    const env = await makeEnv({ 'two.pem': twoUrlsPem });
    const good = answer();
    fake.setHandler((req, res) =>
      req.path.startsWith('/first') ? { status: 500, body: 'down' } : good(req, res),
    );
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'renewed', responder: `${fake.url}second` });
    expect(fake.requests.map((r) => `${r.method} ${r.url.split('/')[1]}`)).toEqual([
      'GET first',
      'POST first',
      'GET second',
    ]);
    expect(await env.staple('two.ocsp')).toEqual(served[0]);
  });

  it('should renew from the second OCSP URL when the first answers an invalid response', async () => {
    const env = await makeEnv({ 'two.pem': twoUrlsPem });
    const good = answer();
    const noNextUpdate = answer({ nextUpdate: undefined });
    fake.setHandler((req, res) => (req.path.startsWith('/first') ? noNextUpdate(req, res) : good(req, res)));
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'renewed', responder: `${fake.url}second` });
    expect(served).toHaveLength(2);
    expect(await env.staple('two.ocsp')).toEqual(served[1]);
  });

  it('should name both URLs when neither gives a staple', async () => {
    const env = await makeEnv({ 'two.pem': twoUrlsPem });
    const expired = answer({ thisUpdate: at(-25), nextUpdate: at(-1) });
    fake.setHandler((req, res) =>
      req.path.startsWith('/first') ? { status: 500, body: 'down' } : expired(req, res),
    );
    const row = only(await env.run());
    expect(row).toMatchObject({ action: 'failed', stage: 'validate' });
    expect(row.reason).toBe(
      `validate two.pem: ${fake.url}first: responder answered HTTP 500 | ${fake.url}second: expired: nextUpdate ${at(-1).toISOString()} has passed`,
    );
    expect(await env.staple('two.ocsp')).toBeUndefined();
  });

  it('should renew the good certificates when one fails', async () => {
    const env = await makeEnv({
      'good.pem': chainOf('good'),
      'ec.pem': chainOf('ec'),
      'mustStaple.pem': chainOf('mustStaple'),
    });
    const good = answer();
    fake.setHandler((req, res) =>
      req.requestDer && readOcspRequest(req.requestDer).certId.serial.equals(leaf.mustStaple.serial)
        ? { status: 500, body: 'down' }
        : good(req, res),
    );
    const report = await env.run();
    expect(report.results.map((r) => [r.key, r.action, r.stage])).toEqual([
      ['ec.pem', 'renewed', undefined],
      ['good.pem', 'renewed', undefined],
      ['mustStaple.pem', 'failed', 'fetch'],
    ]);
    expect(report.results[2]).toMatchObject({ mustStaple: true });
    expect(report.results[2]!.reason).toMatch(reasonFrom('fetch', 'mustStaple.pem', 'HTTP 500'));
    expect(report.counts).toMatchObject({ renewed: 2, failed: 1 });
    expect(await env.staple('ec.ocsp')).toBeDefined();
    expect(await env.staple('good.ocsp')).toBeDefined();
    expect(await env.staple('mustStaple.ocsp')).toBeUndefined();
  });

  it('should tell the state sink of each decided certificate, awaiting it, with the entry the state keeps', async () => {
    const env = await makeEnv({
      'good.pem': chainOf('good'),
      'ec.pem': chainOf('ec'),
      'bad.pem': 'not a PEM',
    });
    fake.setHandler(answer());
    const state: RunState = new Map();
    const told: [string, StateEntry][] = [];
    let pending = 0;
    const stateSink: StateSink = {
      recorded: async (key, entry) => {
        pending++;
        await delay(20);
        told.push([key, structuredClone(entry)]);
        pending--;
      },
    };
    const report = await env.run({}, { state, stateSink });
    expect(pending).toBe(0);
    expect(told.map(([k]) => k).sort()).toEqual(['bad.pem', 'ec.pem', 'good.pem']);
    for (const [key, entry] of told) expect(entry).toEqual(state.get(key));
    expect(Object.fromEntries(told)).toMatchObject({
      'good.pem': { failures: 0, action: 'renewed' },
      'bad.pem': { failures: 1, action: 'failed' },
    });
    // A dry run writes nothing: the sink is not told.
    told.length = 0;
    const dry = await env.run({ dryRun: true, force: true }, { state, stateSink });
    expect(dry.counts).toMatchObject({ due: 2, failed: 1 });
    expect(told).toEqual([]);
    expect(report.counts).toMatchObject({ renewed: 2, failed: 1 });
  });

  it('should fail the run when the state sink rejects, and start no certificate after it', async () => {
    const files = Object.fromEntries([1, 2, 3, 4].map((i) => [`c${i}.pem`, chainOf('good')]));
    const env = await makeEnv(files);
    fake.setHandler(answer());
    const told: string[] = [];
    const stateSink: StateSink = {
      recorded: (key) => {
        told.push(key);
        if (told.length === 2) throw new Error('state table unavailable');
      },
    };
    await expect(env.run({ concurrency: 1 }, { stateSink })).rejects.toThrow('state table unavailable');
    await delay(200);
    // Listing order (sorted keys); c3 and c4 were never started: no request, no staple.
    expect(told).toEqual(['c1.pem', 'c2.pem']);
    expect(fake.requests).toHaveLength(2);
    expect(await env.staple('c3.ocsp')).toBeUndefined();
  });

  it('should keep at most perHostConcurrency requests in flight to one host', async () => {
    const files = Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`c${i}.pem`, chainOf('good')]));
    const env = await makeEnv(files);
    const good = answer();
    let inFlight = 0;
    let maxInFlight = 0;
    fake.setHandler(async (req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await delay(100);
        return await good(req, res);
      } finally {
        inFlight--;
      }
    });
    const report = await env.run({ perHostConcurrency: 2 });
    expect(report.counts.renewed).toBe(6);
    expect(fake.requests).toHaveLength(6);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(maxInFlight).toBe(2); // the cap, not a serial run
  });
});

// --- nonce ----------------------------------------------------------------------------------------

describe('run() refuses certificate names it cannot stand behind (issue 20)', () => {
  it('should refuse a name with control characters and two certificates with one staple, with failed rows, fetching and writing nothing for them', async () => {
    const evil = 'x\n..\x1b[2Jevil.pem';
    const env = await makeEnv({
      'good.pem': chainOf('good'),
      [evil]: chainOf('ec'),
      'twin.pem': chainOf('mustStaple'),
      'twin.crt': chainOf('revoked'),
    });
    fake.setHandler(answer());
    // A state from before: the refused certificates are forgotten, not replayed.
    const state: RunState = new Map([
      ['twin.pem', { failures: 0, action: 'fresh', nextDue: at(48).toISOString() }],
    ]);
    const report = await env.run({}, { state });
    expect(report.results.map((r) => [r.key, r.action, r.stage, r.code])).toEqual([
      ['good.pem', 'renewed', undefined, undefined],
      ['twin.crt', 'failed', 'source', 'staple-collision'],
      ['twin.pem', 'failed', 'source', 'staple-collision'],
      [evil, 'failed', 'source', 'unsafe-name'],
    ]);
    expect(report.results[1]!.reason).toBe(
      'source twin.crt: refused: twin.pem has the same staple twin.ocsp; neither is renewed until one is renamed',
    );
    expect(report.results[3]!.reason).toMatch(/refused: the name holds a control character/);
    // One request, for good.pem; one staple, good.ocsp.
    expect(fake.requests).toHaveLength(1);
    expect(await readdir(env.staples)).toEqual(['good.ocsp']);
    expect([...state.keys()]).toEqual(['good.pem']);
    expect(report.counts).toMatchObject({ renewed: 1, failed: 3 });
  });
});

describe('run() against a fake responder: nonce', () => {
  it('should send a nonce and accept a response echoing it', async () => {
    const { env } = await goodEnv(false);
    const sent: (Buffer | undefined)[] = [];
    fake.setHandler(
      answer((der) => {
        const { nonce } = readOcspRequest(der);
        sent.push(nonce);
        return { nonce };
      }),
    );
    const row = only(await env.run({ nonce: true }));
    expect(row.action).toBe('renewed');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toHaveLength(16);
    expect(await env.staple('good.ocsp')).toEqual(served[0]);
  });

  it('should fail at validate on a response echoing another nonce', async () => {
    const { env, before } = await goodEnv(true);
    fake.setHandler(answer({ nonce: Buffer.alloc(16, 7) }));
    const row = only(await env.run({ nonce: true }));
    expect(row).toMatchObject({ action: 'failed', stage: 'validate', code: 'nonce-mismatch' });
    expect(row.reason).toMatch(reasonFrom('validate', 'good.pem', 'nonce does not match the request'));
    expect(await env.staple('good.ocsp')).toEqual(before);
  });

  it('should accept a response without a nonce (pre-signed responders ignore it)', async () => {
    const { env } = await goodEnv(false);
    fake.setHandler(answer());
    const row = only(await env.run({ nonce: true }));
    expect(row.action).toBe('renewed');
  });
});

describe('run() against a fake responder: the state trusted over a directory (the CLI)', () => {
  /** A filesystem staple store that counts the staples it reads. */
  class CountingStore extends FsStapleStore {
    gets = 0;
    override get(key: string) {
      this.gets++;
      return super.get(key);
    }
  }

  const trusted = (env: Env, store: FsStapleStore, state: RunState, options: RunOptions = {}) =>
    run(
      {
        source: new FsCertificateSource(env.certs),
        store,
        transport: httpTransport({ ...DEFAULT_HTTP, allowPrivate: true, timeoutMs: 5_000 }),
        clock: () => T0,
        state,
        trustState: true,
      },
      options,
    );

  it('should read nothing after a forced run, and read again a staple replaced or deleted behind its back', async () => {
    fake.setHandler(answer());
    const { env } = await goodEnv(false);
    const state: RunState = new Map();
    expect(only(await trusted(env, new FsStapleStore(env.staples), state, { force: true })).action).toBe(
      'renewed',
    );
    const written = await env.staple('good.ocsp');

    // Right after the forced run: nothing due, nothing read, nothing fetched.
    fake.clearRequests();
    let store = new CountingStore(env.staples);
    const quiet = only(await trusted(env, store, state));
    expect([quiet.action, store.gets, fake.requests.length]).toEqual(['fresh', 0, 0]);

    // Replaced in place by bytes of the same size (no valid staple): read again, and renewed.
    await writeFile(path.join(env.staples, 'good.ocsp'), Buffer.alloc(written!.length, 0x30));
    store = new CountingStore(env.staples);
    const replaced = only(await trusted(env, store, state));
    expect([replaced.action, store.gets]).toEqual(['renewed', 1]);
    expect(fake.requests).toHaveLength(1);

    // Deleted: read again (found missing), and renewed.
    await rm(path.join(env.staples, 'good.ocsp'));
    fake.clearRequests();
    store = new CountingStore(env.staples);
    const deleted = only(await trusted(env, store, state));
    expect([deleted.action, store.gets]).toEqual(['renewed', 1]);
    expect(await env.staple('good.ocsp')).toBeDefined();

    // And quiet again.
    store = new CountingStore(env.staples);
    expect([only(await trusted(env, store, state)).action, store.gets]).toEqual(['fresh', 0]);
  });

  const later = (env: Env, state: RunState, clock: Date, options: RunOptions) =>
    run(
      {
        source: new FsCertificateSource(env.certs),
        store: new FsStapleStore(env.staples),
        transport: httpTransport({ ...DEFAULT_HTTP, allowPrivate: true, timeoutMs: 5_000 }),
        clock: () => clock,
        state,
        trustState: true,
      },
      options,
    );

  it('should decide the due time again from the stored staple when the refresh policy changes', async () => {
    fake.setHandler(answer()); // a 24 h window, -1 h → +23 h
    const { env } = await goodEnv(false);
    const state: RunState = new Map();
    expect(only(await trusted(env, new FsStapleStore(env.staples), state, { force: true })).action).toBe(
      'renewed',
    );
    // 5 h into the window: not due at refresh-at 0.5 (about 12 h in), remembered as such.
    fake.clearRequests();
    const same = only(await later(env, state, at(4), { policy: DEFAULT_POLICY }));
    expect([same.action, fake.requests.length]).toEqual(['fresh', 0]);
    // refresh-at 0.1 (at most 0.2 with its jitter, so before 4.8 h in): due now, not at the
    // remembered time; the responder has a newer response by then.
    fake.setHandler(answer({ thisUpdate: at(3), nextUpdate: at(27) }));
    const changed = only(await later(env, state, at(4), { policy: { ...DEFAULT_POLICY, refreshAt: 0.1 } }));
    expect(changed.action, changed.reason).toBe('renewed');
    expect(fake.requests).toHaveLength(1);
  });

  it('should apply a changed revoked-handling setting on the next run, both ways', async () => {
    fake.setHandler(answer({ certStatus: 'revoked', revocationTime: at(-48), revocationReason: 1 }));
    const env = await makeEnv({ 'revoked.pem': chainOf('revoked') });
    const state: RunState = new Map();
    const published = only(await later(env, state, T0, { onRevoked: 'publish' }));
    expect(published).toMatchObject({ action: 'renewed', certStatus: 'revoked' });
    expect(await env.staple('revoked.ocsp')).toBeDefined();

    // withhold: the revoked staple goes now, without asking the responder, though it is not due.
    fake.clearRequests();
    const report = await later(env, state, at(1), { onRevoked: 'withhold' });
    expect(only(report)).toMatchObject({
      action: 'withheld',
      certStatus: 'revoked',
      reason: 'certificate is REVOKED; stored staple withheld (--on-revoked withhold)',
    });
    expect(report.revoked).toBe(1);
    expect(fake.requests).toHaveLength(0);
    expect(await env.staple('revoked.ocsp')).toBeUndefined();
    expect((await env.staple('revoked.ocsp.withheld'))?.toString()).toBe(
      `withheld: certificate revoked (${at(-1).toISOString()})\n`,
    );
    // Still withheld on the next run.
    expect(only(await later(env, state, at(2), { onRevoked: 'withhold' })).action).toBe('withheld');

    // publish again: asked now and published, the marker gone.
    const again = only(await later(env, state, at(3), { onRevoked: 'publish' }));
    expect(again).toMatchObject({ action: 'renewed', certStatus: 'revoked' });
    expect(fake.requests).toHaveLength(1);
    expect(await env.staple('revoked.ocsp')).toBeDefined();
    expect(await env.staple('revoked.ocsp.withheld')).toBeUndefined();
  });

  it('a dry run says it would withhold, and changes nothing', async () => {
    fake.setHandler(answer({ certStatus: 'revoked', revocationTime: at(-48) }));
    const env = await makeEnv({ 'revoked.pem': chainOf('revoked') });
    const state: RunState = new Map();
    await later(env, state, T0, {});
    const dry = only(await later(env, state, at(1), { onRevoked: 'withhold', dryRun: true }));
    expect(dry).toMatchObject({
      action: 'due',
      reason: 'would withhold the stored revoked staple (--on-revoked withhold)',
    });
    expect(await env.staple('revoked.ocsp')).toBeDefined();
  });
});
