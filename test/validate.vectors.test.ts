/**
 * validateResponse over the OCSP reference vectors (test/fixtures/ocsp-vectors): every response
 * of MANIFEST.json `vectors[]` and every response × issuer case of OpenSSL's 80-test_ocsp.t
 * (`openssl_recipe_cases[]`), each checked at its producedAt and, for a delegated signer, at
 * instants inside and outside the signer's life, plus the time window, a wrong certificate and the
 * CertID hash option on a few of them. Every invalid verdict is checked for its reason code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import type { HashName } from '../lambda/core/der.js';
import { explainStaple } from '../lambda/report/explain.js';
import { parseOcspResponse, type ParsedResponse } from '../lambda/core/ocsp-response.js';
import { DEFAULT_SKEW_MS, validateResponse } from '../lambda/core/validate.js';
import { type Verdict, type VerdictCode } from '../lambda/core/verdict.js';
import { VECTORS_DIR } from './helpers/vectors.js';

// --- the vectors ----------------------------------------------------------------------------------

const vectorsDir = VECTORS_DIR;

interface ManifestTime {
  iso: string;
}
interface ManifestSingle {
  certID: { hashAlgorithm: string; serialNumber_hex: string };
  certStatus: { status: 'good' | 'revoked' | 'unknown'; revocationTime?: ManifestTime };
  thisUpdate: ManifestTime;
  nextUpdate: ManifestTime | null;
  singleExtensions?: ManifestExtension[];
}
interface ManifestExtension {
  oid: string;
  critical: boolean;
}
type ManifestResponderId =
  { type: 'byKey'; keyHash: string } | { type: 'byName'; name_der_hex: string; name_text_openssl: string };
interface ManifestVector {
  id: string;
  file: string;
  responseStatus: string;
  producedAt?: ManifestTime;
  responderId?: ManifestResponderId;
  responses?: ManifestSingle[];
  responseExtensions?: ManifestExtension[];
  issuer_cert?: string | null;
  subject_cert?: string | null;
  checks?: {
    signer: string | null;
    subject_serial_matched_in_responses: number[] | null;
    rfc6960_verdict_ignoring_time: 'accept' | 'reject' | null;
    reject_reasons: string[];
    time_facts?: { signer_cert_valid_at_producedAt?: boolean | null };
  };
}
interface RecipeCase {
  subtest: string;
  title: string;
  response: string;
  CAfile: string;
  untrusted: string;
  no_cert_checks: boolean;
  issuer_for_rfc6960_check: string | null;
  rfc6960_verdict_ignoring_time: 'accept' | 'reject';
}
interface Manifest {
  vectors: ManifestVector[];
  openssl_recipe_cases: RecipeCase[];
}

const manifest = JSON.parse(readFileSync(path.join(vectorsDir, 'MANIFEST.json'), 'utf8')) as Manifest;
const read = (file: string) => readFileSync(path.join(vectorsDir, file));
const firstCert = (file: string | null | undefined): Certificate | undefined =>
  file ? parseCertificates(read(file))[0] : undefined;
const vectorById = (id: string): ManifestVector => {
  const v = manifest.vectors.find((x) => x.id === id);
  if (!v) throw new Error(`no vector ${id} in MANIFEST.json`);
  return v;
};
/** Non-successful responses carry no producedAt; any instant will do for them. */
const ERROR_RESPONSE_NOW = new Date('2024-01-01T00:00:00Z');
const at = (iso: string, deltaMs = 0) => new Date(Date.parse(iso) + deltaMs);

// --- every vector at its producedAt ---------------------------------------------------------------

type Expectation = 'error status' | 'issuer not given' | 'accept' | 'accept but no nextUpdate' | 'reject';

interface VectorCase {
  name: string;
  v: ManifestVector;
  expect: Expectation;
  /** The SingleResponse the verdict must describe (accepted vectors). */
  single: ManifestSingle | undefined;
}

function matchedSingle(v: ManifestVector): ManifestSingle | undefined {
  const matched = v.checks?.subject_serial_matched_in_responses?.[0];
  // Without a subject certificate the validator takes the issuer's SingleResponse: these vectors hold one.
  return v.responses?.[matched ?? 0];
}

