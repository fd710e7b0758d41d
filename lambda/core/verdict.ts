/**
 * A verdict: what one OCSP response is worth for one certificate at one instant, and the stable
 * codes of what makes it invalid.
 */
import type { Certificate } from './certificate.js';
import type { CertStatus, ResponseStatus } from './ocsp-response.js';

/**
 * Why a verdict is invalid: one stable code per failure class (docs/validation.md, "What valid means"), plus
 * `status:<responseStatus>` for a responder's error status (`status:tryLater`, …). `inspect
 * --json` prints the first as `code`; tests assert them.
 */
export const VERDICT_CODES = [
  'not-der', // the bytes are not canonical DER (BER lengths, padded INTEGERs, unused bits…): clients refuse them
  'parse', // the bytes are DER but not an OCSP response (a field missing, extra or of the wrong type)
  'fetch', // the response could not be fetched (set by the query, never by validateResponse)
  'unsupported-response-type', // a successful response that is not id-pkix-ocsp-basic
  'issuer-missing', // no issuer certificate given, so nothing can be authorised
  'issuer-mismatch', // the issuer certificate given is not the one that named and signed the certificate
  'certid-mismatch', // no SingleResponse is about this certificate
  'conflicting-responses', // SingleResponses for this certificate (under different hashes) disagree
  'certid-other-issuer', // a SingleResponse is about a certificate of another issuer (OpenSSL refuses the response)
  'responder-id', // the responderID designates neither the issuer nor a certificate in the response
  'signature', // the signature does not verify, or the signer's key does not decode
  'signature-algorithm', // the algorithm is unsupported, malformed, or not the signer key's kind
  'signer-not-authorised', // delegated signer: not issued by the issuer, no id-kp-OCSPSigning, no digitalSignature, unknown critical extension
  'signer-expired', // delegated signer expired at producedAt or now
  'signer-not-yet-valid', // delegated signer not yet valid at producedAt or now
  'produced-in-future', // producedAt is in the future (beyond the skew)
  'not-yet-valid', // thisUpdate is in the future (beyond the skew)
  'no-next-update', // no nextUpdate: the response carries no expiry
  'next-update-before-this-update', // nextUpdate earlier than thisUpdate (OpenSSL refuses it)
  'stale', // nextUpdate has passed
  'critical-extension', // a critical response or single extension we do not understand
  'nonce-mismatch', // the echoed nonce is not the one sent
] as const;
export type VerdictCode = (typeof VERDICT_CODES)[number] | `status:${Exclude<ResponseStatus, 'successful'>}`;

export type Signer = 'issuer' | 'delegated' | 'unknown';

/** What a staple is worth: a value, never an exception (like x509's verify() returning false). */
export interface Verdict {
  valid: boolean;
  /** The response's status, or `unparseable` when the bytes are not an OCSP response at all. */
  responseStatus: ResponseStatus | 'unparseable';
  certStatus: CertStatus | undefined;
  revocationTime: Date | undefined;
  revocationReason: string | undefined;
  thisUpdate: Date | undefined;
  nextUpdate: Date | undefined;
  producedAt: Date | undefined;
  signature: { valid: boolean; signer: Signer };
  /** The delegated responder certificate that signed, when there is one. */
  responderCert: Certificate | undefined;
  errors: string[];
  /** The first failure's class; undefined when valid. */
  code: VerdictCode | undefined;
  /** Every failure class found, in the order of `errors`, each once. */
  codes: VerdictCode[];
}

/** Records one failure: its class and its message in the user's terms. */
export type Fail = (code: VerdictCode, message: string) => void;

/** A verdict that knows nothing yet (or never will: a staple that does not even parse). */
export function invalidVerdict(
  responseStatus: Verdict['responseStatus'],
  errors: string[],
  code: VerdictCode = responseStatus === 'unparseable' || responseStatus === 'successful'
    ? 'parse'
    : `status:${responseStatus}`,
): Verdict {
  return {
    valid: false,
    responseStatus,
    certStatus: undefined,
    revocationTime: undefined,
    revocationReason: undefined,
    thisUpdate: undefined,
    nextUpdate: undefined,
    producedAt: undefined,
    signature: { valid: false, signer: 'unknown' },
    responderCert: undefined,
    errors,
    code,
    codes: [code],
  };
}
