/**
 * run() against `openssl ocsp` itself, in each of the ways a CA runs it: signing with the issuer
 * (CA-signed), with a delegated OCSP signer, and — a CA mistake — with a certificate that lacks
 * id-kp-OCSPSigning. Real peer, real HTTP, filesystem adapters; the verdicts are cross-checked with
 * `openssl ocsp -respin … -CAfile`.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FsCertificateSource, FsStapleStore } from '../lambda/adapters/filesystem.js';
import { DEFAULT_HTTP } from '../lambda/adapters/http.js';
import { httpTransport } from '../lambda/adapters/transport.js';
import { explainStaple } from '../lambda/report/explain.js';
import { parseCertificates } from '../lambda/core/certificate.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { run } from '../lambda/renew/run.js';
import { validateResponse } from '../lambda/core/validate.js';
import { startOpensslResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';
import type { RunReport } from '../lambda/renew/ports.js';

let pki: TestPki;
let work: string;
let responder: OpensslResponder | undefined;

beforeAll(async () => {
  pki = await makeTestPki();
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-run-openssl-'));
});
afterEach(async () => {
  await responder?.stop();
  responder = undefined;
});
afterAll(async () => {
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Starts openssl ocsp on the PKI's OCSP port, signing with `signer`. */
async function respondWith(signer: { cert: string; key: string }): Promise<void> {
  responder = await startOpensslResponder({
    index: pki.index,
    ca: pki.intermediate.cert,
    rsigner: signer.cert,
    rkey: signer.key,
    port: pki.ocspPort,
  });
}

/** One renewal of good.pem and revoked.pem (bundles with the intermediate) into a staples dir. */
async function renew(label: string, staples?: string): Promise<{ report: RunReport; staples: string }> {
  const certs = await mkdtemp(path.join(work, `${label}-certs-`));
  await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
  await copyFile(pki.leaves.revoked.bundle, path.join(certs, 'revoked.pem'));
  const out = staples ?? (await mkdtemp(path.join(work, `${label}-staples-`)));
  const report = await run(
    {
      source: new FsCertificateSource(certs),
      store: new FsStapleStore(out),
      transport: httpTransport({ ...DEFAULT_HTTP, allowPrivate: true }),
      clock: () => new Date(),
    },
    { force: true },
  );
  return { report, staples: out };
}

const rowOf = (report: RunReport, name: string) => report.results.find((r) => r.key === name)!;

async function signerOf(staple: string): Promise<string> {
  const [cert] = parseCertificates(await readFile(pki.leaves.good.cert));
  const [issuer] = parseCertificates(await readFile(pki.intermediate.cert));
  const parsed = parseOcspResponse(await readFile(staple));
  return explainStaple(parsed, validateResponse(parsed, { cert, issuer, now: new Date() })).signature.signer;
}

describe('run() against openssl ocsp', () => {
  it('CA-signed responses (signed by the issuer itself): renewed, signer issuer, openssl agrees', async () => {
    await respondWith(pki.intermediate);
    const { report, staples } = await renew('ca-signed');
    expect(rowOf(report, 'good.pem')).toMatchObject({ action: 'renewed', certStatus: 'good' });
    expect(rowOf(report, 'revoked.pem')).toMatchObject({ action: 'renewed', certStatus: 'revoked' });
    expect(await signerOf(path.join(staples, 'good.ocsp'))).toBe('issuer');
    const out = await openssl([
      'ocsp', '-respin', path.join(staples, 'good.ocsp'), '-issuer', pki.intermediate.cert,
      '-cert', pki.leaves.good.cert, '-CAfile', pki.chain,
    ]); // prettier-ignore
    expect(out).toMatch(/good\.pem: good/);
  });

  it('delegated responses (an OCSPSigning certificate issued by the issuer): renewed, signer delegated', async () => {
    await respondWith(pki.signer);
    const { report, staples } = await renew('delegated');
    expect(rowOf(report, 'good.pem')).toMatchObject({ action: 'renewed', certStatus: 'good' });
    expect(await signerOf(path.join(staples, 'good.ocsp'))).toBe('delegated');
  });

  it('a signer without id-kp-OCSPSigning: failed at validate, and the stored staple is kept byte for byte', async () => {
    await respondWith(pki.signer);
    const { staples } = await renew('no-eku-before');
    const before = await readFile(path.join(staples, 'good.ocsp'));
    await responder!.stop();
    await respondWith(pki.signerNoEku);
    const { report } = await renew('no-eku', staples);
    const row = rowOf(report, 'good.pem');
    expect(row).toMatchObject({ action: 'failed', stage: 'validate' });
    expect(row.reason).toContain('lacks id-kp-OCSPSigning');
    expect(await readFile(path.join(staples, 'good.ocsp'))).toEqual(before);
  });
});
