/**
 * The renewal verifies signatures on libuv's thread pool (KnownSignatures, verifyInThreadPool)
 * while validateResponse and pickIssuer keep every check: the answers run ahead must give the very
 * verdicts the synchronous code gives, on every shared vector and every openssl recipe case, and
 * an answer must only ever be used for the exact call it was run for.
 */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCertificates } from '../lambda/core/certificate.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import {
  checkSignature,
  KnownSignatures,
  verifyInThreadPool,
  verifySignatureCall,
  worthThreadPool,
  type VerifyCall,
} from '../lambda/core/signature.js';
import { certificateSignatureCall, responseSignatureCalls } from '../lambda/core/responder.js';
import { validateResponse } from '../lambda/core/validate.js';
import { VECTORS_DIR } from './helpers/vectors.js';

interface Manifest {
  vectors: Array<{
    id: string;
    file: string;
    producedAt?: { iso: string };
    issuer_cert?: string | null;
    subject_cert?: string | null;
  }>;
  openssl_recipe_cases: Array<{ response: string; CAfile: string; issuer_for_rfc6960_check: string | null }>;
}

const manifest = JSON.parse(readFileSync(path.join(VECTORS_DIR, 'MANIFEST.json'), 'utf8')) as Manifest;
const read = (file: string) => readFileSync(path.join(VECTORS_DIR, file));
const firstCert = (file: string) => parseCertificates(read(file))[0]!;

/** Every response with an issuer to check it against: the vectors, then the recipe cases. */
const cases = [
  ...manifest.vectors
    .filter((v) => v.issuer_cert && v.producedAt)
    .map((v) => ({
      name: v.id,
      response: v.file,
      issuer: v.issuer_cert!,
      subject: v.subject_cert ?? undefined,
      producedAt: v.producedAt!.iso,
    })),
  ...manifest.openssl_recipe_cases.flatMap((c, i) => {
    const response = `openssl-ocsp-tests/${c.response.replace(/\.ors$/, '.der')}`;
    const producedAt = manifest.vectors.find((v) => v.file === response)?.producedAt?.iso;
    return producedAt
      ? [
          {
            name: `recipe ${i + 1} (${c.response})`,
            response,
            issuer: c.issuer_for_rfc6960_check ?? `openssl-ocsp-tests/${c.CAfile}`,
            subject: undefined,
            producedAt,
          },
        ]
      : [];
  }),
];

describe('validateResponse with signatures verified ahead in the thread pool', () => {
  it('gives the synchronous verdict on every vector and recipe case', async () => {
    let withCalls = 0;
    let signatureValid = 0;
    let signatureInvalid = 0;
    for (const c of cases) {
      const parsed = parseOcspResponse(read(c.response));
      const issuer = firstCert(c.issuer);
      const input = {
        issuer,
        cert: c.subject ? firstCert(c.subject) : undefined,
        now: new Date(c.producedAt),
      };
      const calls = responseSignatureCalls(parsed, issuer);
      if (calls.length > 0) withCalls++;
      // Every call answered from the pool (KnownSignatures.verify would keep RSA-2048 inline).
      const known = new KnownSignatures();
      for (const call of calls) known.add(call, await verifyInThreadPool(call));
      const ahead = validateResponse(parsed, { ...input, signatures: known });
      const sync = validateResponse(parsed, input);
      expect(ahead, c.name).toEqual(sync);
      if (calls.length > 0) {
        if (sync.signature.valid) signatureValid++;
        else signatureInvalid++;
      }
    }
    // Not vacuous: most responses had a call to run ahead, with good and bad signatures among them.
    expect(cases.length).toBeGreaterThan(80);
    expect(withCalls).toBeGreaterThan(60);
    expect(signatureValid).toBeGreaterThan(30);
    expect(signatureInvalid).toBeGreaterThan(0);
  });

  it("uses the answer it is given for that call (a false answer fails a good signature with code 'signature')", async () => {
    const v = manifest.vectors.find((x) => x.id === 'openssl/ND1')!;
    const parsed = parseOcspResponse(read(v.file));
    const issuer = firstCert(v.issuer_cert!);
    const now = new Date(v.producedAt!.iso);
    const [call] = responseSignatureCalls(parsed, issuer);
    expect(call).toBeDefined();
    expect(validateResponse(parsed, { issuer, now }).signature.valid).toBe(true);
    const lying = new KnownSignatures();
    lying.add(call!, false);
    const verdict = validateResponse(parsed, { issuer, now, signatures: lying });
    expect(verdict.signature.valid).toBe(false);
    expect(verdict.codes).toContain('signature');
  });

  it('answers only the exact call: other data, signature, key or hash get no answer', async () => {
    const v = manifest.vectors.find((x) => x.id === 'openssl/ND1')!;
    const parsed = parseOcspResponse(read(v.file));
    const issuer = firstCert(v.issuer_cert!);
    const [call] = responseSignatureCalls(parsed, issuer) as [VerifyCall];
    const known = new KnownSignatures();
    known.add(call, true);
    expect(known.answer(call)).toBe(true);
    // Equal bytes in another buffer are the same call.
    expect(known.answer({ ...call, data: Buffer.from(call.data) })).toBe(true);
    const flipped = (bytes: Uint8Array) => {
      const copy = Buffer.from(bytes);
      copy[copy.length - 1]! ^= 1;
      return copy;
    };
    expect(known.answer({ ...call, data: flipped(call.data) })).toBeUndefined();
    expect(known.answer({ ...call, signature: flipped(call.signature) })).toBeUndefined();
    expect(known.answer({ ...call, hash: call.hash === 'sha256' ? 'sha384' : 'sha256' })).toBeUndefined();
    const otherKey = firstCert('openssl-ocsp-tests/D1_Issuer_ICA.pem').publicKey;
    expect(known.answer({ ...call, key: otherKey })).toBeUndefined();
  });
});

