import type { KeyObject } from 'node:crypto';
import { Certificate, OCSP_SIGNING_EKU } from './certificate.js';
import { sameName } from './der-name.js';
import { digest, serialHex, type HashName } from './der.js';
import { NONCE_OID } from './ocsp-request.js';
import {
  parseOcspResponse,
  ResponseParseError,
  type BasicResponse,
  type CertStatus,
  type ParsedResponse,
  type ResponseStatus,
  type SingleResponseInfo,
} from './ocsp-response.js';
import {
  checkSignature,
  KnownSignatures,
  signatureCall,
  type SignatureProblem,
  type VerifyCall,
} from './signature.js';

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

/**
 * Extensions of a delegated responder certificate that may be critical (RFC 5280 §4.2: a
 * certificate with a critical extension the verifier does not recognise must be refused): those
 * we understand that OpenSSL also handles as critical (X509_supported_extension). Any other
 * critical extension makes the responder certificate unauthorised.
 */
const KNOWN_RESPONDER_CERT_EXTENSIONS = new Set([
  '2.5.29.15', // keyUsage (digitalSignature required when present)
  '2.5.29.37', // extKeyUsage (id-kp-OCSPSigning required)
  '2.5.29.19', // basicConstraints
  '2.5.29.17', // subjectAltName
  '2.5.29.32', // certificatePolicies
  '1.3.6.1.5.5.7.48.1.5', // id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1)
]);

/** Extensions RFC 5280 says MUST NOT be critical (§4.2.1.1, §4.2.1.2, §4.2.2.1); OpenSSL refuses them critical. */
const NEVER_CRITICAL: Record<string, string> = {
  '2.5.29.14': 'subjectKeyIdentifier',
  '2.5.29.35': 'authorityKeyIdentifier',
  '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
};

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
      ok = !certificateSignatureProblem(responder, issuer);
      this.issuedBy.set(key, ok);
    }
    return ok;
  }
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
    const message = err instanceof Error ? err.message : String(err);
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

type Fail = (code: VerdictCode, message: string) => void;

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

/**
 * Whether `issuer`'s key verifies `cert`'s signature, memoised per pair for the certificates'
 * lifetime (pickIssuer records what it verified in the thread pool, so a renewal verifies once).
 */
function issuerSigned(cert: Certificate, issuer: Certificate): boolean {
  let ok = issuerSignatures.get(cert)?.get(issuer.sha256);
  if (ok === undefined) {
    ok = !certificateSignatureProblem(cert, issuer);
    recordIssuerSignature(cert, issuer, ok);
  }
  return ok;
}
const issuerSignatures = new WeakMap<Certificate, Map<string, boolean>>();

/** Records that `issuer`'s key does (or does not) verify `cert`'s signature, verified elsewhere. */
export function recordIssuerSignature(cert: Certificate, issuer: Certificate, ok: boolean): void {
  let known = issuerSignatures.get(cert);
  if (!known) issuerSignatures.set(cert, (known = new Map()));
  known.set(issuer.sha256, ok);
}

function checkSigner(
  basic: BasicResponse,
  issuer: Certificate,
  now: Date,
  skew: number,
  cache: ValidationCache,
  known: KnownSignatures | undefined,
  verdict: Verdict,
  fail: Fail,
): void {
  const signatureProblem = (c: Certificate) =>
    checkSignature(basic.signatureAlgorithm, publicKeyOf(c), basic.tbsDer, basic.signature, known);
  const responder = designatedSigner(basic, issuer);
  if (responder === 'issuer') {
    verdict.signature.signer = 'issuer';
    const problem = signatureProblem(issuer);
    verdict.signature.valid = !problem;
    if (problem) fail(problem.code, signatureMessage(problem, 'the issuer key'));
    return;
  }
  if (!responder) {
    fail('responder-id', 'responderID designates neither the issuer nor a certificate in the response');
    return;
  }
  const problems: Array<[VerdictCode, string]> = [];
  const sigProblem = signatureProblem(responder);
  if (sigProblem)
    problems.push([sigProblem.code, signatureMessage(sigProblem, 'the delegated responder key')]);
  if (!issuer.issued(responder) || !cache.delegatedSignatureOk(responder, issuer)) {
    problems.push([
      'signer-not-authorised',
      `delegated responder certificate (${responder.subject}) is not issued by the issuer`,
    ]);
  }
  if (!responder.extKeyUsage?.includes(OCSP_SIGNING_EKU)) {
    problems.push(['signer-not-authorised', 'delegated responder certificate lacks id-kp-OCSPSigning']);
  }
  if (responder.digitalSignature === false) {
    problems.push([
      'signer-not-authorised',
      'delegated responder certificate keyUsage does not allow digitalSignature',
    ]);
  }
  for (const oid of responder.criticalExtensions) {
    if (NEVER_CRITICAL[oid]) {
      problems.push([
        'signer-not-authorised',
        `delegated responder certificate marks ${NEVER_CRITICAL[oid]} critical, which RFC 5280 forbids`,
      ]);
    } else if (!KNOWN_RESPONDER_CERT_EXTENSIONS.has(oid)) {
      problems.push([
        'signer-not-authorised',
        `delegated responder certificate has an unknown critical extension ${oid}`,
      ]);
    }
  }
  problems.push(...signerTimeProblems(responder, basic.producedAt, now, skew));
  if (problems.length === 0) {
    verdict.signature = { valid: true, signer: 'delegated' };
    verdict.responderCert = responder;
    return;
  }
  verdict.signature = { valid: !sigProblem, signer: 'unknown' };
  for (const [code, message] of problems) fail(code, message);
}

