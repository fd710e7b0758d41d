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
import { CertificateParseError, parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { explainStaple } from '../lambda/core/explain.js';
import { parseOcspResponse, ResponseParseError, type ParsedResponse } from '../lambda/core/ocsp-response.js';
import { validateResponse, VERDICT_CODES, ValidationCache, type Verdict } from '../lambda/core/validate.js';
import { VECTORS_DIR } from './helpers/vectors.js';

const SEED = Number(process.env.FUZZ_SEED ?? 0x0c5b) >>> 0;
const RESPONSE_MUTATIONS = 3000;
const CERTIFICATE_MUTATIONS = 600;

/** mulberry32: a small seeded PRNG, so every failure reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

type Mutation = (bytes: Buffer, rand: () => number) => { bytes: Buffer; what: string };
const at = (bytes: Buffer, rand: () => number) => Math.floor(rand() * bytes.length);

const MUTATIONS: Mutation[] = [
  (b, rand) => {
    const i = at(b, rand);
    const bit = Math.floor(rand() * 8);
    const out = Buffer.from(b);
    out[i]! ^= 1 << bit;
    return { bytes: out, what: `flip bit ${bit} of byte ${i}` };
  },
  (b, rand) => {
    const n = at(b, rand);
    return { bytes: b.subarray(0, n), what: `truncate to ${n} bytes` };
  },
  (b, rand) => {
    const i = at(b, rand);
    const byte = Math.floor(rand() * 256);
    return {
      bytes: Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]),
      what: `insert ${byte} at ${i}`,
    };
  },
  (b, rand) => {
    const i = at(b, rand);
    return { bytes: Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]), what: `delete byte ${i}` };
  },
  (b, rand) => {
    const i = at(b, rand);
    const byte = Math.floor(rand() * 256);
    const out = Buffer.from(b);
    out[i] = byte;
    return { bytes: out, what: `set byte ${i} to ${byte}` };
  },
  // A DER length octet (the byte after a tag) nudged by ±1 or ±0x80: lengths that lie.
  (b, rand) => {
    const tags = [0x30, 0x04, 0x02, 0x06, 0x03, 0x18, 0x17, 0xa0, 0xa1, 0xa2, 0x0a, 0x05];
    const starts = [...b.keys()].filter((i) => i + 1 < b.length && tags.includes(b[i]!));
    const i = (starts[Math.floor(rand() * starts.length)] ?? 0) + 1;
    const delta = [1, -1, 0x80, -0x80][Math.floor(rand() * 4)]!;
    const out = Buffer.from(b);
    out[i] = (out[i]! + delta) & 0xff;
    return { bytes: out, what: `length octet ${i} ${delta > 0 ? '+' : ''}${delta}` };
  },
  // A character of a GeneralizedTime/UTCTime replaced: local times, offsets, impossible dates.
  (b, rand) => {
    const times = [...b.keys()].filter(
      (i) => (b[i] === 0x18 && b[i + 1] === 15) || (b[i] === 0x17 && b[i + 1] === 13),
    );
    const start = times[Math.floor(rand() * times.length)];
    if (start === undefined) return { bytes: b, what: 'no time to mutate' };
    const i = start + 2 + Math.floor(rand() * b[start + 1]!);
    const chars = '0123456789Z+-. 9';
    const out = Buffer.from(b);
    out[i] = chars.charCodeAt(Math.floor(rand() * chars.length));
    return { bytes: out, what: `time character ${i} set to ${String.fromCharCode(out[i]!)}` };
  },
];

function mutate(bytes: Buffer, rand: () => number): { bytes: Buffer; what: string } {
  // One to three mutations stacked, so a few reach past the first check that fails.
  let current = { bytes, what: '' };
  const rounds = 1 + Math.floor(rand() * 3);
  for (let r = 0; r < rounds; r++) {
    const next = MUTATIONS[Math.floor(rand() * MUTATIONS.length)]!(current.bytes, rand);
    current = { bytes: next.bytes, what: current.what ? `${current.what}, ${next.what}` : next.what };
  }
  return current;
}

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
