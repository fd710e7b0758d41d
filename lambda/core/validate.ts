/**
 * validateResponse: whether one OCSP response is valid for one certificate at one instant, as
 * every TLS client would judge it (RFC 6960 §3.2, §4.2.2.2; RFC 5019), and judgeStaple, the one
 * parse-and-validate that renew, fetch and inspect call. Who signed is responder.ts's question;
 * what the answer looks like is verdict.ts's.
 */
import type { Certificate } from './certificate.js';
import { derElement, digest, serialHex, type HashName } from './der.js';
import { errorMessage, ResponseParseError } from './errors.js';
import { NONCE_OID } from './ocsp-request.js';
import {
  parseOcspResponse,
  type BasicResponse,
  type ParsedResponse,
  type SingleResponseInfo,
} from './ocsp-response.js';
import { checkSigner, issuerSigned, responseSignatureCalls, ValidationCache } from './responder.js';
import { KnownSignatures } from './signature.js';
import { invalidVerdict, type Fail, type Verdict, type VerdictCode } from './verdict.js';

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
  /**
   * Answers of this response's signature verifications already run in the thread pool (see
   * responseSignatureCalls); the checks here use them instead of verifying again.
   */
  signatures?: KnownSignatures;
}

const sharedCache = new ValidationCache();

/** A staple's bytes judged: the parsed response (undefined when it does not parse) and its verdict. */
interface Judgement {
  parsed: ParsedResponse | undefined;
  verdict: Verdict;
  /** Why the bytes are not an OCSP response, in the user's terms, when they are not. */
  parseError?: string;
}

/**
 * The one judgement of a staple's bytes that `renew`, `fetch` and `inspect` all make: parsed by
 * the strict DER parser (parseOcspResponse), then validateResponse. Bytes that do not parse are an
 * invalid verdict with the parser's code (`not-der` or `parse`), never an exception.
 */
export function judgeStaple(der: Uint8Array, input: ValidationInput): Judgement {
  const parsed = parseStaple(der);
  return 'verdict' in parsed ? parsed : { parsed, verdict: validateResponse(parsed, input) };
}

/**
 * judgeStaple with the response's signature verifications run first in the thread pool
 * (responseSignatureCalls, KnownSignatures): the same checks and the same verdict.
 */
export async function judgeStapleAhead(
  der: Uint8Array,
  input: ValidationInput & { issuer: Certificate },
): Promise<Judgement> {
  const parsed = parseStaple(der);
  if ('verdict' in parsed) return parsed;
  const signatures = await KnownSignatures.verify(responseSignatureCalls(parsed, input.issuer));
  return { parsed, verdict: validateResponse(parsed, { ...input, signatures }) };
}

function parseStaple(der: Uint8Array): ParsedResponse | Judgement {
  try {
    return parseOcspResponse(der);
  } catch (err) {
    const message = errorMessage(err);
    const code = err instanceof ResponseParseError ? err.verdictCode : 'parse';
    return {
      parsed: undefined,
      verdict: invalidVerdict('unparseable', [`does not parse: ${message}`], code),
      parseError: message,
    };
  }
}

/**
 * Validates a parsed OCSP response for `cert` as RFC 6960 §3.2 and §4.2.2.2 and RFC 5019 ask,
 * and as OpenSSL-based clients judge (docs/validation.md): successful status; a basic response;
 * an issuer that names and signed the certificate; a SingleResponse whose CertID matches ours,
 * every such SingleResponse (one per hash) agreeing and in its window, none about another CA's
 * certificate; a valid signature by the issuer, or by the first delegated responder certificate
 * embedded in the response that the responderID designates, which the issuer signed, carries
 * id-kp-OCSPSigning, has no critical extension RFC 5280 or we refuse and was valid at producedAt
 * and now; thisUpdate not in the future (beyond the skew); nextUpdate present, in the future and
 * not before thisUpdate; a matching nonce when one was sent and echoed; no critical extension we
 * do not understand.
 */
export function validateResponse(parsed: ParsedResponse, input: ValidationInput): Verdict {
  const verdict = invalidVerdict(parsed.responseStatus, []);
  verdict.codes = [];
  const fail = (code: VerdictCode, message: string) => {
    verdict.errors.push(message);
    if (!verdict.codes.includes(code)) verdict.codes.push(code);
  };
  try {
    check(parsed, input, verdict, fail);
  } catch {
    // Never reached by any input we know of (a fuzz test keeps it so); a verdict all the same,
    // in our words rather than a library's.
    fail('parse', 'the response cannot be checked (a field does not decode)');
  }
  verdict.valid = verdict.errors.length === 0;
  verdict.code = verdict.codes[0];
  return verdict;
}