/**
 * Who the responderID designates, found as OpenSSL finds the signer (ocsp_find_signer): the
 * issuer, else the FIRST certificate embedded in the response that it names, and only that one
 * (none: no signer can be authorised). A second certificate with the same name or key is never
 * tried: OpenSSL would not, and would refuse what the first cannot sign. byName compares Names as
 * RFC 5280 §7.1 and X509_NAME_cmp do (sameName), never as formatted strings.
 */
function designatedSigner(basic: BasicResponse, issuer: Certificate): 'issuer' | Certificate | undefined {
  const rid = basic.responderId;
  const designates = (c: Certificate) =>
    'byKey' in rid ? c.keyHash('sha1').equals(rid.byKey) : sameName(c.subjectDer, rid.byName);
  return designates(issuer) ? 'issuer' : basic.certs.find(designates);
}

/**
 * The signature verifications validateResponse will make on `parsed` for `issuer`'s certificate:
 * the response's signature under the key it must be signed with (the issuer's, or the designated
 * delegated responder's). Run them ahead (KnownSignatures.verify) and pass the answers in
 * ValidationInput.signatures. Empty when there is nothing to verify or the response is too broken
 * to say (validateResponse then finds the problem itself).
 */
export function responseSignatureCalls(parsed: ParsedResponse, issuer: Certificate): VerifyCall[] {
  try {
    const basic = parsed.basic;
    if (parsed.responseStatus !== 'successful' || !basic) return [];
    const designated = designatedSigner(basic, issuer);
    const signers = designated === 'issuer' ? [issuer] : designated ? [designated] : [];
    return signers.flatMap((c) => {
      const call = signatureCall(basic.signatureAlgorithm, publicKeyOf(c), basic.tbsDer, basic.signature);
      return 'code' in call ? [] : [call];
    });
  } catch {
    return [];
  }
}

/**
 * The verification of `cert`'s signature under `issuer`'s key (certificateSignatureProblem's), or
 * undefined when the check fails before verifying: pickIssuer runs it in the thread pool.
 */
export function certificateSignatureCall(cert: Certificate, issuer: Certificate): VerifyCall | undefined {
  const call = signatureCall(cert.signatureAlgorithm, publicKeyOf(issuer), cert.tbsDer, cert.signature);
  return 'code' in call ? undefined : call;
}

/**
 * A delegated responder certificate must be valid when it signed (producedAt) and now: a client
 * checks it at its own clock, so a response pre-signed or cached before the certificate expired
 * is refused once it has (as `openssl ocsp -attime` does). The skew lets our clock run behind
 * the responder's for notBefore only; an expiry is never stretched.
 */
function signerTimeProblems(
  responder: Certificate,
  producedAt: Date,
  now: Date,
  skew: number,
): Array<[VerdictCode, string]> {
  const life = `valid ${responder.notBefore.toISOString()} to ${responder.notAfter.toISOString()}`;
  const problems: Array<[VerdictCode, string]> = [];
  if (!responder.isValidAt(producedAt)) {
    problems.push([
      producedAt < responder.notBefore ? 'signer-not-yet-valid' : 'signer-expired',
      `delegated responder certificate is not valid at producedAt (${life})`,
    ]);
  }
  if (now.getTime() > responder.notAfter.getTime()) {
    problems.push(['signer-expired', `delegated responder certificate has expired (${life})`]);
  } else if (now.getTime() + skew < responder.notBefore.getTime()) {
    problems.push(['signer-not-yet-valid', `delegated responder certificate is not yet valid (${life})`]);
  }
  return problems;
}

function signatureMessage(problem: SignatureProblem, key: string): string {
  return problem.reason === 'signature does not verify'
    ? `signature does not verify with ${key}`
    : `signature: ${problem.reason}`;
}

/** The certificate's public key, or undefined when node cannot decode it (a verdict, not a throw). */
function publicKeyOf(cert: Certificate): KeyObject | undefined {
  try {
    return cert.publicKey;
  } catch {
    return undefined;
  }
}

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

/** What is wrong with `cert`'s signature under `issuer`'s key, if anything. */
function certificateSignatureProblem(cert: Certificate, issuer: Certificate): SignatureProblem | undefined {
  return checkSignature(cert.signatureAlgorithm, publicKeyOf(issuer), cert.tbsDer, cert.signature);
}

/** RFC 8954 says the nonce is an OCTET STRING inside extnValue; older responders echo the raw bytes. */
function nonceMatches(echoed: Buffer, sent: Buffer): boolean {
  if (echoed.equals(sent)) return true;
  // 04, the DER length of the nonce (short or long form), then the nonce: lengths must agree too.
  const length =
    sent.length < 0x80
      ? [sent.length]
      : sent.length < 0x100
        ? [0x81, sent.length]
        : [0x82, sent.length >> 8, sent.length & 0xff];
  const header = Buffer.from([0x04, ...length]);
  return (
    echoed.length === header.length + sent.length &&
    echoed.subarray(0, header.length).equals(header) &&
    echoed.subarray(header.length).equals(sent)
  );
}
