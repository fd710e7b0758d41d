/**
 * Seeded fuzzing over the shared OCSP vectors: a few thousand mutations a run (bit flips,
 * truncations, byte insertions and deletions, DER length tweaks, time characters swapped). Every
 * input must give parseOcspResponse's documented ResponseParseError or a parsed response whose
 * validateResponse is a Verdict with a known code: never a raw exception. Certificates are fuzzed
 * the same way for parseCertificates' CertificateParseError. The seed is fixed (FUZZ_SEED
 * overrides it), so a failure names its seed and case and reproduces.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { explainStaple } from '../lambda/report/explain.js';
import { CertificateParseError, ResponseParseError } from '../lambda/core/errors.js';
import { parseOcspResponse, type ParsedResponse } from '../lambda/core/ocsp-response.js';
import { ValidationCache } from '../lambda/core/responder.js';
import { validateResponse } from '../lambda/core/validate.js';
import { VERDICT_CODES, type Verdict } from '../lambda/core/verdict.js';
import { mutate, prng } from './helpers/fuzz.js';
import { VECTORS_DIR } from './helpers/vectors.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x0c5b) >>> 0;
const RESPONSE_MUTATIONS = 3000;
const CERTIFICATE_MUTATIONS = 600;

interface Vector {
  id: string;
  file: string;
  issuer_cert?: string | null;
  subject_cert?: string | null;
  producedAt?: { iso: string };
}
const manifest = JSON.parse(readFileSync(path.join(VECTORS_DIR, 'MANIFEST.json'), 'utf8')) as {
  vectors: Vector[];
};
const read = (file: string) => readFileSync(path.join(VECTORS_DIR, file));
const certOf = (file: string | null | undefined): Certificate | undefined =>
  file ? parseCertificates(read(file))[0] : undefined;

const seeds = manifest.vectors.map((v) => ({
  id: v.id,
  der: read(v.file),
  cert: certOf(v.subject_cert),
  issuer: certOf(v.issuer_cert),
  now: new Date(v.producedAt?.iso ?? '2024-01-01T00:00:00Z'),
}));
const certificateFiles = [
  ...new Set(manifest.vectors.flatMap((v) => [v.issuer_cert, v.subject_cert]).filter(Boolean)),
] as string[];

const KNOWN_CODE = new RegExp(
  `^(${VERDICT_CODES.join('|')}|status:(malformedRequest|internalError|tryLater|sigRequired|unauthorized|UNKNOWN\\(-?\\d+\\)))$`,
);

function expectVerdict(verdict: Verdict, label: string): void {
  expect(typeof verdict.valid, label).toBe('boolean');
  if (verdict.valid) {
    expect(verdict.code, label).toBeUndefined();
    expect(verdict.errors, label).toEqual([]);
  } else {
    expect(verdict.errors.length, label).toBeGreaterThan(0);
    expect(verdict.codes.length, label).toBeGreaterThan(0);
    expect(verdict.code, label).toBe(verdict.codes[0]);
    for (const code of verdict.codes) expect(code, label).toMatch(KNOWN_CODE);
    for (const message of verdict.errors) {
      expect(message, label).not.toMatch(LIBRARY_WORDS);
      // validateResponse's last-resort catch must never be what produced the verdict.
      expect(message, label).not.toMatch(/cannot be checked/);
    }
  }
}

/** Words of asn1js, pkijs and node:crypto internals that must never reach a user. */
const LIBRARY_WORDS =
  /Object's schema|Wrong input string|decode error|illegal zero content|ERR_OSSL|at .*\.js:\d+/;

describe(`fuzzed OCSP responses (seed ${SEED})`, () => {
  it(`${RESPONSE_MUTATIONS} mutations of the shared vectors: a typed parse error or a verdict with a known code`, () => {
    const rand = prng(SEED);
    const cache = new ValidationCache();
    const outcomes = { parseError: 0, invalid: 0, valid: 0 };
    const codesSeen = new Set<string>();
    for (let n = 0; n < RESPONSE_MUTATIONS; n++) {
      const seed = seeds[Math.floor(rand() * seeds.length)]!;
      const { bytes, what } = mutate(seed.der, rand);
      const label = `seed ${SEED} case ${n}: ${seed.id}, ${what}`;
      let parsed: ParsedResponse;
      try {
        parsed = parseOcspResponse(bytes);
      } catch (err) {
        expect(err, label).toBeInstanceOf(ResponseParseError);
        expect((err as Error).message, label).not.toMatch(LIBRARY_WORDS);
        outcomes.parseError++;
        continue;
      }
      // At producedAt, and a year later (signer and window checks take other paths).
      for (const now of [seed.now, new Date(seed.now.getTime() + 365 * 86_400_000)]) {
        const verdict = validateResponse(parsed, { cert: seed.cert, issuer: seed.issuer, now, cache });
        expectVerdict(verdict, label);
        verdict.codes.forEach((c) => codesSeen.add(c));
        outcomes[verdict.valid ? 'valid' : 'invalid']++;
        expect(() => JSON.stringify(explainStaple(parsed, verdict)), label).not.toThrow();
      }
    }
    // The mutations reach every layer: parse errors, invalid verdicts for many reasons, some valid.
    expect(outcomes.parseError).toBeGreaterThan(RESPONSE_MUTATIONS / 10);
    expect(outcomes.invalid).toBeGreaterThan(RESPONSE_MUTATIONS / 10);
    expect(codesSeen.size, [...codesSeen].join(' ')).toBeGreaterThanOrEqual(8);
  });
});

describe(`fuzzed certificates (seed ${SEED})`, () => {
  it(`${CERTIFICATE_MUTATIONS} mutations of the vectors' certificates: a certificate or CertificateParseError`, () => {
    const rand = prng(SEED ^ 0x5eed);
    const originals = certificateFiles.map((file) => ({ file, der: parseCertificates(read(file))[0]!.der }));
    let refused = 0;
    for (let n = 0; n < CERTIFICATE_MUTATIONS; n++) {
      const original = originals[Math.floor(rand() * originals.length)]!;
      const { bytes, what } = mutate(original.der, rand);
      const label = `seed ${SEED} case ${n}: ${original.file}, ${what}`;
      // As DER and as a PEM block: both paths must give only the documented error.
      for (const input of [
        bytes,
        Buffer.from(`-----BEGIN CERTIFICATE-----\n${bytes.toString('base64')}\n-----END CERTIFICATE-----\n`),
      ]) {
        try {
          const [cert] = parseCertificates(input);
          expect(cert!.notBefore.getTime(), label).not.toBeNaN();
          expect(cert!.notAfter.getTime(), label).not.toBeNaN();
        } catch (err) {
          expect(err, label).toBeInstanceOf(CertificateParseError);
          expect((err as Error).message, label).not.toMatch(/Wrong input string|at .*\.js:\d+/);
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(CERTIFICATE_MUTATIONS / 10);
  });
});
