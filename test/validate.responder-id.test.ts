/**
 * A responderID byName that names the signer with other string types than its certificate uses
 * (PrintableString where the certificate has UTF8String): the same name, so the responder is
 * found; a different name is still refused. Responses are built and signed with pkijs.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asBuffer } from '../lambda/core/der.js';
import type { Certificate } from '../lambda/core/certificate.js';
import { certIdFor } from '../lambda/core/ocsp-request.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { validateResponse } from '../lambda/core/validate.js';
import { buildOcspResponse, loadSigner, type ResponseSigner } from './helpers/fake-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';

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

/** The subject of `cert` with every value re-encoded as PrintableString (or with CN replaced). */
function reencodedName(cert: Certificate, commonName?: string): Buffer {
  const name = cert.asn.subject;
  const copy = new pkijs.RelativeDistinguishedNames({
    typesAndValues: name.typesAndValues.map(
      (tv) =>
        new pkijs.AttributeTypeAndValue({
          type: tv.type,
          value: new asn1js.PrintableString({
            value: tv.type === '2.5.4.3' && commonName ? commonName : String(tv.value.valueBlock.value),
          }),
        }),
    ),
  });
  return asBuffer(copy.toSchema().toBER());
}

async function verdictFor(signer: ResponseSigner, responderName: Buffer) {
  const now = new Date();
  const der = await buildOcspResponse({
    certId: certIdFor(leaf, issuer.cert),
    thisUpdate: new Date(now.getTime() - 60_000),
    nextUpdate: new Date(now.getTime() + 3_600_000),
    signer,
    responderName,
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