function check(parsed: ParsedResponse, input: ValidationInput, verdict: Verdict, fail: Fail): void {
  if (parsed.responseStatus !== 'successful') {
    fail(`status:${parsed.responseStatus}`, `responseStatus ${parsed.responseStatus}`);
    return;
  }
  const basic = parsed.basic;
  if (!basic) {
    fail('unsupported-response-type', `unsupported responseType ${parsed.responseType ?? '(none)'}`);
    return;
  }
  verdict.producedAt = basic.producedAt;
  const { issuer, now } = input;
  const skew = input.skewMs ?? DEFAULT_SKEW_MS;

  const { single, matches } = checkCertId(basic, input, verdict, fail);

  // Signature and signer authorisation
  if (!issuer) {
    fail('issuer-missing', 'issuer certificate not given: cannot authorise the signer');
  } else {
    checkSigner(basic, issuer, now, skew, input.cache ?? sharedCache, input.signatures, verdict, fail);
  }

  checkTimes(basic, single ? matches : [], now, skew, fail);
  checkExtensions(basic, input, fail);
}

/** The CertID: the issuer against the certificate, the SingleResponse for it, and the others. */
function checkCertId(
  basic: BasicResponse,
  input: ValidationInput,
  verdict: Verdict,
  fail: Fail,
): { single: SingleResponseInfo | undefined; matches: SingleResponseInfo[] } {
  const { issuer, cert } = input;
  if (issuer && cert && (!issuer.issued(cert) || !issuerSigned(cert, issuer))) {
    fail(
      'issuer-mismatch',
      issuer.issued(cert)
        ? `issuer certificate (${issuer.subject}) did not sign the certificate (its key does not verify the certificate's signature)`
        : `issuer certificate (${issuer.subject}) is not named as the certificate's issuer (${cert.issuer})`,
    );
  }
  const matches = matchingSingleResponses(basic.responses, cert, issuer);
  const single = (input.hash ? matches.filter((r) => r.certId.hash === input.hash) : matches)[0];
  if (single) {
    verdict.certStatus = single.certStatus;
    verdict.revocationTime = single.revocationTime;
    verdict.revocationReason = single.revocationReason;
    verdict.thisUpdate = single.thisUpdate;
    // The earliest nextUpdate of them: a client whose CertID uses that hash sees it expire then.
    verdict.nextUpdate = earliest(matches.map((r) => r.nextUpdate)) ?? single.nextUpdate;
    for (const other of matches) {
      if (
        other.certStatus !== single.certStatus ||
        other.revocationTime?.getTime() !== single.revocationTime?.getTime()
      ) {
        fail(
          'conflicting-responses',
          `SingleResponses for this certificate disagree: ${describeSingle(single)}, ${describeSingle(other)} (a client sees the one for its own CertID hash)`,
        );
      }
    }
  } else if (issuer) {
    fail(
      'certid-mismatch',
      cert
        ? `no SingleResponse matches the certificate's CertID (serial ${cert.serialHex})`
        : "no SingleResponse matches the issuer's name and key hashes",
    );
  } else {
    fail('issuer-missing', 'issuer certificate not given: cannot match the CertID');
  }
  if (issuer && single) {
    // Beside ours, a SingleResponse about another CA's certificate: OpenSSL (ocsp_check_issuer)
    // refuses a response whose SingleResponses are not all about certificates of the signer's
    // CA. RFC 6960 is silent; we judge as clients do. (With none of ours, certid-mismatch says it.)
    for (const [i, r] of basic.responses.entries()) {
      if (!matches.includes(r) && !aboutIssuersCertificate(r, cert, issuer)) {
        fail(
          'certid-other-issuer',
          `SingleResponse ${i + 1} (serial ${serialHex(r.certId.serial)}) is about a certificate of another issuer, which OpenSSL refuses`,
        );
      }
    }
  }

  return { single, matches };
}

