/**
 * The responder: who signed an OCSP response, and whether they may (RFC 6960 §4.2.2.2). The
 * issuer, or the delegated responder certificate the responderID designates, found and checked
 * as OpenSSL does; the signature verifications that can run ahead in the thread pool.
 */
import type { KeyObject } from 'node:crypto';
import { Certificate, OCSP_SIGNING_EKU } from './certificate.js';
import { sameName } from './der-name.js';
import type { BasicResponse, ParsedResponse } from './ocsp-response.js';
import {
  checkSignature,
  KnownSignatures,
  signatureCall,
  type SignatureProblem,
  type VerifyCall,
} from './signature.js';
import type { Fail, Verdict, VerdictCode } from './verdict.js';

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

/**
 * Whether `issuer`'s key verifies `cert`'s signature, memoised per pair for the certificates'
 * lifetime (pickIssuer records what it verified in the thread pool, so a renewal verifies once).
 */
export function issuerSigned(cert: Certificate, issuer: Certificate): boolean {
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

export function checkSigner(
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

/** What is wrong with `cert`'s signature under `issuer`'s key, if anything. */
function certificateSignatureProblem(cert: Certificate, issuer: Certificate): SignatureProblem | undefined {
  return checkSignature(cert.signatureAlgorithm, publicKeyOf(issuer), cert.tbsDer, cert.signature);
}
