/**
 * What validateResponse refuses beyond the shared vectors, on responses built and signed in the
 * test (openssl makes the certificates, node:crypto signs): a signature algorithm that does not
 * match the signer's key (each accepted before), RSASSA-PSS parameters, an undecodable key, a
 * producedAt in the future, a nonce whose length lies, critical extensions in a delegated
 * responder certificate, and times that are not DER (`YYYYMMDDHHMMSSZ`, `YYMMDDHHMMSSZ`).
 */
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate, parseCertificates } from '../lambda/core/certificate.js';
import { asBuffer, digest, HASH_OIDS } from '../lambda/core/der.js';
import { CertificateParseError, ResponseParseError } from '../lambda/core/errors.js';
import { NONCE_OID, type CertId } from '../lambda/core/ocsp-request.js';
import { BASIC_RESPONSE_OID, parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { validateResponse } from '../lambda/core/validate.js';
import { type VerdictCode } from '../lambda/core/verdict.js';
import { buildOcspResponse, unrelatedRsaKey } from './helpers/fake-responder.js';
import { openssl } from './helpers/pki.js';

const MINUTE = 60_000;
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);

// --- DER assembly ---------------------------------------------------------------------------------

const len = (n: number) => (n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff]);
const tlv = (tag: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag, ...len(body.length)]), body]);
};
const oid = (value: string) => asBuffer(new asn1js.ObjectIdentifier({ value }).toBER());
/** The content of a DER TLV (definite length). */
const contentOf = (der: Buffer) => {
  const first = der[1]!;
  const header = first < 0x80 ? 2 : 2 + (first & 0x7f);
  return der.subarray(header);
};

/** An OCSPResponse around `tbs` with the signatureAlgorithm, signature and certs given. */
function assemble(
  tbs: Buffer,
  alg: { oid: string; params?: Buffer },
  signature: Buffer,
  certs: Certificate[] = [],
) {
  const basic = tlv(
    0x30,
    tbs,
    tlv(0x30, oid(alg.oid), alg.params ?? Buffer.alloc(0)),
    tlv(0x03, Buffer.from([0]), signature),
    certs.length ? tlv(0xa0, tlv(0x30, ...certs.map((c) => c.der))) : Buffer.alloc(0),
  );
  return tlv(
    0x30,
    Buffer.from([0x0a, 0x01, 0x00]),
    tlv(0xa0, tlv(0x30, oid(BASIC_RESPONSE_OID), tlv(0x04, basic))),
  );
}

const OID = {
  sha256WithRSA: '1.2.840.113549.1.1.11',
  rsaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
} as const;

function pssParams(hash: 'sha1' | 'sha256', mgfHash: 'sha1' | 'sha256', saltLength: number): Buffer {
  const alg = (h: 'sha1' | 'sha256') =>
    new pkijs.AlgorithmIdentifier({ algorithmId: HASH_OIDS[h], algorithmParams: new asn1js.Null() });
  return asBuffer(
    new pkijs.RSASSAPSSParams({
      hashAlgorithm: alg(hash),
      maskGenAlgorithm: new pkijs.AlgorithmIdentifier({
        algorithmId: OID.mgf1,
        algorithmParams: alg(mgfHash).toSchema(),
      }),
      saltLength,
    })
      .toSchema()
      .toBER(),
  );
}

// --- the PKI: self-signed issuers of every key type, delegated responders ---------------------------

interface Issuer {
  cert: Certificate;
  key: KeyObject;
}
let dir: string;
const issuers = {} as Record<'rsa' | 'rsaPss' | 'ec' | 'secp256k1' | 'ed25519' | 'ed448', Issuer>;

async function selfSigned(name: string, key: KeyObject): Promise<Certificate> {
  const keyFile = path.join(dir, `${name}.key.pem`);
  await writeFile(keyFile, key.export({ type: 'pkcs8', format: 'pem' }));
  const out = path.join(dir, `${name}.pem`);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-subj',
    `/CN=validate test ${name} CA`,
    '-days',
    '30',
    '-out',
    out,
  ]);
  return parseCertificates(await readFile(out))[0]!;
}

