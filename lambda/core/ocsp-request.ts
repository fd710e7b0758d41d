import { randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Certificate } from './certificate.js';
import { asBuffer, digest, HASH_OIDS, type HashName } from './der.js';

export const NONCE_OID = '1.3.6.1.5.5.7.48.1.2';

/** The CertID of RFC 6960 §4.1.1 as plain bytes. */
export interface CertId {
  hash: HashName;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** INTEGER content bytes of the serial number. */
  serial: Buffer;
}

/**
 * The CertID for `cert` issued by `issuer`: the name hash is over the DER of the certificate's
 * issuer field, the key hash over the issuer's subjectPublicKey bits (tag, length and the
 * unused-bits octet excluded).
 */
export function certIdFor(cert: Certificate, issuer: Certificate, hash: HashName = 'sha1'): CertId {
  return {
    hash,
    issuerNameHash: digest(hash, cert.issuerDer),
    issuerKeyHash: issuer.keyHash(hash),
    serial: cert.serial,
  };
}

export interface OcspRequestOptions {
  /** Nonce bytes to send (RFC 8954 says 1–32 octets); off by default, as most CAs pre-sign. */
  nonce?: Buffer;
}

/** A DER OCSPRequest with one CertID and no signature. */
export function buildOcspRequest(id: CertId, options: OcspRequestOptions = {}): Buffer {
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
  if (options.nonce) {
    request.tbsRequest.requestExtensions = [
      new pkijs.Extension({
        extnID: NONCE_OID,
        critical: false,
        extnValue: new asn1js.OctetString({ valueHex: options.nonce }).toBER(),
      }),
    ];
  }
  return asBuffer(request.toSchema(true).toBER());
}

export function newNonce(): Buffer {
  return randomBytes(16);
}
