/**
 * One judgement for `inspect` and `renew` (judgeStaple → validateResponse), and what it reads of
 * the SingleResponses as clients do: every SingleResponse for the certificate (one per CertID
 * hash) counts, and they must agree; one about another CA's certificate beside ours makes the
 * response invalid (OpenSSL's ocsp_check_issuer refuses it); the issuer given must have signed the
 * certificate, not only carry its issuer's name (a re-keyed CA). Responses built with pkijs,
 * certificates with `openssl`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { certIdFor } from '../lambda/core/ocsp-request.js';
import { judgeStaple } from '../lambda/core/validate.js';
import { explainStaple } from '../lambda/report/explain.js';
import { buildOcspResponse, loadSigner, type ResponseSigner } from './helpers/fake-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';

let pki: TestPki;
let issuer: ResponseSigner;
let rekeyed: ResponseSigner;
let leaf: Certificate;
let other: Certificate;
const now = new Date();
const MINUTE = 60_000;

beforeAll(async () => {
  pki = await makeTestPki();
  issuer = await loadSigner(pki.intermediate.cert, pki.intermediate.key);
  leaf = parseCertificates(await readFile(pki.leaves.good.cert))[0]!;
  other = parseCertificates(await readFile(pki.leaves.revoked.cert))[0]!;
  // The intermediate's name on a new key: what a re-keyed CA looks like.
  const key = path.join(pki.dir, 'rekeyed.key.pem');
  const cert = path.join(pki.dir, 'rekeyed.pem');
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);
  await openssl(['req', '-x509', '-new', '-config', pki.config, '-key', key, '-days', '30', '-out', cert,
    '-subj', '/O=ocsp-renewer tests/CN=ocsp-renewer Test Intermediate CA']); // prettier-ignore
  rekeyed = await loadSigner(cert, key);
}, 180_000);
afterAll(() => pki?.cleanup());

const window = {
  thisUpdate: new Date(now.getTime() - MINUTE),
  nextUpdate: new Date(now.getTime() + 60 * MINUTE),
};

describe('several SingleResponses for the certificate, one per CertID hash', () => {
  it('good under SHA-256 and revoked under SHA-1: invalid (conflicting-responses), each reported', async () => {
    const der = await buildOcspResponse({
      ...window,
      certId: certIdFor(leaf, issuer.cert, 'sha256'),
      moreResponses: [{ certId: certIdFor(leaf, issuer.cert, 'sha1'), certStatus: 'revoked' }],
      signer: issuer,
    });
    const { parsed, verdict } = judgeStaple(der, { cert: leaf, issuer: issuer.cert, now });
    expect(verdict.valid).toBe(false);
    expect(verdict.codes).toEqual(['conflicting-responses']);
    expect(verdict.errors[0]).toMatch(/disagree: good under sha256, revoked since .* under sha1/);
    // The same whichever hash the renewal asked with.
    for (const hash of ['sha1', 'sha256'] as const) {
      expect(judgeStaple(der, { cert: leaf, issuer: issuer.cert, now, hash }).verdict.code).toBe(
        'conflicting-responses',
      );
    }
    const explained = explainStaple(parsed, verdict);
    expect(explained.responses.map((r) => [r.hashAlgorithm, r.certStatus])).toEqual([
      ['sha256', 'good'],
      ['sha1', 'revoked'],
    ]);
  });

  it('good under both: valid', async () => {
    const der = await buildOcspResponse({
      ...window,
      certId: certIdFor(leaf, issuer.cert, 'sha256'),
      moreResponses: [{ certId: certIdFor(leaf, issuer.cert, 'sha1') }],
      signer: issuer,
    });
    const { verdict } = judgeStaple(der, { cert: leaf, issuer: issuer.cert, now });
    expect(verdict.errors).toEqual([]);
    expect(verdict.certStatus).toBe('good');
  });
});

describe('a SingleResponse about another certificate beside ours (issue 19, item 11)', () => {
  it('another certificate of the same CA is fine (OpenSSL accepts it)', async () => {
    const der = await buildOcspResponse({
      ...window,
      certId: certIdFor(leaf, issuer.cert),
      moreResponses: [{ certId: certIdFor(other, issuer.cert), certStatus: 'revoked' }],
      signer: issuer,
    });
    expect(judgeStaple(der, { cert: leaf, issuer: issuer.cert, now }).verdict.errors).toEqual([]);
  });

  it("another CA's certificate: invalid (certid-other-issuer), as OpenSSL refuses it", async () => {
    const der = await buildOcspResponse({
      ...window,
      certId: certIdFor(leaf, issuer.cert),
      moreResponses: [{ certId: certIdFor(other, rekeyed.cert) }],
      signer: issuer,
    });
    const { verdict } = judgeStaple(der, { cert: leaf, issuer: issuer.cert, now });
    expect(verdict.codes).toEqual(['certid-other-issuer']);
    expect(verdict.errors[0]).toMatch(
      /^SingleResponse 2 \(serial [0-9A-F]+\) is about a certificate of another issuer/,
    );
  });
});

describe('the issuer given is checked by signature, as renew checks it', () => {
  it("a re-keyed CA with the issuer's name does not vouch for the certificate (issuer-mismatch)", async () => {
    // Signed by the re-keyed CA's key for a CertID under its key: consistent, but not our issuer.
    const signer = rekeyed;
    const der = await buildOcspResponse({
      ...window,
      certId: certIdFor(leaf, signer.cert),
      signer,
      certs: [],
    });
    const { verdict } = judgeStaple(der, { cert: leaf, issuer: signer.cert, now });
    expect(verdict.valid).toBe(false);
    expect(verdict.codes).toEqual(['issuer-mismatch']);
    expect(verdict.errors[0]).toMatch(/did not sign the certificate/);
    // The real issuer with its own response: valid.
    const good = await buildOcspResponse({ ...window, certId: certIdFor(leaf, issuer.cert), signer: issuer });
    expect(judgeStaple(good, { cert: leaf, issuer: issuer.cert, now }).verdict.errors).toEqual([]);
  });
});
