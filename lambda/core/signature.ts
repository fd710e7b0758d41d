import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { AlgorithmId } from './certificate-fields.js';
import { asBuffer, hashNameForOid, toArrayBuffer } from './der.js';

/**
 * Signature algorithms accepted on OCSP responses and certificates, mapped to node:crypto, each
 * bound to the key type it may be used with. MD2/MD5 and DSA are refused outright. Verification
 * runs in node's OpenSSL, ~200× faster here than pkijs over WebCrypto, which matters when a run
 * validates thousands of responses.
 */
const RSA_PKCS1: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};
const ECDSA: Record<string, string> = {
  '1.2.840.10045.4.1': 'sha1', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};
const EDDSA: Record<string, 'ed25519' | 'ed448'> = {
  '1.3.101.112': 'ed25519',
  '1.3.101.113': 'ed448',
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';
const MGF1 = '1.2.840.113549.1.1.8';
/** The curves TLS clients verify (node's names for P-256, P-384, P-521). */
const ECDSA_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
/** DER NULL: the parameters RFC 4055 §5 gives the PKCS#1 v1.5 algorithms (absent is tolerated). */
const DER_NULL = Buffer.from([0x05, 0x00]);

/** Why a signature is not accepted: it does not verify, or its algorithm cannot be used with the key. */
export type SignatureProblem = { code: 'signature' | 'signature-algorithm'; reason: string };

/**
 * Checks `signature` over `data` under `key` (undefined when the signer's key does not decode).
 * Returns undefined when it verifies, else the problem: a signature that does not verify or a key
 * that does not decode (`signature`), or an algorithm that is unsupported, malformed or not the
 * key's kind (`signature-algorithm`: an RSA signature under the Ed25519 OID, an ECDSA one under
 * sha256WithRSAEncryption, RSASSA-PSS parameters the key's own restrictions forbid). Never throws.
 * `known`: answers of the same verifications already run (in the thread pool, see
 * KnownSignatures); a call it has no answer for is verified here.
 */
export function checkSignature(
  alg: AlgorithmId,
  key: KeyObject | undefined,
  data: Uint8Array,
  signature: Uint8Array,
  known?: KnownSignatures,
): SignatureProblem | undefined {
  const call = signatureCall(alg, key, data, signature);
  if ('code' in call) return call;
  const ok = known?.answer(call) ?? verifyNow(call);
  return ok ? undefined : { code: 'signature', reason: 'signature does not verify' };
}

/**
 * One signature verification as node:crypto runs it (the arguments of crypto.verify), once the
 * algorithm, its parameters and the key's kind have been checked against each other.
 */
export interface VerifyCall {
  hash: string | null;
  key: KeyObject | { key: KeyObject; padding: number; saltLength: number };
  data: Uint8Array;
  signature: Uint8Array;
}

/**
 * What checkSignature would verify, or the problem it finds before verifying anything (see there).
 * The checks are the same whichever way the call then runs.
 */
export function signatureCall(
  alg: AlgorithmId,
  key: KeyObject | undefined,
  data: Uint8Array,
  signature: Uint8Array,
): SignatureProblem | VerifyCall {
  if (!key) return { code: 'signature', reason: "the signer's public key does not decode" };
  const keyType = key.asymmetricKeyType ?? '(unknown)';
  const mismatch = (kind: string): SignatureProblem => ({
    code: 'signature-algorithm',
    reason: `signature algorithm ${alg.oid} (${kind}) does not match the signer's ${keyType} key`,
  });
  let hash: string | null;
  let options: KeyObject | { key: KeyObject; padding: number; saltLength: number } = key;
  if (alg.oid in RSA_PKCS1) {
    if (keyType !== 'rsa') return mismatch('RSA PKCS#1 v1.5');
    if (alg.params && !alg.params.equals(DER_NULL)) {
      return { code: 'signature-algorithm', reason: `RSA signature algorithm ${alg.oid} has parameters` };
    }
    hash = RSA_PKCS1[alg.oid]!;
  } else if (alg.oid in ECDSA) {
    if (keyType !== 'ec') return mismatch('ECDSA');
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (!curve || !ECDSA_CURVES.has(curve)) {
      return {
        code: 'signature-algorithm',
        reason: `ECDSA key on curve ${curve ?? '(unnamed)'} is not accepted`,
      };
    }
    if (alg.params && !alg.params.equals(DER_NULL)) {
      return { code: 'signature-algorithm', reason: `ECDSA signature algorithm ${alg.oid} has parameters` };
    }
    hash = ECDSA[alg.oid]!;
  } else if (alg.oid in EDDSA) {
    if (keyType !== EDDSA[alg.oid]) return mismatch(EDDSA[alg.oid]!);
    if (alg.params)
      return { code: 'signature-algorithm', reason: `${keyType} signature algorithm has parameters` };
    hash = null;
  } else if (alg.oid === RSASSA_PSS) {
    if (keyType !== 'rsa' && keyType !== 'rsa-pss') return mismatch('RSASSA-PSS');
    const pss = pssParams(alg.params);
    if ('code' in pss) return pss;
    const restricted = keyType === 'rsa-pss' ? key.asymmetricKeyDetails : undefined;
    if (
      restricted?.hashAlgorithm &&
      (restricted.hashAlgorithm !== pss.hash ||
        (restricted.mgf1HashAlgorithm ?? restricted.hashAlgorithm) !== pss.hash ||
        pss.saltLength < (restricted.saltLength ?? 0))
    ) {
      return {
        code: 'signature-algorithm',
        reason: `RSASSA-PSS parameters (${pss.hash}, salt ${pss.saltLength}) are not allowed by the signer's key (${restricted.hashAlgorithm}, salt ≥ ${restricted.saltLength ?? 0})`,
      };
    }
    hash = pss.hash;
    options = { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength };
  } else {
    return { code: 'signature-algorithm', reason: `unsupported signature algorithm ${alg.oid}` };
  }
  return { hash, key: options, data, signature };
}

/** Runs a verification on this thread; false for a signature that does not verify or is malformed. */
function verifyNow(call: VerifyCall): boolean {
  try {
    return cryptoVerify(call.hash, call.data, call.key, call.signature);
  } catch {
    return false; // a malformed signature value: not a valid signature
  }
}

/**
 * Runs a verification on libuv's thread pool (crypto.verify with a callback), so that its cost is
 * not spent on the event loop; the same answer as verifying inline.
 */
export function verifyInThreadPool(call: VerifyCall): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      cryptoVerify(call.hash, call.data, call.key, call.signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false); // a malformed signature value: not a valid signature
    }
  });
}

