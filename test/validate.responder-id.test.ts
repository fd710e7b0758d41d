/**
 * Who signed, found as OpenSSL finds it. A responderID byName that names the signer with other
 * string types than its certificate uses (PrintableString where the certificate has UTF8String):
 * the same name (RFC 5280 §7.1, X509_NAME_cmp), so the responder is found; a different name, a
 * multi-valued RDN or a NumericString is refused. Of several embedded certificates that the
 * responderID designates, only the first is tried. A delegated responder certificate with a
 * critical subjectKeyIdentifier, authorityKeyIdentifier or authorityInfoAccess is refused.
 * Responses are built and signed with pkijs; certificates with `openssl ca`.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { asBuffer } from '../lambda/core/der.js';
import { parseCertificates, type Certificate } from '../lambda/core/certificate.js';
import { certIdFor } from '../lambda/core/ocsp-request.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { validateResponse } from '../lambda/core/validate.js';
import { buildOcspResponse, loadSigner, type ResponseSigner } from './helpers/fake-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';

let pki: TestPki;
let issuer: ResponseSigner;
let delegated: ResponseSigner;
let leaf: Certificate;

beforeAll(async () => {
  pki = await makeTestPki();
  [issuer, delegated] = await Promise.all([
    loadSigner(pki.intermediate.cert, pki.intermediate.key),
    loadSigner(pki.signer.cert, pki.signer.key),
  ]);
  leaf = (await loadSigner(pki.leaves.good.cert, pki.leaves.good.key)).cert;
});
afterAll(async () => {
  await pki?.cleanup();
});

/** A Name from its RDNs, each a list of attributes (pkijs would put them all in one SET). */
function nameOf(rdns: pkijs.AttributeTypeAndValue[][]): Buffer {
  const body = Buffer.concat(
    rdns.map((set) => asBuffer(new asn1js.Set({ value: set.map((tv) => tv.toSchema()) }).toBER())),
  );
  return Buffer.concat([Buffer.from([0x30, ...(body.length < 128 ? [] : [0x81]), body.length]), body]);
}
const rdn = (type: string, value: pkijs.AttributeValueType) =>
  new pkijs.AttributeTypeAndValue({ type, value });

/** The subject of `cert`, one RDN per attribute, every value re-encoded as PrintableString (or with CN replaced). */
function reencodedName(cert: Certificate, commonName?: string): Buffer {
  return nameOf(
    cert.asn.subject.typesAndValues.map((tv) => [
      rdn(
        tv.type,
        new asn1js.PrintableString({
          value: tv.type === '2.5.4.3' && commonName ? commonName : String(tv.value.valueBlock.value),
        }),
      ),
    ]),
  );
}

async function verdictFor(signer: ResponseSigner, responderName?: Buffer, certs?: Certificate[]) {
  const now = new Date();
  const der = await buildOcspResponse({
    certId: certIdFor(leaf, issuer.cert),
    thisUpdate: new Date(now.getTime() - 60_000),
    nextUpdate: new Date(now.getTime() + 3_600_000),
    signer,
    responderName,
    certs,
  });
  return validateResponse(parseOcspResponse(der), { cert: leaf, issuer: issuer.cert, now });
}

describe('responderID byName in another string encoding', () => {
  for (const [label, signer] of [
    ['the issuer (CA-signed)', () => issuer],
    ['a delegated responder', () => delegated],
  ] as const) {
    it(`finds ${label} named with PrintableString instead of its certificate's UTF8String`, async () => {
      const name = reencodedName(signer().cert);
      expect(name.equals(signer().cert.subjectDer)).toBe(false); // the bytes really differ
      const verdict = await verdictFor(signer(), name);
      expect(verdict.errors).toEqual([]);
      expect(verdict.valid).toBe(true);
      expect(verdict.signature.signer).toBe(label.startsWith('the issuer') ? 'issuer' : 'delegated');
    });
  }

  it('still refuses a responderID naming someone else', async () => {
    const verdict = await verdictFor(delegated, reencodedName(delegated.cert, 'Somebody Else'));
    expect(verdict.valid).toBe(false);
    expect(verdict.errors).toContain(
      'responderID designates neither the issuer nor a certificate in the response',
    );
  });
});

