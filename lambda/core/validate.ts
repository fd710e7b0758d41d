import { Certificate, OCSP_SIGNING_EKU } from './certificate.js';
import { digest, type HashName } from './der.js';
import { NONCE_OID } from './ocsp-request.js';
import type { CertStatus, ParsedResponse, ResponseStatus, SingleResponseInfo } from './ocsp-response.js';
import { UnsupportedAlgorithmError, verifySignature } from './signature.js';

/** Default allowance for clocks that run behind the responder's (RFC 5019 §4 suggests some slack). */
export const DEFAULT_SKEW_MS = 5 * 60_000;

/** Extensions we understand, so they may be critical. Any other critical extension is refused. */
const KNOWN_RESPONSE_EXTENSIONS = new Set([
  NONCE_OID,
  '1.3.6.1.5.5.7.48.1.9', // id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8)
]);
const KNOWN_SINGLE_EXTENSIONS = new Set([
  '1.3.6.1.5.5.7.48.1.3', // id-pkix-ocsp-crl
  '1.3.6.1.5.5.7.48.1.6', // id-pkix-ocsp-archive-cutoff
  '2.5.29.21', // CRL reason
  '2.5.29.24', // invalidity date
]);

export interface ValidationInput {
  /** The certificate the staple is for. Without it, any SingleResponse for the issuer is taken. */
  cert?: Certificate;
  /** The certificate's issuer. Without it, the signer cannot be authorised and the verdict is invalid. */
  issuer?: Certificate;
  /** The instant to validate at (the injected clock). */
  now: Date;
  skewMs?: number;
  /** The nonce sent, if any: checked only when the responder echoes one. */
  nonce?: Buffer;
  /** When set, the matching SingleResponse must use this CertID hash. */
  hash?: HashName;
  cache?: ValidationCache;
}

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
}

/**
 * Memoises work that repeats across responses of one run: whether a delegated responder
 * certificate was issued by an issuer (one check per responder cert, not per response).
 */
export class ValidationCache {
  private readonly issuedBy = new Map<string, boolean>();

  delegatedSignatureOk(responder: Certificate, issuer: Certificate): boolean {
    const key = `${responder.sha256}:${issuer.sha256}`;
    let ok = this.issuedBy.get(key);
    if (ok === undefined) {
      ok = isSignedBy(responder, issuer);
      this.issuedBy.set(key, ok);
    }
    return ok;
  }
}

const sharedCache = new ValidationCache();

/**
 * Validates a parsed OCSP response for `cert` as RFC 6960 §3.2 and §4.2.2.2 and RFC 5019 ask:
 * successful status; a basic response; a SingleResponse whose CertID matches ours; a valid
 * signature by the issuer, or by a delegated responder certificate embedded in the response that
 * the issuer signed, that carries id-kp-OCSPSigning and that was valid at producedAt; a
 * responderID that designates the signer; thisUpdate not in the future (beyond the skew);
 * nextUpdate present and in the future; a matching nonce when one was sent and echoed; no
 * critical extension we do not understand.
 */
export function validateResponse(parsed: ParsedResponse, input: ValidationInput): Verdict {
  const verdict = invalidVerdict(parsed.responseStatus, []);
  const errors = verdict.errors;
  if (parsed.responseStatus !== 'successful') {
    errors.push(`responseStatus ${parsed.responseStatus}`);
    return verdict;
  }
  const basic = parsed.basic;
  if (!basic) {
    errors.push(`unsupported responseType ${parsed.responseType ?? '(none)'}`);
    return verdict;
  }
  verdict.producedAt = basic.producedAt;
  const { issuer, cert, now } = input;
  const skew = input.skewMs ?? DEFAULT_SKEW_MS;

  // CertID
  if (issuer && cert && !issuer.issued(cert)) {
    errors.push(
      `issuer certificate (${issuer.subject}) is not named as the certificate's issuer (${cert.issuer})`,
    );
  }
  const single = findSingleResponse(basic.responses, cert, issuer, input.hash);
  if (single) {
    verdict.certStatus = single.certStatus;
    verdict.revocationTime = single.revocationTime;
    verdict.revocationReason = single.revocationReason;
    verdict.thisUpdate = single.thisUpdate;
    verdict.nextUpdate = single.nextUpdate;
  } else if (issuer) {
    errors.push(
      cert
        ? `no SingleResponse matches the certificate's CertID (serial ${cert.serialHex})`
        : "no SingleResponse matches the issuer's name and key hashes",
    );
  } else {
    errors.push('issuer certificate not given: cannot match the CertID');
  }

  // Signature and signer authorisation
  if (!issuer) {
    errors.push('issuer certificate not given: cannot authorise the signer');
  } else {
    checkSigner(parsed, issuer, input.cache ?? sharedCache, verdict, errors);
  }

  // Time
  if (single) {
    if (single.thisUpdate.getTime() > now.getTime() + skew) {
      errors.push(`thisUpdate ${single.thisUpdate.toISOString()} is in the future`);
    }
    if (!single.nextUpdate) {
      errors.push('nextUpdate is absent (the response carries no expiry, so it cannot be stapled safely)');
    } else if (single.nextUpdate.getTime() <= now.getTime()) {
      errors.push(`expired: nextUpdate ${single.nextUpdate.toISOString()} has passed`);
    }
    for (const ext of single.extensions) {
      if (ext.critical && !KNOWN_SINGLE_EXTENSIONS.has(ext.oid)) {
        errors.push(`unknown critical singleExtension ${ext.oid}`);
      }
    }
  }

  // Response extensions
  for (const ext of basic.extensions) {
    if (ext.critical && !KNOWN_RESPONSE_EXTENSIONS.has(ext.oid)) {
      errors.push(`unknown critical responseExtension ${ext.oid}`);
    }
  }
  if (input.nonce) {
    const echoed = basic.extensions.find((ext) => ext.oid === NONCE_OID);
    if (echoed && !nonceMatches(echoed.value, input.nonce)) errors.push('nonce does not match the request');
  }

  verdict.valid = errors.length === 0;
  return verdict;
}