function vectorCase(v: ManifestVector): VectorCase {
  const single = matchedSingle(v);
  if (v.responseStatus !== 'successful') {
    return { name: `${v.id}: ${v.responseStatus} status is invalid`, v, expect: 'error status', single };
  }
  const verdict = v.checks?.rfc6960_verdict_ignoring_time ?? null;
  if (verdict === null) {
    return { name: `${v.id}: invalid, the issuer is unknown`, v, expect: 'issuer not given', single };
  }
  if (verdict === 'reject') {
    const why = v.checks?.reject_reasons.join('; ') ?? '';
    return { name: `${v.id}: rejected (${why})`, v, expect: 'reject', single };
  }
  const signer = v.checks?.signer === 'issuer' ? 'the issuer' : 'a delegated responder';
  if (!single?.nextUpdate) {
    return {
      name: `${v.id}: RFC 6960 accepts it but it has no nextUpdate, so it is invalid`,
      v,
      expect: 'accept but no nextUpdate',
      single,
    };
  }
  return {
    name: `${v.id}: valid at producedAt, ${single.certStatus.status}, signed by ${signer}`,
    v,
    expect: 'accept',
    single,
  };
}

function validateVector(v: ManifestVector, extra: { hash?: HashName } = {}) {
  const parsed = parseOcspResponse(read(v.file));
  const now = v.producedAt ? at(v.producedAt.iso) : ERROR_RESPONSE_NOW;
  const verdict = validateResponse(parsed, {
    cert: firstCert(v.subject_cert),
    issuer: firstCert(v.issuer_cert),
    now,
    ...extra,
  });
  return { parsed, verdict };
}

/** openssl's "C = AU, ST = NSW, CN = x" as the product writes names: "CN=x,ST=NSW,C=AU". */
function fromOpensslName(text: string): string {
  return text
    .split(', ')
    .map((rdn) => rdn.replace(' = ', '='))
    .reverse()
    .join(',');
}

function expectExplanationMatches(v: ManifestVector, parsed: ParsedResponse, verdict: Verdict) {
  const explained = explainStaple(parsed, verdict);
  expect(explained.valid).toBe(verdict.valid);
  expect(explained.responses.map((r) => r.serialNumber)).toEqual(
    (v.responses ?? []).map((r) => r.certID.serialNumber_hex),
  );
  const rid = v.responderId;
  if (!rid) {
    expect(explained.responderId).toBeNull();
  } else if (rid.type === 'byKey') {
    expect(explained.responderId).toEqual({ type: 'byKey', keyHash: rid.keyHash.toUpperCase() });
  } else {
    expect(explained.responderId).toEqual({ type: 'byName', name: fromOpensslName(rid.name_text_openssl) });
    const parsedRid = parsed.basic?.responderId;
    expect(parsedRid && 'byName' in parsedRid ? parsedRid.byName.toString('hex') : undefined).toBe(
      rid.name_der_hex.toLowerCase(),
    );
  }
}

/**
 * The manifest's reject reasons (its own words, from an independent checker) as our codes: the
 * verdict must give exactly these, so a reject row cannot pass for another reason.
 */
const REJECT_CODES: Array<[RegExp, VerdictCode]> = [
  [/^response signature invalid with the designated signer/, 'signature'],
  [/^no certificate matches the responderID/, 'responder-id'],
  [/^no SingleResponse certID matches/, 'certid-mismatch'],
  [/^delegated responder cert is not validly issued by the issuer/, 'signer-not-authorised'],
  [/^delegated responder cert lacks id-kp-OCSPSigning/, 'signer-not-authorised'],
];

/** Critical extensions RFC 6960 lets a client understand: the nonce (response), the rest (single). */
const UNDERSTOOD_RESPONSE_EXTENSIONS = ['1.3.6.1.5.5.7.48.1.2'];
const UNDERSTOOD_SINGLE_EXTENSIONS = [
  '1.3.6.1.5.5.7.48.1.3',
  '1.3.6.1.5.5.7.48.1.6',
  '2.5.29.21',
  '2.5.29.24',
];

/**
 * The codes a reject row must give: the manifest's reasons (which ignore time), plus what the
 * manifest's facts say about time and extensions at producedAt.
 */
