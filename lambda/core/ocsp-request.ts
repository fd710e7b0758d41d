import { randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import type { Certificate } from './certificate.js';
import { asBuffer, derElement, digest, HASH_OIDS, type HashName } from './der.js';

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

interface OcspRequestOptions {
  /** Nonce bytes to send (RFC 8954 says 1–32 octets); off by default, as most CAs pre-sign. */
  nonce?: Buffer;
}

/**
 * A DER OCSPRequest with one CertID and no signature (RFC 6960 §4.1.1), encoded directly: it is
 * built once per certificate per run, and the pkijs object graph it replaced cost more than the
 * request's hashes. test/ocsp-request.test.ts checks it byte for byte against pkijs's encoding.
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest SEQUENCE { requestList SEQUENCE OF Request
 *     { reqCert CertID }, requestExtensions [2] EXPLICIT Extensions OPTIONAL } }
 */
export function buildOcspRequest(id: CertId, options: OcspRequestOptions = {}): Buffer {
  const certId = derElement(
    0x30,
    derElement(0x30, oidDer(HASH_OIDS[id.hash]), Buffer.from([0x05, 0x00])),
    derElement(0x04, id.issuerNameHash),
    derElement(0x04, id.issuerKeyHash),
    derElement(0x02, id.serial),
  );
  const requestList = derElement(0x30, derElement(0x30, certId));
  const extensions = options.nonce
    ? [
        derElement(
          0xa2,
          derElement(
            0x30,
            derElement(0x30, oidDer(NONCE_OID), derElement(0x04, derElement(0x04, options.nonce))),
          ),
        ),
      ]
    : [];
  return derElement(0x30, derElement(0x30, requestList, ...extensions));
}

/** The DER of the few OBJECT IDENTIFIERs a request carries, encoded once by asn1js. */
const OID_DER: Readonly<Record<string, Buffer>> = Object.fromEntries(
  [...Object.values(HASH_OIDS), NONCE_OID].map((oid) => [
    oid,
    asBuffer(new asn1js.ObjectIdentifier({ value: oid }).toBER()),
  ]),
);
const oidDer = (oid: string): Buffer => OID_DER[oid]!;

export function newNonce(): Buffer {
  return randomBytes(16);
}