/** A delegated responder issued by the RSA issuer with the extensions of `ext` (openssl x509v3 config lines). */
async function responder(name: string, ext: string[]): Promise<{ cert: Certificate; key: KeyObject }> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(dir, `${name}.key.pem`);
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const csr = path.join(dir, `${name}.csr`);
  await openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=validate test ${name}`, '-out', csr]);
  const extFile = path.join(dir, `${name}.cnf`);
  await writeFile(extFile, `[ ext ]\n${ext.join('\n')}\n`);
  const out = path.join(dir, `${name}.pem`);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', path.join(dir, 'rsa.pem'), '-CAkey', path.join(dir, 'rsa.key.pem'),
    '-set_serial', String(Math.floor(Math.random() * 1e9)), '-days', '30', '-extfile', extFile, '-extensions', 'ext', '-out', out,
  ]); // prettier-ignore
  return { cert: parseCertificates(await readFile(out))[0]!, key: privateKey };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'validate-signature-'));
  const keys: Record<keyof typeof issuers, KeyObject> = {
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    rsaPss: generateKeyPairSync('rsa-pss', {
      modulusLength: 2048,
      hashAlgorithm: 'sha256',
      mgf1HashAlgorithm: 'sha256',
      ...({ saltLength: 32 } as object), // @types/node says string; node wants the number
    }).privateKey,
    ec: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    secp256k1: generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey,
    ed25519: generateKeyPairSync('ed25519').privateKey,
    ed448: generateKeyPairSync('ed448').privateKey,
  };
  for (const [name, key] of Object.entries(keys) as Array<[keyof typeof issuers, KeyObject]>) {
    issuers[name] = { cert: await selfSigned(name, key), key };
  }
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A CertID for serial 01 under `issuer` (no leaf: the validator takes the issuer's SingleResponse). */
const certIdUnder = (issuer: Certificate): CertId => ({
  hash: 'sha1',
  issuerNameHash: digest('sha1', issuer.subjectDer),
  issuerKeyHash: issuer.keyHash('sha1'),
  serial: Buffer.from([1]),
});

/**
 * tbsResponseData naming `signerCert` (byName), for `issuer`'s certificate serial 01, valid now;
 * pkijs signs a throwaway response with an unrelated key and only its tbs is kept.
 */
async function tbsFor(
  issuer: Certificate,
  signerCert: Certificate,
  extra: Partial<Parameters<typeof buildOcspResponse>[0]> = {},
): Promise<Buffer> {
  const der = await buildOcspResponse({
    certId: certIdUnder(issuer),
    thisUpdate: new Date(NOW.getTime() - MINUTE),
    nextUpdate: new Date(NOW.getTime() + 60 * MINUTE),
    signer: { cert: signerCert, key: await unrelatedKey() },
    certs: [],
    ...extra,
  });
  return parseOcspResponse(der).basic!.tbsDer;
}
let throwaway: Promise<Awaited<ReturnType<typeof unrelatedRsaKey>>> | undefined;
const unrelatedKey = () => (throwaway ??= unrelatedRsaKey());

const verdictOf = (der: Buffer, issuer: Certificate, now = NOW, nonce?: Buffer) =>
  validateResponse(parseOcspResponse(der), { issuer, now, nonce });

// --- signature algorithm bound to the key -----------------------------------------------------------

type Signing = (tbs: Buffer, key: KeyObject) => Buffer;
const pkcs1Sha256: Signing = (tbs, key) => sign('sha256', tbs, key);
const ecdsaSha256: Signing = (tbs, key) => sign('sha256', tbs, key);
const eddsa: Signing = (tbs, key) => sign(null, tbs, key);
const pss =
  (saltLength: number): Signing =>
  (tbs, key) =>
    sign('sha256', tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });

interface AlgorithmCase {
  name: string;
  issuer: keyof typeof issuers;
  alg: () => { oid: string; params?: Buffer };
  signing: Signing;
  code: VerdictCode | undefined;
}

const algorithmCases: AlgorithmCase[] = [
  { name: 'RSA key, sha256WithRSAEncryption: valid', issuer: 'rsa', alg: () => ({ oid: OID.sha256WithRSA, params: Buffer.from([5, 0]) }), signing: pkcs1Sha256, code: undefined },
  { name: 'RSA key, an RSA-SHA256 signature under the Ed25519 OID: refused', issuer: 'rsa', alg: () => ({ oid: OID.ed25519 }), signing: pkcs1Sha256, code: 'signature-algorithm' },
  { name: 'RSA key, an RSA signature under ecdsa-with-SHA256: refused', issuer: 'rsa', alg: () => ({ oid: OID.ecdsaSha256 }), signing: pkcs1Sha256, code: 'signature-algorithm' },
  { name: 'P-256 key, ecdsa-with-SHA256: valid', issuer: 'ec', alg: () => ({ oid: OID.ecdsaSha256 }), signing: ecdsaSha256, code: undefined },
  { name: 'P-256 key, an ECDSA signature under sha256WithRSAEncryption: refused', issuer: 'ec', alg: () => ({ oid: OID.sha256WithRSA, params: Buffer.from([5, 0]) }), signing: ecdsaSha256, code: 'signature-algorithm' },
  { name: 'secp256k1 key, ecdsa-with-SHA256: refused (not a curve TLS clients verify)', issuer: 'secp256k1', alg: () => ({ oid: OID.ecdsaSha256 }), signing: ecdsaSha256, code: 'signature-algorithm' },
  { name: 'Ed25519 key, Ed25519: valid', issuer: 'ed25519', alg: () => ({ oid: OID.ed25519 }), signing: eddsa, code: undefined },
  { name: 'Ed25519 key, an Ed25519 signature under the Ed448 OID: refused', issuer: 'ed25519', alg: () => ({ oid: OID.ed448 }), signing: eddsa, code: 'signature-algorithm' },
  { name: 'Ed448 key, Ed448: valid', issuer: 'ed448', alg: () => ({ oid: OID.ed448 }), signing: eddsa, code: undefined },
  { name: 'RSA key, RSASSA-PSS SHA-256 / MGF1 SHA-256 / salt 32: valid', issuer: 'rsa', alg: () => ({ oid: OID.rsaPss, params: pssParams('sha256', 'sha256', 32) }), signing: pss(32), code: undefined },
  { name: 'RSA key, RSASSA-PSS without parameters (RFC 4055 §3.1 requires them): refused', issuer: 'rsa', alg: () => ({ oid: OID.rsaPss }), signing: pss(32), code: 'signature-algorithm' },
  { name: 'RSA key, RSASSA-PSS with NULL parameters: refused', issuer: 'rsa', alg: () => ({ oid: OID.rsaPss, params: Buffer.from([5, 0]) }), signing: pss(32), code: 'signature-algorithm' },
  { name: 'RSA key, RSASSA-PSS SHA-256 with MGF1 SHA-1: refused', issuer: 'rsa', alg: () => ({ oid: OID.rsaPss, params: pssParams('sha256', 'sha1', 32) }), signing: pss(32), code: 'signature-algorithm' },
  { name: 'RSA key, RSASSA-PSS naming salt 20 over a salt-32 signature: does not verify', issuer: 'rsa', alg: () => ({ oid: OID.rsaPss, params: pssParams('sha256', 'sha256', 20) }), signing: pss(32), code: 'signature' },
  { name: 'RSA-PSS key (SHA-256, salt ≥ 32), matching RSASSA-PSS: valid', issuer: 'rsaPss', alg: () => ({ oid: OID.rsaPss, params: pssParams('sha256', 'sha256', 32) }), signing: pss(32), code: undefined },
  { name: 'RSA-PSS key, salt 20 below the key\'s 32: refused', issuer: 'rsaPss', alg: () => ({ oid: OID.rsaPss, params: pssParams('sha256', 'sha256', 20) }), signing: pss(32), code: 'signature-algorithm' },
  { name: 'RSA-PSS key, sha256WithRSAEncryption (PKCS#1 v1.5): refused', issuer: 'rsaPss', alg: () => ({ oid: OID.sha256WithRSA, params: Buffer.from([5, 0]) }), signing: pss(32), code: 'signature-algorithm' },
]; // prettier-ignore

describe('validateResponse binds the signature algorithm to the signer key', () => {
  for (const { name, issuer: which, alg, signing, code } of algorithmCases) {
    it(name, async () => {
      const issuer = issuers[which];
      const tbs = await tbsFor(issuer.cert, issuer.cert);
      const verdict = verdictOf(assemble(tbs, alg(), signing(tbs, issuer.key)), issuer.cert);
      expect(verdict.code, verdict.errors.join('; ')).toBe(code);
      expect(verdict.valid).toBe(code === undefined);
      expect(verdict.signature.signer).toBe('issuer');
      expect(verdict.signature.valid).toBe(code === undefined);
      if (code) expect(verdict.errors[0]).toMatch(/^signature/);
    });
  }

  it('a tampered signature does not verify: signature', async () => {
    const { cert, key } = issuers.rsa;
    const tbs = await tbsFor(cert, cert);
    const signature = pkcs1Sha256(tbs, key);
    signature[10]! ^= 1;
    const verdict = verdictOf(assemble(tbs, { oid: OID.sha256WithRSA }, signature), cert);
    expect(verdict.codes).toEqual(['signature']);
    expect(verdict.errors).toEqual(['signature does not verify with the issuer key']);
  });

  it('an issuer key node cannot decode (RSAES-OAEP SPKI) is a signature problem, not an exception', async () => {
    const { cert, key } = issuers.rsa;
    // rsaEncryption (…1.1.1) in the SubjectPublicKeyInfo becomes RSAES-OAEP (…1.1.7).
    const rsaEncryption = Buffer.from('06092a864886f70d010101', 'hex');
    const at = cert.der.indexOf(rsaEncryption);
    const der = Buffer.from(cert.der);
    der[at + rsaEncryption.length - 1] = 0x07;
    const oaep = new Certificate(der);
    expect(() => oaep.publicKey).toThrow();
    const tbs = await tbsFor(oaep, oaep);
    const verdict = verdictOf(assemble(tbs, { oid: OID.sha256WithRSA }, pkcs1Sha256(tbs, key)), oaep);
    expect(verdict.codes).toEqual(['signature']);
    expect(verdict.errors[0]).toMatch(/public key does not decode/);
  });
});

// --- producedAt, nonce ---------------------------------------------------------------------------------

describe('validateResponse time and nonce checks', () => {
  const signed = async (extra: Partial<Parameters<typeof buildOcspResponse>[0]>) => {
    const { cert, key } = issuers.rsa;
    const tbs = await tbsFor(cert, cert, extra);
    return assemble(tbs, { oid: OID.sha256WithRSA }, pkcs1Sha256(tbs, key));
  };

  it('producedAt 10 min in the future (beyond the 5 min skew): produced-in-future', async () => {
    const verdict = verdictOf(
      await signed({ producedAt: new Date(NOW.getTime() + 10 * MINUTE) }),
      issuers.rsa.cert,
    );
    expect(verdict.codes).toEqual(['produced-in-future']);
    expect(verdict.errors[0]).toMatch(/producedAt .* is in the future/);
  });

  it('producedAt 4 min in the future (within the skew): valid', async () => {
    const verdict = verdictOf(
      await signed({ producedAt: new Date(NOW.getTime() + 4 * MINUTE) }),
      issuers.rsa.cert,
    );
    expect(verdict.errors).toEqual([]);
  });

  it('nextUpdate earlier than thisUpdate (both inside the window): next-update-before-this-update', async () => {
    const verdict = verdictOf(
      await signed({
        producedAt: NOW,
        thisUpdate: new Date(NOW.getTime() + 4 * MINUTE),
        nextUpdate: new Date(NOW.getTime() + 2 * MINUTE),
      }),
      issuers.rsa.cert,
    );
    expect(verdict.codes).toEqual(['next-update-before-this-update']);
    expect(verdict.errors[0]).toMatch(/^nextUpdate .* is earlier than thisUpdate /);
  });

  const nonce = Buffer.alloc(16, 0xab);
  const longNonce = Buffer.alloc(200, 0xcd);
  const echo = (value: Buffer) => ({ extensions: [{ oid: NONCE_OID, value }] });
  const nonceCases: Array<{ name: string; sent: Buffer; echoed: Buffer; code: VerdictCode | undefined }> = [
    { name: 'echoed as OCTET STRING (RFC 8954): valid', sent: nonce, echoed: Buffer.concat([Buffer.from([4, 16]), nonce]), code: undefined },
    { name: 'echoed raw (older responders): valid', sent: nonce, echoed: nonce, code: undefined },
    { name: 'an OCTET STRING whose length says 17 over 16 bytes: nonce-mismatch', sent: nonce, echoed: Buffer.concat([Buffer.from([4, 17]), nonce]), code: 'nonce-mismatch' },
    { name: 'a 200-byte nonce in long-form length: valid', sent: longNonce, echoed: Buffer.concat([Buffer.from([4, 0x81, 200]), longNonce]), code: undefined },
    { name: 'a 200-byte nonce whose long-form length says 201: nonce-mismatch', sent: longNonce, echoed: Buffer.concat([Buffer.from([4, 0x81, 201]), longNonce]), code: 'nonce-mismatch' },
    { name: 'another nonce: nonce-mismatch', sent: nonce, echoed: Buffer.concat([Buffer.from([4, 16]), Buffer.alloc(16, 0xac)]), code: 'nonce-mismatch' },
  ]; // prettier-ignore
  for (const { name, sent, echoed, code } of nonceCases) {
    it(`nonce ${name}`, async () => {
      const verdict = verdictOf(await signed(echo(echoed)), issuers.rsa.cert, NOW, sent);
      expect(verdict.code, verdict.errors.join('; ')).toBe(code);
    });
  }
});

// --- critical extensions in a delegated responder certificate ------------------------------------------

describe('validateResponse on critical extensions of a delegated responder certificate', () => {
  const base = [
    'basicConstraints = critical, CA:FALSE',
    'extendedKeyUsage = OCSPSigning',
    'subjectKeyIdentifier = hash',
  ];
  const cases: Array<{ name: string; ext: string[]; code: VerdictCode | undefined; error?: RegExp }> = [
    { name: 'critical keyUsage digitalSignature and critical id-pkix-ocsp-nocheck: valid', ext: [...base, 'keyUsage = critical, digitalSignature', '1.3.6.1.5.5.7.48.1.5 = critical, ASN1:NULL'], code: undefined },
    { name: 'an unknown critical extension: signer-not-authorised', ext: [...base, '1.2.3.4.5 = critical, ASN1:NULL'], code: 'signer-not-authorised', error: /unknown critical extension 1\.2\.3\.4\.5/ },
    { name: 'the same extension not critical: valid', ext: [...base, '1.2.3.4.5 = ASN1:NULL'], code: undefined },
    { name: 'keyUsage without digitalSignature: signer-not-authorised', ext: [...base, 'keyUsage = critical, keyEncipherment'], code: 'signer-not-authorised', error: /digitalSignature/ },
  ]; // prettier-ignore
  for (const [index, { name, ext, code, error }] of cases.entries()) {
    it(
      name,
      async () => {
        const signer = await responder(`responder${index}`, ext);
        // Produced after the responder certificate was made (its notBefore is its creation second).
        const tbs = await tbsFor(issuers.rsa.cert, signer.cert, { producedAt: new Date(Date.now() + 1000) });
        const der = assemble(tbs, { oid: OID.sha256WithRSA }, pkcs1Sha256(tbs, signer.key), [signer.cert]);
        const verdict = verdictOf(der, issuers.rsa.cert);
        expect(verdict.codes, verdict.errors.join('; ')).toEqual(code ? [code] : []);
        if (error) expect(verdict.errors.join('\n')).toMatch(error);
        else expect(verdict.signature).toEqual({ valid: true, signer: 'delegated' });
      },
      60_000,
    );
  }
});

// --- DER times -----------------------------------------------------------------------------------------

describe('times must be DER: GeneralizedTime YYYYMMDDHHMMSSZ, UTCTime YYMMDDHHMMSSZ', () => {
  /** A response whose producedAt characters are `text` (the tbs re-wrapped, lengths fixed). */
  const withProducedAt = async (text: string) => {
    const { cert, key } = issuers.rsa;
    const producedAt = new Date(NOW.getTime() - MINUTE);
    const tbs = await tbsFor(cert, cert, { producedAt });
    const original = Buffer.concat([Buffer.from([0x18, 15]), Buffer.from(generalized(producedAt), 'latin1')]);
    const body = contentOf(tbs);
    const at = body.indexOf(original);
    expect(at).toBeGreaterThan(-1);
    const replaced = Buffer.concat([Buffer.from([0x18, text.length]), Buffer.from(text, 'latin1')]);
    const newTbs = tlv(0x30, body.subarray(0, at), replaced, body.subarray(at + original.length));
    return assemble(newTbs, { oid: OID.sha256WithRSA }, pkcs1Sha256(newTbs, key));
  };
  const generalized = (d: Date) =>
    d
      .toISOString()
      .replace(/[-:T]/g, '')
      .replace(/\.\d+Z$/, 'Z');

  it('the DER form parses and validates', async () => {
    const stamp = generalized(new Date(NOW.getTime() - MINUTE));
    const verdict = verdictOf(await withProducedAt(stamp), issuers.rsa.cert);
    expect(verdict.errors).toEqual([]);
  });

  const refused = [
    { name: 'no Z (asn1js reads it as local time, and the weekday as the day)', text: '20261130163559' },
    { name: 'an hour offset', text: '2026113016+0100' },
    { name: 'fractional seconds', text: '20261130163559.5Z' },
    { name: 'no seconds', text: '202611301635Z' },
    { name: 'month 13', text: '20261330163559Z' },
    { name: 'February 30', text: '20260230163559Z' },
    { name: 'hour 24', text: '20261130243559Z' },
  ];
  for (const { name, text } of refused) {
    it(`producedAt with ${name} is a parse error naming the field`, async () => {
      const der = await withProducedAt(text);
      expect(() => parseOcspResponse(der)).toThrow(ResponseParseError);
      expect(() => parseOcspResponse(der)).toThrow(/producedAt|a time value/);
    });
  }

  it('a certificate whose notBefore UTCTime lacks its Z is refused with CertificateParseError', () => {
    const der = Buffer.from(issuers.rsa.cert.der);
    const at = der.indexOf(Buffer.from([0x17, 13]));
    der[at + 2 + 12] = 0x30; // 'Z' -> '0'
    expect(() => parseCertificates(der)).toThrow(CertificateParseError);
    expect(() => parseCertificates(der)).toThrow(/notBefore .* YYMMDDHHMMSSZ/);
  });

  it('a certificate whose notAfter is February 30 is refused', () => {
    const der = Buffer.from(issuers.rsa.cert.der);
    const first = der.indexOf(Buffer.from([0x17, 13]));
    const at = der.indexOf(Buffer.from([0x17, 13]), first + 15);
    Buffer.from('0230', 'latin1').copy(der, at + 4); // MMDD
    expect(() => parseCertificates(der)).toThrow(/notAfter .* YYMMDDHHMMSSZ/);
  });
});

describe('parseOcspResponse: DER or nothing', () => {
  it('a BasicOCSPResponse in BER (indefinite length) is refused as not DER, naming the byte', async () => {
    const der = await readFile(
      path.join(import.meta.dirname, 'fixtures', 'ocsp-vectors', 'aws-lc-s2n', 'ocsp_response.der'),
    );
    const outer = asn1js.fromBER(der, { parseEmbedded: false }).result as asn1js.Sequence;
    const responseBytes = (outer.valueBlock.value[1] as asn1js.Constructed).valueBlock
      .value[0] as asn1js.Sequence;
    const basicDer = asBuffer(
      (responseBytes.valueBlock.value[1] as asn1js.OctetString).valueBlock.valueHexView,
    );
    const ber = Buffer.concat([Buffer.from([0x30, 0x80]), contentOf(basicDer), Buffer.from([0, 0])]);
    const rebuilt = tlv(
      0x30,
      Buffer.from([0x0a, 0x01, 0x00]),
      tlv(0xa0, tlv(0x30, oid(BASIC_RESPONSE_OID), tlv(0x04, ber))),
    );
    expect(parseOcspResponse(der).basic?.certs).toHaveLength(1);
    expect(() => parseOcspResponse(rebuilt)).toThrow(
      expect.objectContaining({
        verdictCode: 'not-der',
        message: expect.stringMatching(/^not DER: .*length at byte \d+ is indefinite \(BER, not DER\)$/),
      }),
    );
  });
});
