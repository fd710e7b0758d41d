import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { AlgorithmId } from './certificate.js';
import { hashNameForOid, toArrayBuffer } from './der.js';

/**
 * Signature algorithms accepted on OCSP responses and certificates, mapped to node:crypto.
 * MD2/MD5 are refused outright. Verification runs in node's OpenSSL, ~200× faster here than pkijs
 * over WebCrypto, which matters when a run validates thousands of responses.
 */
const SIMPLE: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
};
const RSASSA_PSS = '1.2.840.113549.1.1.10';

export class UnsupportedAlgorithmError extends Error {}

/**
 * Verifies `signature` over `data` with `key`. Returns false for a signature that does not verify;
 * throws UnsupportedAlgorithmError for an algorithm it will not check.
 */
export function verifySignature(alg: AlgorithmId, key: KeyObject, data: Uint8Array, signature: Uint8Array) {
  if (alg.oid in SIMPLE) {
    try {
      return cryptoVerify(SIMPLE[alg.oid] ?? null, data, key, signature);
    } catch {
      return false; // wrong key type for the algorithm, malformed signature: not a valid signature
    }
  }
  if (alg.oid === RSASSA_PSS) {
    const { hash, saltLength } = pssParams(alg.params);
    try {
      return cryptoVerify(
        hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength },
        signature,
      );
    } catch {
      return false;
    }
  }
  throw new UnsupportedAlgorithmError(`unsupported signature algorithm ${alg.oid}`);
}

function pssParams(params: Buffer | undefined): { hash: string; saltLength: number } {
  if (!params) return { hash: 'sha1', saltLength: 20 };
  const asn = asn1js.fromBER(toArrayBuffer(params));
  if (asn.offset === -1) throw new UnsupportedAlgorithmError('RSASSA-PSS parameters do not parse');
  const pss = new pkijs.RSASSAPSSParams({ schema: asn.result });
  const hash = hashNameForOid(pss.hashAlgorithm.algorithmId);
  if (!hash) throw new UnsupportedAlgorithmError(`RSASSA-PSS hash ${pss.hashAlgorithm.algorithmId}`);
  return { hash, saltLength: pss.saltLength };
}
