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
  strictGeneralizedTime,
  strictUtcTime,
  toArrayBuffer,
} from './der.js';
import {
  bitString,
  booleanValue,
  childrenOf,
  content,
  contextTag,
  encoding,
  integerBytes,
  isStrictDer,
  oidString,
  primitive,
  readRoot,
  TAG,
  timeChars,
  type Tlv,
} from './der-reader.js';
import { formatNameDer, NAME_LABELS, sameName } from './der-name.js';

const OID = {
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocsp: '1.3.6.1.5.5.7.48.1',
  caIssuers: '1.3.6.1.5.5.7.48.2',
  tlsFeature: '1.3.6.1.5.5.7.1.24',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

/** id-kp-OCSPSigning: a delegated responder certificate must carry it (RFC 6960 §4.2.2.2). */
export const OCSP_SIGNING_EKU = '1.3.6.1.5.5.7.3.9';

/** TLS Feature value 5 = status_request: the "must-staple" flag (RFC 7633). */
const STATUS_REQUEST = 5;

/** What parseCertificates and the Certificate constructor throw: the bytes are not a certificate. */
export class CertificateParseError extends Error {
  override readonly name = 'CertificateParseError';
  readonly code = 'CERTIFICATE_PARSE';
}

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

/**
 * What the Certificate constructor reads from a certificate's DER: every readonly field but `der`,
 * `serialHex` and `sha256`. Buffers are views on the bytes parsed, never copies.
 */
export interface CertificateFields {
  serial: Buffer;
  subjectDer: Buffer;
  issuerDer: Buffer;
  subject: string;
  issuer: string;
  publicKeyBits: Buffer;
  spkiDer: Buffer;
  tbsDer: Buffer;
  signatureAlgorithm: AlgorithmId;
  signature: Buffer;
  notBefore: Date;
  notAfter: Date;
  ocspUrls: string[];
  caIssuersUrls: string[];
  mustStaple: boolean;
  isCA: boolean;
  extKeyUsage: string[] | undefined;
  digitalSignature: boolean | undefined;
  criticalExtensions: string[];
  subjectKeyId: Buffer | undefined;
  authorityKeyId: Buffer | undefined;
}

/** The extensions the constructor reads; any other is never decoded. */
const NEEDED_EXTENSIONS = new Set<string>([
  OID.keyUsage,
  OID.authorityInfoAccess,
  OID.tlsFeature,
  OID.basicConstraints,
  OID.extKeyUsage,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
]);

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

export interface AlgorithmId {
  oid: string;
  /** DER of the parameters, when present. */
  params: Buffer | undefined;
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
 * A certificate's fields, read with the strict DER reader (der-reader.ts), the only reader there
 * is. Canonical DER with exactly RFC 5280's fields, else CertificateParseError: `undefined` inside
 * means "not DER or not a certificate" and the caller (parseCertificateDer) says where the DER
 * breaks; a certificate that is DER but breaks a rule RFC 5280 and OpenSSL enforce says which:
 * an explicit v1 or an unknown version, a signature algorithm in tbsCertificate other than the
 * outer one (§4.1.1.2), unused bits in the signature, an explicit critical FALSE, an extension
 * twice (§4.2), a needed extension whose value is not DER, a time not in §4.1.2.5's form.
 * Buffers are views on `der`. test/certificate.test.ts pins these, and
 * test/certificate.fields.test.ts holds the fields to a full pkijs parse.
 */
export function certificateFields(der: Buffer): CertificateFields | undefined {
  const walk: Walk = { der, nodes: 1 };
  const certificate = readRoot(der, TAG.SEQUENCE);
  const top = kids(walk, certificate);
  if (top?.length !== 3) return undefined;
  const [tbs, sigAlg, sig] = top as [Tlv, Tlv, Tlv];
  const fields = tbs.tag === TAG.SEQUENCE ? kids(walk, tbs) : undefined;
  if (!fields) return undefined;
  let i = 0;
  if (fields[0]?.tag === contextTag(0, true)) {
    // version [0] EXPLICIT Version DEFAULT v1: DER leaves v1 out; v2 is 1, v3 is 2.
    const version = kids(walk, fields[i++]);
    const v = version?.length === 1 ? integerBytes(der, version[0]) : undefined;
    if (!v) return undefined;
    if (v.length !== 1 || v[0]! < 1 || v[0]! > 2) {
      throw new CertificateParseError(
        v.length === 1 && v[0] === 0
          ? 'not DER: the certificate encodes version v1, which DER leaves out'
          : `not an X.509 certificate (unknown version ${v.toString('hex')})`,
      );
    }
  }
  const serial = integerBytes(der, fields[i++]);
  const innerAlg = fields[i++];
  if (!serial || !plainAlgorithm(walk, innerAlg)) return undefined;
  const issuerName = fields[i++];
  const validityTlv = fields[i++];
  const subjectName = fields[i++];
  const spki = fields[i++];
  if (!issuerName || !subjectName || !validityTlv || !spki) return undefined;
  // The names' TLVs count against MAX_NODES like every other.
  const issuer = formatNameDer(der, issuerName, (tlv) => kids(walk, tlv));
  const subject = formatNameDer(der, subjectName, (tlv) => kids(walk, tlv));
  const times = validityTlv.tag === TAG.SEQUENCE ? kids(walk, validityTlv) : undefined;
  if (issuer === undefined || subject === undefined || times?.length !== 2) return undefined;
  const notBefore = time(der, times[0]!, 'notBefore');
  const notAfter = time(der, times[1]!, 'notAfter');
  const spkiParts = spki.tag === TAG.SEQUENCE ? kids(walk, spki) : undefined;
  const publicKey = bitString(der, spkiParts?.[1]);
  if (spkiParts?.length !== 2 || !plainAlgorithm(walk, spkiParts[0]) || !publicKey) return undefined;
  // issuerUniqueID [1] and subjectUniqueID [2] (IMPLICIT BIT STRING, skipped), then extensions
  // [3]; nothing else, each at most once.
  if (fields[i]?.tag === contextTag(1, false)) i++;
  if (fields[i]?.tag === contextTag(2, false)) i++;
  const extensionsTag = fields[i]?.tag === contextTag(3, true) ? fields[i++] : undefined;
  if (i !== fields.length) return undefined;

  const algParts = sigAlg.tag === TAG.SEQUENCE ? kids(walk, sigAlg) : undefined;
  const algOid = oidString(der, algParts?.[0]);
  const params = algParts?.[1];
  const signature = bitString(der, sig);
  if (!algParts || algParts.length > 2 || !algOid || !signature) return undefined;
  if (params && !isStrictDer(der, params)) return undefined;
  if (!encoding(der, innerAlg!).equals(encoding(der, sigAlg))) {
    throw new CertificateParseError(
      'not an X.509 certificate (the signature algorithm in tbsCertificate differs from the outer one, RFC 5280 §4.1.1.2)',
    );
  }
  if (signature.unused !== 0) {
    throw new CertificateParseError(
      `not DER: the certificate's signature has ${signature.unused} unused bits`,
    );
  }

  const x: CertificateFields = {
    serial,
    subjectDer: encoding(der, subjectName),
    issuerDer: encoding(der, issuerName),
    subject,
    issuer,
    publicKeyBits: publicKey.bits,
    spkiDer: encoding(der, spki),
    tbsDer: encoding(der, tbs),
    signatureAlgorithm: { oid: algOid, params: params ? encoding(der, params) : undefined },
    signature: signature.bits,
    notBefore,
    notAfter,
    ocspUrls: [],
    caIssuersUrls: [],
    mustStaple: false,
    isCA: false,
    extKeyUsage: undefined,
    digitalSignature: undefined,
    criticalExtensions: [],
    subjectKeyId: undefined,
    authorityKeyId: undefined,
  };
  // Every TLV strict DER (names' values and parameters included), once the fields have said
  // what is wrong with them in their own words.
  if (!isStrictDer(der, certificate!)) return undefined;
  if (!extensionsTag) return x;
  const list = kids(walk, extensionsTag);
  const extensions = list?.length === 1 && list[0]!.tag === TAG.SEQUENCE ? kids(walk, list[0]) : undefined;
  if (!extensions) return undefined;
  const seen = new Set<string>();
  for (const ext of extensions) {
    const parts = ext.tag === TAG.SEQUENCE ? kids(walk, ext) : undefined;
    if (!parts || parts.length < 2 || parts.length > 3) return undefined;
    const oid = oidString(der, parts[0]);
    const critical = parts.length === 3 ? booleanValue(der, parts[1]) : false;
    const value = primitive(der, parts[parts.length - 1], TAG.OCTET_STRING);
    if (!oid || critical === undefined || !value) return undefined;
    if (parts.length === 3 && !critical) {
      throw new CertificateParseError(
        `not DER: extension ${oid} has an explicit critical FALSE, the DEFAULT DER leaves out`,
      );
    }
    if (seen.has(oid))
      throw new CertificateParseError(
        `not an X.509 certificate (extension ${oid} appears twice, RFC 5280 §4.2)`,
      );
    seen.add(oid);
    if (critical) x.criticalExtensions.push(oid);
    if (NEEDED_EXTENSIONS.has(oid) && !readExtension(walk, oid, value, x)) {
      throw new CertificateParseError(`not DER: the value of extension ${oid} is not DER`);
    }
  }
  return x;
}

/**
 * The most TLVs read for one certificate (its tree and its decoded extension values): a bound on
 * the work a hostile certificate can cause; real certificates have a few hundred.
 */
const MAX_NODES = 10_000;

/** The bytes under read and the count of TLVs read so far. */
interface Walk {
  der: Buffer;
  nodes: number;
}

/** A constructed TLV's children, counted against MAX_NODES; undefined past it. */
function kids(walk: Walk, tlv: Tlv | undefined): Tlv[] | undefined {
  const out = childrenOf(walk.der, tlv);
  if (!out) return undefined;
  walk.nodes += out.length;
  return walk.nodes <= MAX_NODES ? out : undefined;
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }, strict DER. */
function plainAlgorithm(walk: Walk, tlv: Tlv | undefined): boolean {
  const parts = tlv?.tag === TAG.SEQUENCE ? kids(walk, tlv) : undefined;
  if (!parts || parts.length < 1 || parts.length > 2 || !oidString(walk.der, parts[0])) return false;
  return parts.length === 1 || isStrictDer(walk.der, parts[1]!);
}

/** notBefore/notAfter in RFC 5280 §4.1.2.5's forms (UTCTime YYMMDDHHMMSSZ, GeneralizedTime YYYYMMDDHHMMSSZ). */
function time(der: Buffer, tlv: Tlv, what: string): Date {
  const utc = tlv.tag === TAG.UTC_TIME;
  if (!utc && tlv.tag !== TAG.GENERALIZED_TIME) {
    throw new CertificateParseError(`not an X.509 certificate (${what} is not a time)`);
  }
  const chars = timeChars(der, tlv, tlv.tag)!;
  const date = utc ? strictUtcTime(chars) : strictGeneralizedTime(chars);
  if (!date) {
    throw new CertificateParseError(
      `${what} ${JSON.stringify(chars.slice(0, 32))} is not a UTC time of the form ${utc ? 'YYMMDDHHMMSSZ' : 'YYYYMMDDHHMMSSZ'}`,
    );
  }
  return date;
}

/**
 * One needed extension's value into `x` (items of other types skipped, a value of another type
 * ignored), once the whole value is strict DER; false when it is not.
 */
function readExtension(walk: Walk, oid: string, value: Buffer, x: CertificateFields): boolean {
  const root = readRoot(value);
  if (!root || !isStrictDer(value, root)) return false;
  const items = root.tag === TAG.SEQUENCE ? childrenOf(value, root)! : [];
  switch (oid) {
    case OID.keyUsage: {
      // KeyUsage BIT STRING: digitalSignature is bit 0, the first octet's high bit.
      const bits = root.tag === TAG.BIT_STRING ? bitString(value, root)!.bits : undefined;
      x.digitalSignature = !!bits && bits.length > 0 && (bits[0]! & 0x80) !== 0;
      return true;
    }
    case OID.authorityInfoAccess:
      // AccessDescription ::= SEQUENCE { accessMethod OID, accessLocation GeneralName }: the
      // uniformResourceIdentifier ([6] IA5String) locations; other forms are skipped.
      for (const desc of items) {
        if (desc.tag !== TAG.SEQUENCE) continue;
        const [method, location] = childrenOf(value, desc)!;
        if (method?.tag !== TAG.OID || location?.tag !== contextTag(6, false)) continue;
        const url = content(value, location).toString('latin1');
        const methodOid = oidString(value, method)!;
        if (methodOid === OID.ocsp) x.ocspUrls.push(url);
        if (methodOid === OID.caIssuers) x.caIssuersUrls.push(url);
      }
      return true;
    case OID.tlsFeature:
      // Minimal INTEGERs (isStrictDer checked): the value 5 is the one octet 05.
      x.mustStaple = items.some((item) => {
        const n = item.tag === TAG.INTEGER ? content(value, item) : undefined;
        return n?.length === 1 && n[0] === STATUS_REQUEST;
      });
      return true;
    case OID.basicConstraints:
      // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }
      x.isCA = items[0]?.tag === TAG.BOOLEAN && booleanValue(value, items[0]) === true;
      return true;
    case OID.extKeyUsage:
      x.extKeyUsage = items.filter((item) => item.tag === TAG.OID).map((item) => oidString(value, item)!);
      return true;
    case OID.subjectKeyIdentifier:
      if (root.tag === TAG.OCTET_STRING) x.subjectKeyId = content(value, root);
      return true;
    case OID.authorityKeyIdentifier:
      // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … }
      if (items[0]?.tag === contextTag(0, false)) x.authorityKeyId = content(value, items[0]);
      return true;
    default:
      return false;
  }
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
