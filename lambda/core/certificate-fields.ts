// A certificate's fields, read from its DER by the strict reader (der-reader.ts).

import { strictGeneralizedTime, strictUtcTime } from './der.js';
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
import { formatNameDer } from './der-name.js';
import { CertificateParseError } from './errors.js';

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

/** TLS Feature value 5 = status_request: the "must-staple" flag (RFC 7633). */
const STATUS_REQUEST = 5;

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

export interface AlgorithmId {
  oid: string;
  /** DER of the parameters, when present. */
  params: Buffer | undefined;
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
  const t = readTbsCertificate(walk, tbs);
  if (!t) return undefined;
  const outer = readOuterSignature(walk, sigAlg, sig, t.innerAlg);
  if (!outer) return undefined;

  const x: CertificateFields = {
    serial: t.serial,
    subjectDer: encoding(der, t.subjectName),
    issuerDer: encoding(der, t.issuerName),
    subject: t.subject,
    issuer: t.issuer,
    publicKeyBits: t.publicKeyBits,
    spkiDer: encoding(der, t.spki),
    tbsDer: encoding(der, tbs),
    signatureAlgorithm: outer.signatureAlgorithm,
    signature: outer.signature,
    notBefore: t.notBefore,
    notAfter: t.notAfter,
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
  if (!t.extensionsTag) return x;
  if (!readExtensions(walk, t.extensionsTag, x)) return undefined;
  return x;
}

/** What readTbsCertificate reads from tbsCertificate, the extensions left undecoded. */
interface TbsCertificate {
  serial: Buffer;
  /** The signature AlgorithmIdentifier inside tbsCertificate, compared with the outer one. */
  innerAlg: Tlv;
  issuerName: Tlv;
  subjectName: Tlv;
  issuer: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  spki: Tlv;
  publicKeyBits: Buffer;
  extensionsTag: Tlv | undefined;
}

/**
 * TBSCertificate ::= SEQUENCE { version [0] EXPLICIT DEFAULT v1, serialNumber, signature,
 * issuer, validity, subject, subjectPublicKeyInfo, issuerUniqueID [1] IMPLICIT OPTIONAL,
 * subjectUniqueID [2] IMPLICIT OPTIONAL, extensions [3] EXPLICIT OPTIONAL }: undefined when it
 * does not decode; CertificateParseError from checkVersion and time.
 */
function readTbsCertificate(walk: Walk, tbs: Tlv): TbsCertificate | undefined {
  const { der } = walk;
  const fields = tbs.tag === TAG.SEQUENCE ? kids(walk, tbs) : undefined;
  if (!fields) return undefined;
  let i = 0;
  if (fields[0]?.tag === contextTag(0, true) && !checkVersion(walk, fields[i++])) return undefined;
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
  return {
    serial,
    innerAlg: innerAlg!,
    issuerName,
    subjectName,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    publicKeyBits: publicKey.bits,
    extensionsTag,
  };
}

/**
 * The outer signatureAlgorithm and signatureValue: undefined when they do not decode;
 * CertificateParseError when the algorithm differs from tbsCertificate's (RFC 5280 §4.1.1.2) or
 * the signature has unused bits.
 */
function readOuterSignature(
  walk: Walk,
  sigAlg: Tlv,
  sig: Tlv,
  innerAlg: Tlv,
): { signatureAlgorithm: AlgorithmId; signature: Buffer } | undefined {
  const { der } = walk;
  const algParts = sigAlg.tag === TAG.SEQUENCE ? kids(walk, sigAlg) : undefined;
  const algOid = oidString(der, algParts?.[0]);
  const params = algParts?.[1];
  const signature = bitString(der, sig);
  if (!algParts || algParts.length > 2 || !algOid || !signature) return undefined;
  if (params && !isStrictDer(der, params)) return undefined;
  if (!encoding(der, innerAlg).equals(encoding(der, sigAlg))) {
    throw new CertificateParseError(
      'not an X.509 certificate (the signature algorithm in tbsCertificate differs from the outer one, RFC 5280 §4.1.1.2)',
    );
  }
  if (signature.unused !== 0) {
    throw new CertificateParseError(
      `not DER: the certificate's signature has ${signature.unused} unused bits`,
    );
  }
  const signatureAlgorithm = { oid: algOid, params: params ? encoding(der, params) : undefined };
  return { signatureAlgorithm, signature: signature.bits };
}

/**
 * version [0] EXPLICIT Version DEFAULT v1: DER leaves v1 out; v2 is 1, v3 is 2. False when it
 * does not decode; CertificateParseError for v1 spelled out or an unknown version.
 */
function checkVersion(walk: Walk, tlv: Tlv | undefined): boolean {
  const version = kids(walk, tlv);
  const v = version?.length === 1 ? integerBytes(walk.der, version[0]) : undefined;
  if (!v) return false;
  if (v.length !== 1 || v[0]! < 1 || v[0]! > 2) {
    throw new CertificateParseError(
      v.length === 1 && v[0] === 0
        ? 'not DER: the certificate encodes version v1, which DER leaves out'
        : `not an X.509 certificate (unknown version ${v.toString('hex')})`,
    );
  }
  return true;
}

/**
 * The extensions [3] into `x`: false when they do not decode; CertificateParseError for an explicit
 * critical FALSE, an extension twice (RFC 5280 §4.2), or a needed extension whose value is not DER.
 */
function readExtensions(walk: Walk, extensionsTag: Tlv, x: CertificateFields): boolean {
  const { der } = walk;
  const list = kids(walk, extensionsTag);
  const extensions = list?.length === 1 && list[0]!.tag === TAG.SEQUENCE ? kids(walk, list[0]) : undefined;
  if (!extensions) return false;
  const seen = new Set<string>();
  for (const ext of extensions) {
    const parts = ext.tag === TAG.SEQUENCE ? kids(walk, ext) : undefined;
    if (!parts || parts.length < 2 || parts.length > 3) return false;
    const oid = oidString(der, parts[0]);
    const critical = parts.length === 3 ? booleanValue(der, parts[1]) : false;
    const value = primitive(der, parts[parts.length - 1], TAG.OCTET_STRING);
    if (!oid || critical === undefined || !value) return false;
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
    if (NEEDED_EXTENSIONS.has(oid) && !readExtension(oid, value, x)) {
      throw new CertificateParseError(`not DER: the value of extension ${oid} is not DER`);
    }
  }
  return true;
}

/**
 * The most TLVs read for one certificate's tree: a bound on the work a hostile certificate can
 * cause; real certificates have a few hundred. A needed extension's value is decoded apart
 * (readExtension): one linear strict-DER pass over bytes the certificate's size cap bounds.
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
function readExtension(oid: string, value: Buffer, x: CertificateFields): boolean {
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