/** Time: producedAt, and every SingleResponse for the certificate, whichever hash a client's CertID uses. */
function checkTimes(
  basic: BasicResponse,
  matches: SingleResponseInfo[],
  now: Date,
  skew: number,
  fail: Fail,
): void {
  if (basic.producedAt.getTime() > now.getTime() + skew) {
    fail('produced-in-future', `producedAt ${basic.producedAt.toISOString()} is in the future`);
  }
  for (const r of matches) {
    const which = matches.length > 1 ? ` (${r.certId.hash} CertID)` : '';
    if (r.thisUpdate.getTime() > now.getTime() + skew) {
      fail('not-yet-valid', `thisUpdate ${r.thisUpdate.toISOString()} is in the future${which}`);
    }
    if (!r.nextUpdate) {
      fail(
        'no-next-update',
        `nextUpdate is absent (the response carries no expiry, so it cannot be stapled safely)${which}`,
      );
    } else if (r.nextUpdate.getTime() <= now.getTime()) {
      fail('stale', `expired: nextUpdate ${r.nextUpdate.toISOString()} has passed${which}`);
    }
    if (r.nextUpdate && r.nextUpdate.getTime() < r.thisUpdate.getTime()) {
      fail(
        'next-update-before-this-update',
        `nextUpdate ${r.nextUpdate.toISOString()} is earlier than thisUpdate ${r.thisUpdate.toISOString()}${which}`,
      );
    }
    for (const ext of r.extensions) {
      if (ext.critical && !KNOWN_SINGLE_EXTENSIONS.has(ext.oid)) {
        fail('critical-extension', `unknown critical singleExtension ${ext.oid}${which}`);
      }
    }
  }
}

/** Response extensions: no unknown critical one; the nonce echoed when one was sent. */
function checkExtensions(basic: BasicResponse, input: ValidationInput, fail: Fail): void {
  for (const ext of basic.extensions) {
    if (ext.critical && !KNOWN_RESPONSE_EXTENSIONS.has(ext.oid)) {
      fail('critical-extension', `unknown critical responseExtension ${ext.oid}`);
    }
  }
  if (input.nonce) {
    const echoed = basic.extensions.find((ext) => ext.oid === NONCE_OID);
    if (echoed && !nonceMatches(echoed.value, input.nonce)) {
      fail('nonce-mismatch', 'nonce does not match the request');
    }
  }
}

/**
 * Every SingleResponse about the certificate (or, without it, the issuer's certificates), under
 * any hash we can compute: a client builds its CertID with one hash and reads the SingleResponse
 * that matches it, so each one is what some client sees.
 */
function matchingSingleResponses(
  responses: SingleResponseInfo[],
  cert: Certificate | undefined,
  issuer: Certificate | undefined,
): SingleResponseInfo[] {
  if (!issuer) {
    // Without the issuer we can still report on the certificate by serial, never validate.
    const bySerial = cert ? responses.find((r) => r.certId.serial.equals(cert.serial)) : responses[0];
    return bySerial ? [bySerial] : [];
  }
  return responses.filter((r) => {
    const alg = r.certId.hash;
    if (!alg) return false;
    const nameHash = digest(alg, cert ? cert.issuerDer : issuer.subjectDer);
    return (
      r.certId.issuerNameHash.equals(nameHash) &&
      r.certId.issuerKeyHash.equals(issuer.keyHash(alg)) &&
      (!cert || r.certId.serial.equals(cert.serial))
    );
  });
}

/** Whether a SingleResponse's CertID names our issuer (its name, as the certificate or the issuer encodes it, and key). */
function aboutIssuersCertificate(
  r: SingleResponseInfo,
  cert: Certificate | undefined,
  issuer: Certificate,
): boolean {
  const alg = r.certId.hash;
  if (!alg || !r.certId.issuerKeyHash.equals(issuer.keyHash(alg))) return false;
  return (
    r.certId.issuerNameHash.equals(digest(alg, issuer.subjectDer)) ||
    (!!cert && r.certId.issuerNameHash.equals(digest(alg, cert.issuerDer)))
  );
}

function describeSingle(r: SingleResponseInfo): string {
  const since = r.revocationTime ? ` since ${r.revocationTime.toISOString()}` : '';
  return `${r.certStatus}${since} under ${r.certId.hash}`;
}

function earliest(dates: Array<Date | undefined>): Date | undefined {
  return dates.reduce<Date | undefined>((min, d) => (d && (!min || d < min) ? d : min), undefined);
}

/** RFC 8954 says the nonce is an OCTET STRING inside extnValue; older responders echo the raw bytes. */
function nonceMatches(echoed: Buffer, sent: Buffer): boolean {
  return echoed.equals(sent) || echoed.equals(derElement(0x04, sent));
}
