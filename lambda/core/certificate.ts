import { createPublicKey, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import {
  asBuffer,
  derProblem,
  digest,
  looksLikePem,
  ownedCopy,
  pemBlocks,
  serialHex,
  toArrayBuffer,
} from './der.js';
import { NAME_LABELS, sameName } from './der-name.js';
import { CertificateParseError } from './errors.js';
import { certificateFields, type AlgorithmId } from './certificate-fields.js';

/** id-kp-OCSPSigning: a delegated responder certificate must carry it (RFC 6960 §4.2.2.2). */
export const OCSP_SIGNING_EKU = '1.3.6.1.5.5.7.3.9';

/**
 * An X.509 certificate, parsed once, with the facts the renewer needs as plain values. The pkijs
 * object is built again on demand for rare needs (`asn`) and not kept: a decoded tree is ~50 times
 * the size of its DER; everything else is Buffers, strings and Dates.
 */
export class Certificate {
  readonly der: Buffer;
  /** The serial number's INTEGER content bytes, exactly as encoded. */
  readonly serial: Buffer;
  /** Upper-case hex of the serial (openssl's rendering). */
  readonly serialHex: string;
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  readonly subject: string;
  readonly issuer: string;
  /** The subjectPublicKey BIT STRING's value: what CertID.issuerKeyHash and byKey hash. */
  readonly publicKeyBits: Buffer;
  readonly spkiDer: Buffer;
  readonly tbsDer: Buffer;
  readonly signatureAlgorithm: AlgorithmId;
  readonly signature: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ocspUrls: string[];
  readonly caIssuersUrls: string[];
  readonly mustStaple: boolean;
  readonly isCA: boolean;
  /** Extended key usage OIDs, or undefined when the extension is absent. */
  readonly extKeyUsage: string[] | undefined;
  /** Whether keyUsage allows digitalSignature; undefined when the extension is absent. */
  readonly digitalSignature: boolean | undefined;
  /** The OIDs of the extensions marked critical. */
  readonly criticalExtensions: string[];
  readonly subjectKeyId: Buffer | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly sha256: string;
  private keyObject: KeyObject | undefined;
  private readonly keyHashes = new Map<string, Buffer>();

  /**
   * Throws CertificateParseError, and nothing else, when the bytes are not an X.509 certificate.
   * `sha256`: the SHA-256 of `der` when the caller has it already (certificateFromDer's cache key).
   */
  constructor(der: Uint8Array, sha256?: Buffer) {
    // Kept (the parsed-certificate cache keeps up to 512): a copy that pins no pool slab.
    this.der = ownedCopy(der);
    const x = certificateFields(this.der);
    if (!x) throw new CertificateParseError(NOT_A_CERTIFICATE);
    this.serial = x.serial;
    this.serialHex = serialHex(this.serial);
    this.subjectDer = x.subjectDer;
    this.issuerDer = x.issuerDer;
    this.subject = x.subject;
    this.issuer = x.issuer;
    this.publicKeyBits = x.publicKeyBits;
    this.spkiDer = x.spkiDer;
    this.tbsDer = x.tbsDer;
    this.signatureAlgorithm = x.signatureAlgorithm;
    this.signature = x.signature;
    this.notBefore = x.notBefore;
    this.notAfter = x.notAfter;
    this.sha256 = (sha256 ?? digest('sha256', this.der)).toString('hex');
    this.ocspUrls = x.ocspUrls;
    this.caIssuersUrls = x.caIssuersUrls;
    this.mustStaple = x.mustStaple;
    this.isCA = x.isCA;
    this.extKeyUsage = x.extKeyUsage;
    this.subjectKeyId = x.subjectKeyId;
    this.authorityKeyId = x.authorityKeyId;
    this.digitalSignature = x.digitalSignature;
    this.criticalExtensions = x.criticalExtensions;
  }

  /** The pkijs certificate, decoded again from `der` on each access (rare: tests, tooling). */
  get asn(): pkijs.Certificate {
    return decodeCertificate(this.der).cert;
  }

  /** The public key as a node KeyObject, built once. */
  get publicKey(): KeyObject {
    this.keyObject ??= createPublicKey({ key: this.spkiDer, format: 'der', type: 'spki' });
    return this.keyObject;
  }

  /** Hash of the public key bits (CertID.issuerKeyHash, ResponderID byKey), memoised per algorithm. */
  keyHash(hash: 'sha1' | 'sha256' | 'sha384' | 'sha512'): Buffer {
    let value = this.keyHashes.get(hash);
    if (!value) {
      value = digest(hash, this.publicKeyBits);
      this.keyHashes.set(hash, value);
    }
    return value;
  }

  /**
   * Whether this certificate's subject is the name `cert` gives as its issuer, compared as RFC
   * 5280 §7.1 and OpenSSL's X509_NAME_cmp compare names (sameName), not by their encodings nor
   * their formatted strings. Callers still check a signature: a name never authorises alone.
   */
  issued(cert: Certificate): boolean {
    return sameName(this.subjectDer, cert.issuerDer);
  }

  isValidAt(at: Date): boolean {
    return this.notBefore.getTime() <= at.getTime() && at.getTime() <= this.notAfter.getTime();
  }
}

/** The BER tree of `der`, embedded values (key BIT STRING, extnValue OCTET STRINGs) not decoded. */
function decodeTree(der: Buffer): asn1js.AsnType {
  let asn: ReturnType<typeof asn1js.fromBER>;
  try {
    asn = asn1js.fromBER(der, { parseEmbedded: false });
  } catch (err) {
    throw new CertificateParseError('not DER (a value does not decode)', { cause: err });
  }
  if (asn.offset === -1) throw new CertificateParseError(`not DER: ${asn.result.error}`);
  return asn.result;
}

/** The pkijs certificate of `der` (the `asn` getter), or CertificateParseError. */
function decodeCertificate(der: Buffer): { cert: pkijs.Certificate } {
  const tree = decodeTree(der);
  try {
    return { cert: new pkijs.Certificate({ schema: tree }) };
  } catch (err) {
    throw new CertificateParseError('not an X.509 certificate (its structure does not match)', {
      cause: err,
    });
  }
}

/** A distinguished name as "CN=…,O=…,C=…" (most specific first, like openssl -nameopt RFC2253). */
export function formatName(name: pkijs.RelativeDistinguishedNames): string {
  return [...name.typesAndValues]
    .reverse()
    .map((tv) => {
      const label = NAME_LABELS[tv.type] ?? tv.type;
      const raw = (tv.value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
      return `${label}=${typeof raw === 'string' ? raw : '#'}`;
    })
    .join(',');
}

/**
 * All certificates in a file: a PEM bundle with any number of CERTIFICATE blocks (other blocks,
 * such as private keys, are ignored and never kept), or a single DER certificate. Throws
 * CertificateParseError (and nothing else) when the file holds no certificate or a certificate
 * block does not parse.
 */
export function parseCertificates(bytes: Uint8Array): Certificate[] {
  if (!looksLikePem(bytes)) return [certificateFromDer(bytes)];
  const certs = pemBlocks(asBuffer(bytes).toString('latin1'))
    .filter((block) => block.label === 'CERTIFICATE' || block.label === 'X509 CERTIFICATE')
    .map((block, index) => {
      try {
        return certificateFromDer(block.der);
      } catch (err) {
        throw new CertificateParseError(
          `certificate block ${index + 1} does not parse: ${(err as Error).message}`,
          { cause: err },
        );
      }
    });
  if (certs.length === 0) throw new CertificateParseError('no CERTIFICATE block found');
  return certs;
}

/**
 * A parsed certificate, shared by every bundle that carries the same bytes: the intermediate in
 * ten thousand bundles is parsed once (an asn1js BER decode and the pkijs schema walk, per
 * certificate). Certificate objects are immutable, so sharing them is safe.
 */
export function certificateFromDer(der: Uint8Array): Certificate {
  // Keyed by the SHA-256 of the bytes (not the bytes themselves in base64): a 32-byte key whatever
  // the certificate's size, and the lookup comes before any decoding.
  const hash = digest('sha256', der);
  const key = hash.toString('base64');
  let cert = parsedCache.get(key);
  if (!cert) {
    cert = parseCertificateDer(der, hash);
    if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value!);
  } else parsedCache.delete(key); // re-insert below: most recently used last
  parsedCache.set(key, cert);
  return cert;
}
const PARSED_CACHE_SIZE = 512;

/**
 * One certificate from DER, or CertificateParseError in the user's terms: where the DER breaks, a
 * field that is wrong (a time not in RFC 5280's form), or well-formed DER that is no certificate.
 */
function parseCertificateDer(der: Uint8Array, sha256?: Buffer): Certificate {
  try {
    return new Certificate(der, sha256);
  } catch (err) {
    const problem = derProblem(der);
    if (problem) throw new CertificateParseError(`not a certificate: ${problem}`, { cause: err });
    if (err instanceof CertificateParseError && err.message !== NOT_A_CERTIFICATE) throw err;
    throw new CertificateParseError(
      'not a certificate: well-formed DER, but not the structure of an X.509 certificate',
      {
        cause: err,
      },
    );
  }
}
/** The Certificate constructor's messages that say only "this is not a certificate". */
const NOT_A_CERTIFICATE = 'not an X.509 certificate (its structure does not match)';
const parsedCache = new Map<string, Certificate>();

/** Empties the parsed-certificate cache (benchmarks measure cold parsing with it). */
export function clearCertificateCache(): void {
  parsedCache.clear();
}

/**
 * Certificates from a caIssuers download: DER, PEM, or a PKCS#7 "certs-only" SignedData (RFC 5280
 * §4.2.2.1 allows both .cer and .p7c).
 */
export function parseIssuerDownload(bytes: Uint8Array): Certificate[] {
  if (looksLikePem(bytes)) {
    const blocks = pemBlocks(asBuffer(bytes).toString('latin1'));
    const pkcs7 = blocks.find((b) => b.label === 'PKCS7');
    if (pkcs7) return certificatesFromPkcs7(pkcs7.der);
    return parseCertificates(bytes);
  }
  try {
    return [parseCertificateDer(bytes)];
  } catch (certErr) {
    try {
      return certificatesFromPkcs7(bytes);
    } catch {
      throw certErr;
    }
  }
}

function certificatesFromPkcs7(der: Uint8Array): Certificate[] {
  const asn = asn1js.fromBER(toArrayBuffer(der));
  if (asn.offset === -1) throw new Error('not DER');
  const info = new pkijs.ContentInfo({ schema: asn.result });
  if (info.contentType !== pkijs.ContentInfo.SIGNED_DATA) throw new Error('PKCS#7 is not SignedData');
  const signed = new pkijs.SignedData({ schema: info.content });
  const certs = (signed.certificates ?? []).filter(
    (c): c is pkijs.Certificate => c instanceof pkijs.Certificate,
  );
  if (certs.length === 0) throw new Error('PKCS#7 holds no certificate');
  return certs.map((c) => new Certificate(asBuffer(c.toSchema().toBER())));
}

/**
 * Whether a file holds private keys and no certificate (certbot's `privkey.pem`): PEM whose every
 * block is a key or key parameters. Such a file is a key beside the certificates, not a broken
 * certificate. Nothing of the key is kept.
 */
export function holdsOnlyPrivateKeys(bytes: Uint8Array): boolean {
  if (!looksLikePem(bytes)) return false;
  const labels = pemBlocks(asBuffer(bytes).toString('latin1')).map((block) => block.label);
  return labels.length > 0 && labels.every((label) => /PRIVATE KEY$|^EC PARAMETERS$/.test(label));
}
