/**
 * buildOcspRequest encodes the DER itself; these cases check it byte for byte against pkijs's
 * encoding of the same request (the implementation it replaced), for every CertID hash, serials
 * that need a leading zero octet or are long, and a nonce. test/ports.test.ts has openssl read it.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { describe, expect, it } from 'vitest';
import { asBuffer, digest, HASH_OIDS, type HashName } from '../lambda/core/der.js';
import { buildOcspRequest, NONCE_OID, type CertId } from '../lambda/core/ocsp-request.js';

/** The request as pkijs encodes it. */
function pkijsRequest(id: CertId, nonce?: Buffer): Buffer {
  const certID = new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: HASH_OIDS[id.hash],
      algorithmParams: new asn1js.Null(),
    }),
    issuerNameHash: new asn1js.OctetString({ valueHex: id.issuerNameHash }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: id.issuerKeyHash }),
    serialNumber: new asn1js.Integer({ valueHex: id.serial }),
  });
  const request = new pkijs.OCSPRequest({
    tbsRequest: new pkijs.TBSRequest({ requestList: [new pkijs.Request({ reqCert: certID })] }),
  });
  if (nonce) {
    request.tbsRequest.requestExtensions = [
      new pkijs.Extension({
        extnID: NONCE_OID,
        critical: false,
        extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(),
      }),
    ];
  }
  return asBuffer(request.toSchema(true).toBER());
}

const idFor = (hash: HashName, serial: Buffer): CertId => ({
  hash,
  issuerNameHash: digest(hash, Buffer.from('issuer name')),
  issuerKeyHash: digest(hash, Buffer.from('issuer key')),
  serial,
});

describe('buildOcspRequest', () => {
  const serials = {
    'a one-octet serial': Buffer.from([0x05]),
    'a serial with a leading zero octet': Buffer.from('00a1b2c3d4', 'hex'),
    'a 20-octet serial': Buffer.from('7f'.padEnd(40, '3c'), 'hex'),
  };
  for (const hash of Object.keys(HASH_OIDS) as HashName[]) {
    for (const [name, serial] of Object.entries(serials)) {
      it(`should encode ${hash} with ${name} as pkijs does`, () => {
        expect(buildOcspRequest(idFor(hash, serial)).toString('hex')).toBe(
          pkijsRequest(idFor(hash, serial)).toString('hex'),
        );
      });
    }
  }

  it('should encode a nonce extension as pkijs does', () => {
    const nonce = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const id = idFor('sha1', serials['a serial with a leading zero octet']);
    expect(buildOcspRequest(id, { nonce }).toString('hex')).toBe(pkijsRequest(id, nonce).toString('hex'));
  });
});