function expectedRejectCodes(v: ManifestVector): VerdictCode[] {
  const codes = (v.checks?.reject_reasons ?? []).map((reason) => {
    const found = REJECT_CODES.find(([pattern]) => pattern.test(reason));
    if (!found) throw new Error(`${v.id}: no code for the manifest's reject reason "${reason}"`);
    return found[1];
  });
  const single = matchedSingle(v);
  if (single && !codes.includes('certid-mismatch')) {
    if (!single.nextUpdate) codes.push('no-next-update');
    else if (Date.parse(single.nextUpdate.iso) <= Date.parse(v.producedAt!.iso)) codes.push('stale');
    if (single.singleExtensions?.some((e) => e.critical && !UNDERSTOOD_SINGLE_EXTENSIONS.includes(e.oid))) {
      codes.push('critical-extension');
    }
  }
  if (v.responseExtensions?.some((e) => e.critical && !UNDERSTOOD_RESPONSE_EXTENSIONS.includes(e.oid))) {
    codes.push('critical-extension');
  }
  if (v.checks?.time_facts?.signer_cert_valid_at_producedAt === false) codes.push('signer-expired');
  return [...new Set(codes)].sort();
}

/** The manifest's `checks.signer` as the verdict names it. */
const SIGNER: Record<string, string> = { issuer: 'issuer', 'embedded[0]': 'delegated' };

const vectorCases = manifest.vectors.map(vectorCase);

describe('validateResponse on every MANIFEST vector, at its producedAt', () => {
  it('covers every vector of the manifest', () => {
    expect(vectorCases.length).toBe(manifest.vectors.length);
    expect(vectorCases.length).toBeGreaterThanOrEqual(50);
  });

  for (const { name, v, expect: expectation, single } of vectorCases) {
    it(name, () => {
      const { parsed, verdict } = validateVector(v);
      expect(verdict.responseStatus).toBe(v.responseStatus);

      switch (expectation) {
        case 'error status':
          expect(verdict.valid).toBe(false);
          expect(verdict.errors.join('\n')).toContain(v.responseStatus);
          expect(verdict.codes).toEqual([`status:${v.responseStatus}`]);
          break;
        case 'issuer not given':
          expect(verdict.valid).toBe(false);
          expect(verdict.errors.join('\n')).toMatch(/issuer certificate not given/);
          expect(verdict.codes).toEqual(['issuer-missing']);
          break;
        case 'reject':
          expect(verdict.valid).toBe(false);
          expect([...verdict.codes].sort(), verdict.errors.join('; ')).toEqual(expectedRejectCodes(v));
          expect(verdict.code).toBe(verdict.codes[0]);
          break;
        case 'accept but no nextUpdate':
          expect(verdict.valid).toBe(false);
          expect(verdict.errors.join('\n')).toMatch(/nextUpdate/);
          expect(verdict.codes).toEqual(['no-next-update']);
          break;
        case 'accept': {
          // Validation at producedAt also checks time: the window must still be open then.
          expect(Date.parse(single!.nextUpdate!.iso)).toBeGreaterThan(Date.parse(v.producedAt!.iso));
          expect(verdict.errors).toEqual([]);
          expect(verdict.valid).toBe(true);
          expect(verdict.code).toBeUndefined();
          expect(verdict.codes).toEqual([]);
          expect(verdict.certStatus).toBe(single!.certStatus.status);
          expect(verdict.thisUpdate?.getTime()).toBe(Date.parse(single!.thisUpdate.iso));
          expect(verdict.nextUpdate?.getTime()).toBe(Date.parse(single!.nextUpdate!.iso));
          expect(verdict.producedAt?.getTime()).toBe(Date.parse(v.producedAt!.iso));
          const revokedAt = single!.certStatus.revocationTime;
          expect(verdict.revocationTime?.getTime()).toBe(revokedAt ? Date.parse(revokedAt.iso) : undefined);
          expect(verdict.signature).toEqual({ valid: true, signer: SIGNER[v.checks?.signer ?? ''] });
          expect(verdict.responderCert === undefined).toBe(v.checks?.signer === 'issuer');
          break;
        }
      }
      expectExplanationMatches(v, parsed, verdict);
    });
  }
});

// --- every delegated vector inside and outside its signer's life ---------------------------------

/**
 * A delegated responder certificate must be valid at producedAt and now: a response pre-signed or
 * cached while its signer was valid is refused once the signer has expired (`openssl ocsp -attime`
 * says "certificate has expired"). Every vector whose responderID designates an embedded
 * certificate, and whose issuer we have, is validated at an instant inside the signer's life (and
 * the response's window), just after the signer's notAfter, and before its notBefore (beyond the
 * skew). Issuer-signed vectors have no signer life to check: the issuer is the chain's business.
 */
const SECOND = 1000;
const delegatedVectors = manifest.vectors.filter(
  (v) => v.checks?.signer === 'embedded[0]' && v.issuer_cert && v.producedAt,
);

