import type { Certificate } from './certificate.js';
import type { AlgorithmId } from './certificate-fields.js';
import type { HashName } from './der.js';

// An OCSP response as parseOcspResponse (ocsp-response.ts) returns it.

export type ResponseStatus =
  | 'successful'
  | 'malformedRequest'
  | 'internalError'
  | 'tryLater'
  | 'sigRequired'
  | 'unauthorized'
  | `UNKNOWN(${number})`;

export type CertStatus = 'good' | 'revoked' | 'unknown';

export interface ExtensionInfo {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING's payload. */
  value: Buffer;
}

export interface SingleResponseInfo {
  certId: {
    hashOid: string;
    hash: HashName | undefined;
    issuerNameHash: Buffer;
    issuerKeyHash: Buffer;
    serial: Buffer;
  };
  certStatus: CertStatus;
  revocationTime: Date | undefined;
  revocationReason: string | undefined;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  extensions: ExtensionInfo[];
}

export type ResponderId = { byName: Buffer; name: string } | { byKey: Buffer };

export interface BasicResponse {
  tbsDer: Buffer;
  responderId: ResponderId;
  producedAt: Date;
  responses: SingleResponseInfo[];
  extensions: ExtensionInfo[];
  signatureAlgorithm: AlgorithmId;
  signature: Buffer;
  /** Certificates embedded in the response (a delegated responder's certificate, usually). */
  certs: Certificate[];
}

/** An OCSPResponse parsed once; validation and reporting read this, never the DER again. */
export interface ParsedResponse {
  der: Buffer;
  responseStatus: ResponseStatus;
  /** The responseType OID, when responseBytes is present. */
  responseType: string | undefined;
  /** Present for a successful id-pkix-ocsp-basic response. */
  basic: BasicResponse | undefined;
}