describe('Certificate.issued: names compared as names, not bytes', () => {
  it('accepts its subject re-encoded with other string types, refuses another name', () => {
    const ca = issuer.cert;
    expect(ca.issued(leaf)).toBe(true);
    const sameNameOtherBytes = { issuerDer: reencodedName(ca), issuer: leaf.issuer } as Certificate;
    expect(sameNameOtherBytes.issuerDer.equals(ca.subjectDer)).toBe(false);
    expect(ca.issued(sameNameOtherBytes)).toBe(true);
    const other = { issuerDer: reencodedName(ca, 'Other CA'), issuer: 'CN=Other CA' } as Certificate;
    expect(ca.issued(other)).toBe(false);
  });
});

describe('responderID byName: what OpenSSL does not take for the same name', () => {
  const O = '2.5.4.10';
  const CN = '2.5.4.3';
  const values = () => {
    const tv = delegated.cert.asn.subject.typesAndValues;
    return { o: String(tv[0]!.value.valueBlock.value), cn: String(tv[1]!.value.valueBlock.value) };
  };

  it('two RDNs re-encoded are found; the same attributes as one multi-valued RDN are not', async () => {
    const { o, cn } = values();
    const two = nameOf([
      [rdn(O, new asn1js.PrintableString({ value: o }))],
      [rdn(CN, new asn1js.PrintableString({ value: cn }))],
    ]);
    expect((await verdictFor(delegated, two)).valid).toBe(true);
    const multi = nameOf([
      [rdn(O, new asn1js.PrintableString({ value: o })), rdn(CN, new asn1js.PrintableString({ value: cn }))],
    ]);
    const verdict = await verdictFor(delegated, multi);
    expect(verdict.code).toBe('responder-id');
  });

  it('a NumericString (not compared case-insensitively by OpenSSL) is not the PrintableString name', async () => {
    const { o, cn } = values();
    const numeric = nameOf([
      [rdn(O, new asn1js.NumericString({ value: o }))],
      [rdn(CN, new asn1js.PrintableString({ value: cn }))],
    ]);
    expect((await verdictFor(delegated, numeric)).code).toBe('responder-id');
  });
});

describe('delegated responder certificates as OpenSSL checks them', () => {
  /** The signer's key and subject certified again by the intermediate with extensions `ext`. */
  async function signerWith(name: string, ext: string): Promise<Certificate> {
    const extFile = path.join(pki.dir, `${name}.ext`);
    const out = path.join(pki.dir, `${name}.pem`);
    await writeFile(extFile, `[ ext ]\n${ext}\n`);
    await openssl(['ca', '-batch', '-notext', '-config', pki.config, '-name', 'int_ca', '-extfile', extFile,
      '-extensions', 'ext', '-days', '30', '-in', path.join(pki.dir, 'signer.csr'), '-out', out]); // prettier-ignore
    return parseCertificates(await readFile(out))[0]!;
  }
  const base = 'keyUsage = critical, digitalSignature\nextendedKeyUsage = OCSPSigning';

  for (const [label, ext] of [
    ['subjectKeyIdentifier', 'subjectKeyIdentifier = critical, hash'],
    ['authorityKeyIdentifier', 'authorityKeyIdentifier = critical, keyid:always'],
    ['authorityInfoAccess', 'authorityInfoAccess = critical, caIssuers;URI:http://ca.test/i.der'],
  ] as const) {
    it(`refuses a critical ${label} (RFC 5280 forbids it; OpenSSL does not handle it as critical)`, async () => {
      const cert = await signerWith(`critical-${label}`, `${base}\n${ext}`);
      const verdict = await verdictFor({ ...delegated, cert }, undefined, [cert]);
      expect(verdict.code).toBe('signer-not-authorised');
      expect(verdict.errors.join('\n')).toContain(`marks ${label} critical, which RFC 5280 forbids`);
    }, 60_000);
  }

  it('of two embedded certificates for the same name and key, only the first is tried (OpenSSL takes the first)', async () => {
    const noEku = await signerWith('same-key-no-eku', 'keyUsage = critical, digitalSignature');
    const good = delegated.cert;
    expect(noEku.subjectDer.equals(good.subjectDer) && noEku.publicKeyBits.equals(good.publicKeyBits)).toBe(
      true,
    );
    const firstBad = await verdictFor(delegated, undefined, [noEku, good]);
    expect(firstBad.valid).toBe(false);
    expect(firstBad.errors).toContain('delegated responder certificate lacks id-kp-OCSPSigning');
    const firstGood = await verdictFor(delegated, undefined, [good, noEku]);
    expect(firstGood.valid).toBe(true);
    expect(firstGood.responderCert).toBe(good);
  }, 60_000);
});