/**
 * Whether a verification is worth handing to the thread pool: ECDSA and EdDSA are, RSA is not.
 * Measured on the 2-core bench machine (Node 24, a 1.2 KB message): handing one over costs 5 to
 * 16 µs of the event loop, where verifying inline takes ~64 µs for ECDSA P-256, ~100 µs for
 * Ed25519 and ~490 µs for P-384, and that is what the forced CLI run gains (its main thread's CPU
 * fell by a quarter at 10 000 ECDSA leaves). RSA verifies in ~22 µs at 2 048 bits, ~61 µs at
 * 4 096; yet handing RSA-4096 over made `npm run bench`'s in-memory RSA row (responder and CA keys
 * of 4 096 bits) 30 % slower, so every RSA key stays inline.
 */
export function worthThreadPool(call: VerifyCall): boolean {
  const key = 'padding' in call.key ? call.key.key : call.key;
  const type = key.asymmetricKeyType;
  return type !== 'rsa' && type !== 'rsa-pss';
}

/** Verifies on the thread pool when worthThreadPool says so, else inline; the same answer either way. */
export function verifySignatureCall(call: VerifyCall): Promise<boolean> {
  return worthThreadPool(call) ? verifyInThreadPool(call) : Promise.resolve(verifyNow(call));
}