describe('KnownSignatures.verify', () => {
  it('runs ECDSA and Ed25519 calls in the pool and leaves RSA to verify inline', async () => {
    const data = Buffer.from('to be signed');
    const callFor = (type: 'ec' | 'rsa' | 'ed25519', options: object): VerifyCall => {
      const { publicKey, privateKey } = generateKeyPairSync(type as 'ec', options as { namedCurve: string });
      const hash = type === 'ed25519' ? null : 'sha256';
      return { hash, key: publicKey, data, signature: sign(hash, data, privateKey) };
    };
    const p256 = callFor('ec', { namedCurve: 'prime256v1' });
    const ed25519 = callFor('ed25519', {});
    const rsa2048 = callFor('rsa', { modulusLength: 2048 });
    expect([p256, ed25519, rsa2048].map(worthThreadPool)).toEqual([true, true, false]);
    const known = await KnownSignatures.verify([p256, ed25519, rsa2048]);
    expect(known.answer(p256)).toBe(true);
    expect(known.answer(ed25519)).toBe(true);
    expect(known.answer(rsa2048)).toBeUndefined();
    // Left inline, it is still checked: checkSignature verifies it on the spot.
    expect(await verifySignatureCall(rsa2048)).toBe(true);
    expect(await verifySignatureCall({ ...rsa2048, data: Buffer.from('other') })).toBe(false);
  });
});

describe('verifyInThreadPool', () => {
  it('answers as the synchronous check does: good, altered and malformed signatures', async () => {
    const leaf = firstCert('openssl-ocsp-tests/ND1_Cert_EE.pem');
    const issuer = firstCert('openssl-ocsp-tests/ND1_Issuer_ICA.pem');
    const call = certificateSignatureCall(leaf, issuer)!;
    expect(await verifyInThreadPool(call)).toBe(true);
    expect(
      checkSignature(leaf.signatureAlgorithm, issuer.publicKey, leaf.tbsDer, leaf.signature),
    ).toBeUndefined();
    const altered = { ...call, data: Buffer.concat([Buffer.from(call.data), Buffer.from([0])]) };
    expect(await verifyInThreadPool(altered)).toBe(false);
    const malformed = { ...call, signature: Buffer.from('not a signature') };
    expect(await verifyInThreadPool(malformed)).toBe(false);
    expect(checkSignature(leaf.signatureAlgorithm, issuer.publicKey, call.data, malformed.signature)).toEqual(
      {
        code: 'signature',
        reason: 'signature does not verify',
      },
    );
  });

  it('runs an RSA-PSS call with its padding and salt length, as crypto.verify does', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const data = Buffer.from('to be signed');
    const signature = sign('sha256', data, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    const call = (saltLength: number): VerifyCall => ({
      hash: 'sha256',
      key: { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength },
      data,
      signature,
    });
    expect(await verifyInThreadPool(call(32))).toBe(true);
    expect(await verifyInThreadPool(call(64))).toBe(false);
    const known = new KnownSignatures();
    known.add(call(32), await verifyInThreadPool(call(32)));
    expect(known.answer(call(32))).toBe(true);
    expect(known.answer(call(64))).toBeUndefined(); // another salt length is another call
  });
});