function findSingleResponse(
  responses: SingleResponseInfo[],
  cert: Certificate | undefined,
  issuer: Certificate | undefined,
  hash: HashName | undefined,
): SingleResponseInfo | undefined {
  if (!issuer) {
    // Without the issuer we can still report on the certificate by serial, never validate.
    return cert ? responses.find((r) => r.certId.serial.equals(cert.serial)) : responses[0];
  }
  return responses.find((r) => {
    const alg = r.certId.hash;
    if (!alg || (hash && alg !== hash)) return false;
    const nameHash = digest(alg, cert ? cert.issuerDer : issuer.subjectDer);
    return (
      r.certId.issuerNameHash.equals(nameHash) &&
      r.certId.issuerKeyHash.equals(issuer.keyHash(alg)) &&
      (!cert || r.certId.serial.equals(cert.serial))
    );
  });
}

function checkSigner(
  parsed: ParsedResponse,
  issuer: Certificate,
  cache: ValidationCache,
  verdict: Verdict,
  errors: string[],
): void {
  const basic = parsed.basic!;
  const rid = basic.responderId;
  // byName: the DER as encoded, or the same attributes and values in another string encoding
  // (PrintableString vs UTF8String), which some responders use; the signature check decides.
  const designates = (c: Certificate) =>
    'byKey' in rid
      ? c.keyHash('sha1').equals(rid.byKey)
      : c.subjectDer.equals(rid.byName) || c.subject.toLowerCase() === rid.name.toLowerCase();
  const verifies = (c: Certificate) => {
    try {
      return verifySignature(basic.signatureAlgorithm, c.publicKey, basic.tbsDer, basic.signature);
    } catch (err) {
      if (err instanceof UnsupportedAlgorithmError) return false;
      throw err;
    }
  };

  if (designates(issuer)) {
    verdict.signature.signer = 'issuer';
    verdict.signature.valid = verifies(issuer);
    if (!verdict.signature.valid) errors.push('signature does not verify with the issuer key');
    return;
  }
  const candidates = basic.certs.filter(designates);
  if (candidates.length === 0) {
    errors.push('responderID designates neither the issuer nor a certificate in the response');
    return;
  }
  // Try every designated certificate; report the problems of the first when none qualifies.
  let firstProblems: string[] | undefined;
  for (const responder of candidates) {
    const problems: string[] = [];
    const sigOk = verifies(responder);
    if (!sigOk) problems.push('signature does not verify with the delegated responder key');
    if (!issuer.issued(responder) || !cache.delegatedSignatureOk(responder, issuer)) {
      problems.push(`delegated responder certificate (${responder.subject}) is not issued by the issuer`);
    }
    if (!responder.extKeyUsage?.includes(OCSP_SIGNING_EKU)) {
      problems.push('delegated responder certificate lacks id-kp-OCSPSigning');
    }
    if (!responder.isValidAt(basic.producedAt)) {
      problems.push(
        `delegated responder certificate is not valid at producedAt (valid ${responder.notBefore.toISOString()} to ${responder.notAfter.toISOString()})`,
      );
    }
    if (problems.length === 0) {
      verdict.signature = { valid: true, signer: 'delegated' };
      verdict.responderCert = responder;
      return;
    }
    if (!firstProblems) {
      firstProblems = problems;
      verdict.signature = { valid: sigOk, signer: 'unknown' };
    }
  }
  errors.push(...(firstProblems ?? []));
}

/** A verdict that knows nothing yet (or never will: a staple that does not even parse). */
export function invalidVerdict(responseStatus: Verdict['responseStatus'], errors: string[]): Verdict {
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
  };
}

/** Whether `cert`'s signature verifies under `issuer`'s key. */
export function isSignedBy(cert: Certificate, issuer: Certificate): boolean {
  try {
    return verifySignature(cert.signatureAlgorithm, issuer.publicKey, cert.tbsDer, cert.signature);
  } catch (err) {
    if (err instanceof UnsupportedAlgorithmError) return false;
    throw err;
  }
}

/** RFC 8954 says the nonce is an OCTET STRING inside extnValue; older responders echo the raw bytes. */
function nonceMatches(echoed: Buffer, sent: Buffer): boolean {
  if (echoed.equals(sent)) return true;
  return echoed.length === sent.length + 2 && echoed[0] === 0x04 && echoed.subarray(2).equals(sent);
}