describe("validateResponse inside and outside each delegated signer's life", () => {
  it('covers the delegated vectors', () => {
    expect(delegatedVectors.length).toBeGreaterThanOrEqual(20);
  });

  for (const v of delegatedVectors) {
    const atProducedAt = () => validateVector(v).verdict;
    const validateAt = (now: Date) =>
      validateResponse(parseOcspResponse(read(v.file)), {
        cert: firstCert(v.subject_cert),
        issuer: firstCert(v.issuer_cert),
        now,
      });
    const signerOf = () => parseOcspResponse(read(v.file)).basic!.certs[0]!;
    const accepted = vectorCase(v).expect === 'accept';

    if (accepted) {
      it(`${v.id}: valid 1 s before its signer's notAfter or its nextUpdate, whichever is first`, () => {
        const signer = signerOf();
        const nextUpdate = Date.parse(matchedSingle(v)!.nextUpdate!.iso);
        const now = new Date(Math.min(signer.notAfter.getTime(), nextUpdate) - SECOND);
        const verdict = validateAt(now);
        expect(verdict.errors).toEqual([]);
        expect(verdict.valid).toBe(true);
      });
    }

    it(`${v.id}: 1 s after its signer's notAfter is signer-expired`, () => {
      const now = new Date(signerOf().notAfter.getTime() + SECOND);
      const before = atProducedAt();
      const verdict = validateAt(now);
      expect(verdict.valid).toBe(false);
      expect(verdict.codes).toContain('signer-expired');
      expect(verdict.errors).toContainEqual(expect.stringMatching(/responder certificate has expired/));
      // Nothing else changes but time: the other codes are the producedAt ones, give or take staleness.
      const timeless = (codes: VerdictCode[]) =>
        codes.filter((c) => c !== 'signer-expired' && c !== 'stale').sort();
      expect(timeless(verdict.codes)).toEqual(timeless(before.codes));
    });

    it(`${v.id}: before its signer's notBefore (beyond the skew) is signer-not-yet-valid`, () => {
      const now = new Date(signerOf().notBefore.getTime() - DEFAULT_SKEW_MS - SECOND);
      const verdict = validateAt(now);
      expect(verdict.valid).toBe(false);
      expect(verdict.codes).toContain('signer-not-yet-valid');
    });
  }
});

// --- OpenSSL's 80-test_ocsp.t response × issuer cases ---------------------------------------------

interface RecipeTestCase {
  name: string;
  responseFile: string;
  issuerFile: string;
  producedAt: string;
  valid: boolean;
}

function recipeCase(c: RecipeCase, index: number): RecipeTestCase {
  const responseFile = `openssl-ocsp-tests/${c.response.replace(/\.ors$/, '.der')}`;
  const vector = manifest.vectors.find((v) => v.file === responseFile);
  if (!vector?.producedAt)
    throw new Error(`recipe case ${index + 1}: no vector with producedAt for ${responseFile}`);
  const valid = c.rfc6960_verdict_ignoring_time === 'accept';
  const extras = [c.untrusted && `untrusted ${c.untrusted}`, c.no_cert_checks && '-no_cert_checks']
    .filter(Boolean)
    .join(', ');
  return {
    name: `${index + 1}. ${c.subtest}: ${c.title}, CAfile ${c.CAfile}${extras ? ` (${extras})` : ''} → ${valid ? 'valid' : 'invalid'}`,
    responseFile,
    issuerFile: c.issuer_for_rfc6960_check ?? `openssl-ocsp-tests/${c.CAfile}`,
    producedAt: vector.producedAt.iso,
    valid,
  };
}

const recipeCases = manifest.openssl_recipe_cases.map(recipeCase);

describe('validateResponse on the openssl 80-test_ocsp.t cases, at producedAt', () => {
  it('covers all 58 recipe cases', () => {
    expect(recipeCases.length).toBe(58);
  });

  for (const { name, responseFile, issuerFile, producedAt, valid } of recipeCases) {
    it(name, () => {
      const verdict = validateResponse(parseOcspResponse(read(responseFile)), {
        issuer: firstCert(issuerFile),
        now: new Date(producedAt),
      });
      expect(verdict.valid, verdict.errors.join('; ')).toBe(valid);
      expect(verdict.errors.length === 0).toBe(valid);
      expect(verdict.code === undefined).toBe(valid);
    });
  }
});

// --- time window, wrong certificate, CertID hash ---------------------------------------------------

const MINUTE = 60_000;