/**
 * Answers of verifications already run, for checkSignature to use when it makes the very same call
 * (the same key, hash, padding, data and signature bytes) instead of verifying again. The renewal
 * runs a response's and a leaf's signature checks in the thread pool this way while the checks
 * themselves, and every verdict, stay the synchronous code's; a call with no answer here is
 * verified on the spot, so an answer can only ever save work, never change a verdict.
 */
export class KnownSignatures {
  private readonly answers: Array<{ call: VerifyCall; ok: boolean }> = [];

  /**
   * Runs in the thread pool, all at once, those of `calls` worth it (worthThreadPool) and keeps
   * their answers; the others are left to checkSignature to verify inline.
   */
  static async verify(calls: readonly VerifyCall[]): Promise<KnownSignatures> {
    const known = new KnownSignatures();
    const pooled = calls.filter(worthThreadPool);
    const answers = await Promise.all(pooled.map(verifyInThreadPool));
    pooled.forEach((call, i) => known.add(call, answers[i]!));
    return known;
  }

  add(call: VerifyCall, ok: boolean): void {
    this.answers.push({ call, ok });
  }

  answer(call: VerifyCall): boolean | undefined {
    return this.answers.find((known) => sameCall(known.call, call))?.ok;
  }
}

function sameCall(a: VerifyCall, b: VerifyCall): boolean {
  return (
    a.hash === b.hash &&
    sameKey(a.key, b.key) &&
    sameBytes(a.data, b.data) &&
    sameBytes(a.signature, b.signature)
  );
}

function sameKey(a: VerifyCall['key'], b: VerifyCall['key']): boolean {
  if ('padding' in a || 'padding' in b) {
    return (
      'padding' in a &&
      'padding' in b &&
      a.padding === b.padding &&
      a.saltLength === b.saltLength &&
      sameKey(a.key, b.key)
    );
  }
  return a === b || a.equals(b);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || asBuffer(a).equals(asBuffer(b));
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): required on a signature (absent is refused, as OpenSSL
 * refuses it). The mask generation must be MGF1 with the same hash as the signature (node:crypto
 * verifies only that combination), and the trailer field 1.
 */
function pssParams(params: Buffer | undefined): { hash: string; saltLength: number } | SignatureProblem {
  const bad = (why: string): SignatureProblem => ({
    code: 'signature-algorithm',
    reason: `RSASSA-PSS parameters ${why}`,
  });
  if (!params) return bad('are absent (RFC 4055 §3.1 requires them on a signature)');
  let pss: pkijs.RSASSAPSSParams;
  let mgfHash: string | undefined;
  try {
    const asn = asn1js.fromBER(toArrayBuffer(params));
    if (asn.offset === -1 || asn.offset !== params.length) return bad('do not parse');
    pss = new pkijs.RSASSAPSSParams({ schema: asn.result });
    const mgfParams = pss.maskGenAlgorithm.algorithmParams as asn1js.AsnType | undefined;
    mgfHash = mgfParams ? new pkijs.AlgorithmIdentifier({ schema: mgfParams }).algorithmId : undefined;
  } catch {
    return bad('do not parse');
  }
  const hash = hashNameForOid(pss.hashAlgorithm.algorithmId);
  if (!hash) return bad(`name an unsupported hash ${pss.hashAlgorithm.algorithmId}`);
  if (pss.maskGenAlgorithm.algorithmId !== MGF1) {
    return bad(`name an unsupported mask generation ${pss.maskGenAlgorithm.algorithmId}`);
  }
  if (hashNameForOid(mgfHash ?? '') !== hash) {
    return bad(
      `use MGF1 with ${hashNameForOid(mgfHash ?? '') ?? mgfHash ?? '(none)'}, not the signature's ${hash}`,
    );
  }
  if (pss.trailerField !== 1) return bad(`have trailer field ${pss.trailerField}`);
  if (!Number.isSafeInteger(pss.saltLength) || pss.saltLength < 0) return bad('have a bad salt length');
  return { hash, saltLength: pss.saltLength };
}