describe('validateResponse time checks around a valid vector', () => {
  const timeVectors = ['openssl/ND1', 'openssl/D1', 'aws-lc/ocsp_response'];
  const cases = timeVectors.flatMap((id) => {
    const v = vectorById(id);
    const single = matchedSingle(v)!;
    const thisUpdate = single.thisUpdate.iso;
    const nextUpdate = single.nextUpdate!.iso;
    // The later of thisUpdate and producedAt: before it by more than the skew, one is in the future.
    const issued = new Date(Math.max(Date.parse(thisUpdate), Date.parse(v.producedAt!.iso))).toISOString();
    const producedLater = Date.parse(v.producedAt!.iso) >= Date.parse(thisUpdate);
    const codes: VerdictCode[] = [];
    return [
      { name: `${id}: 1 s after nextUpdate is stale`, v, now: at(nextUpdate, 1000), codes: ['stale'] },
      { name: `${id}: exactly at nextUpdate is stale`, v, now: at(nextUpdate), codes: ['stale'] },
      { name: `${id}: 1 s before nextUpdate is valid`, v, now: at(nextUpdate, -1000), codes },
      {
        name: `${id}: 10 min before thisUpdate (beyond the 5 min skew) is not yet valid`,
        v,
        now: at(thisUpdate, -10 * MINUTE),
        codes: producedLater ? ['produced-in-future', 'not-yet-valid'] : ['not-yet-valid'],
      },
      {
        name: `${id}: 4 min before thisUpdate and producedAt (within the skew) is valid`,
        v,
        now: at(issued, -4 * MINUTE),
        codes,
      },
    ];
  });

  for (const { name, v, now, codes } of cases) {
    it(name, () => {
      const verdict = validateResponse(parseOcspResponse(read(v.file)), {
        cert: firstCert(v.subject_cert),
        issuer: firstCert(v.issuer_cert),
        now,
      });
      expect(verdict.codes, verdict.errors.join('; ')).toEqual(codes);
      expect(verdict.valid).toBe(codes.length === 0);
      if (codes.includes('stale')) expect(verdict.errors.join('\n')).toMatch(/expired: nextUpdate/);
      if (codes.includes('not-yet-valid')) expect(verdict.errors.join('\n')).toMatch(/thisUpdate .* future/);
    });
  }

  it('a wider skew accepts 10 min before thisUpdate', () => {
    const v = vectorById('openssl/ND1');
    const verdict = validateResponse(parseOcspResponse(read(v.file)), {
      cert: firstCert(v.subject_cert),
      issuer: firstCert(v.issuer_cert),
      now: at(matchedSingle(v)!.thisUpdate.iso, -10 * MINUTE),
      skewMs: 15 * MINUTE,
    });
    expect(verdict.valid).toBe(true);
  });
});

describe('validateResponse CertID matching', () => {
  it('aws-lc ocsp_response for a different certificate of the same issuer (ecdsa_cert) is invalid', () => {
    const v = vectorById('aws-lc/ocsp_response');
    const other = firstCert('aws-lc-s2n/ecdsa_cert.pem')!;
    const issuer = firstCert(v.issuer_cert)!;
    expect(other.issuerDer.equals(issuer.subjectDer)).toBe(true);
    const verdict = validateResponse(parseOcspResponse(read(v.file)), {
      cert: other,
      issuer,
      now: at(v.producedAt!.iso),
    });
    expect(verdict.valid).toBe(false);
    expect(verdict.certStatus).toBeUndefined();
    expect(verdict.errors.join('\n')).toMatch(/no SingleResponse matches/);
    expect(verdict.codes).toEqual(['certid-mismatch']);
  });

  const hashCases: Array<{ name: string; hash: HashName; valid: boolean }> = [
    { name: 'a SHA-256 CertID required as sha1 matches nothing', hash: 'sha1', valid: false },
    { name: 'a SHA-256 CertID required as sha256 is valid', hash: 'sha256', valid: true },
  ];
  for (const { name, hash, valid } of hashCases) {
    it(`aws-lc/ocsp_response_sha256: ${name}`, () => {
      const { verdict } = validateVector(vectorById('aws-lc/ocsp_response_sha256'), { hash });
      expect(verdict.valid).toBe(valid);
      if (valid) expect(verdict.errors).toEqual([]);
      else {
        expect(verdict.errors.join('\n')).toMatch(/no SingleResponse matches/);
        expect(verdict.codes).toEqual(['certid-mismatch']);
      }
    });
  }
});
