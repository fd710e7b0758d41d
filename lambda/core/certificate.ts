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
  oidString,
  primitive,
  readRoot,
  TAG,
  timeChars,
  type Tlv,
} from './der-reader.js';
import { formatNameDer, NAME_LABELS, stringValueDer } from './der-name.js';

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
    // The strict DER reader when it understands every byte; asn1js otherwise (and for every error).
    const x = certificateFieldsFast(this.der) ?? certificateFieldsSlow(this.der);
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
   * Whether this certificate's subject is the name `cert` gives as its issuer: the same bytes, or
   * the same attributes and values in other string types (RFC 5280 §7.1 compares names, not
   * encodings). Callers still check a signature, so a loose match can never authorise alone.
   */
  issued(cert: Certificate): boolean {
    return this.subjectDer.equals(cert.issuerDer) || this.subject.toLowerCase() === cert.issuer.toLowerCase();
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

/**
 * The certificate's fields through asn1js's BER tree: the general path, for any input the strict
 * reader (certificateFieldsFast) does not take, and the one that words every error. Throws
 * CertificateParseError, and nothing else, when the bytes are not an X.509 certificate.
 */
export function certificateFieldsSlow(der: Buffer): CertificateFields {
  const x = readCertificate(der);
  // In the order the errors were always found: the names, the validity, then the extensions.
  const subject = formatNameBlock(x.subject);
  const issuer = formatNameBlock(x.issuer);
  const [notBefore, notAfter] = validity(x.validity);
  const ocspUrls: string[] = [];
  const caIssuersUrls: string[] = [];
  let mustStaple = false;
  let isCA = false;
  let extKeyUsage: string[] | undefined;
  let subjectKeyId: Buffer | undefined;
  let authorityKeyId: Buffer | undefined;
  let digitalSignature: boolean | undefined;
  const criticalExtensions: string[] = [];
  for (const ext of x.extensions) {
    if (ext.critical) criticalExtensions.push(ext.oid);
    // Only the extensions read below are decoded: subjectAltName, SCT lists and policies are
    // the bulk of a leaf and are never needed here. A value that does not decode is absent.
    if (!NEEDED_EXTENSIONS.has(ext.oid)) continue;
    const value = decodeValue(ext.value);
    switch (ext.oid) {
      case OID.keyUsage: {
        // KeyUsage BIT STRING: digitalSignature is bit 0, the first octet's high bit.
        const bits = value instanceof asn1js.BitString ? value.valueBlock.valueHexView : undefined;
        digitalSignature = !!bits && bits.length > 0 && (bits[0]! & 0x80) !== 0;
        break;
      }
      case OID.authorityInfoAccess:
        for (const { method, url } of accessDescriptions(value)) {
          if (method === OID.ocsp) ocspUrls.push(url);
          if (method === OID.caIssuers) caIssuersUrls.push(url);
        }
        break;
      case OID.tlsFeature:
        mustStaple = sequenceOf(value, asn1js.Integer)
          .map((item) => item.valueBlock.valueDec)
          .includes(STATUS_REQUEST);
        break;
      case OID.basicConstraints: {
        // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }
        const first = value instanceof asn1js.Sequence ? value.valueBlock.value[0] : undefined;
        isCA = first instanceof asn1js.Boolean && first.valueBlock.value;
        break;
      }
      case OID.extKeyUsage:
        extKeyUsage = sequenceOf(value, asn1js.ObjectIdentifier).map((o) => o.valueBlock.toString());
        break;
      case OID.subjectKeyIdentifier:
        if (value instanceof asn1js.OctetString) subjectKeyId = asBuffer(value.valueBlock.valueHexView);
        break;
      case OID.authorityKeyIdentifier: {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … }
        const keyId = value instanceof asn1js.Sequence ? value.valueBlock.value[0] : undefined;
        if (
          keyId &&
          keyId.idBlock.tagClass === 3 &&
          keyId.idBlock.tagNumber === 0 &&
          !keyId.idBlock.isConstructed
        )
          authorityKeyId = asBuffer((keyId as asn1js.Primitive).valueBlock.valueHexView);
        break;
      }
    }
  }
  return {
    serial: x.serial,
    // The names exactly as encoded, not re-encoded: CertID hashes these bytes.
    subjectDer: asBuffer(x.subject.valueBeforeDecodeView),
    issuerDer: asBuffer(x.issuer.valueBeforeDecodeView),
    subject,
    issuer,
    publicKeyBits: x.publicKeyBits,
    spkiDer: x.spkiDer,
    tbsDer: x.tbsDer,
    signatureAlgorithm: x.signatureAlgorithm,
    signature: x.signature,
    notBefore,
    notAfter,
    ocspUrls,
    caIssuersUrls,
    mustStaple,
    isCA,
    extKeyUsage,
    digitalSignature,
    criticalExtensions,
    subjectKeyId,
    authorityKeyId,
  };
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

interface RawExtension {
  oid: string;
  critical: boolean;
  /** extnValue's content: the DER of the extension's value. */
  value: Uint8Array;
}

/**
 * The fields of an X.509 certificate (RFC 5280 §4.1), read from asn1js's tree directly rather than
 * through pkijs's schema matching (which tries every CHOICE of every GeneralName and was most of a
 * leaf's parse). Every field is checked for its type; a mismatch is "not an X.509 certificate".
 */
function readCertificate(der: Buffer) {
  const tree = decodeTree(der);
  const [tbs, sigAlg, sig] = fieldsOf(tree, 'Certificate', 3);
  const fields = fieldsOf(tbs, 'tbsCertificate', 6);
  let i = 0;
  if (fields[0]!.idBlock.tagClass === 3 && fields[0]!.idBlock.tagNumber === 0) i++; // version [0]
  const serial = typed(fields[i++], asn1js.Integer, 'serialNumber');
  typed(fields[i++], asn1js.Sequence, 'signature');
  const issuer = typed(fields[i++], asn1js.Sequence, 'issuer');
  const validity = typed(fields[i++], asn1js.Sequence, 'validity');
  const subject = typed(fields[i++], asn1js.Sequence, 'subject');
  const spki = typed(fields[i++], asn1js.Sequence, 'subjectPublicKeyInfo');
  const [, publicKey] = fieldsOf(spki, 'subjectPublicKeyInfo', 2);
  const extensions: RawExtension[] = [];
  for (const field of fields.slice(i)) {
    // issuerUniqueID [1], subjectUniqueID [2]: skipped; extensions [3] EXPLICIT SEQUENCE OF Extension.
    if (field.idBlock.tagClass !== 3 || field.idBlock.tagNumber !== 3) continue;
    const [list] = fieldsOf(field, 'extensions', 1);
    for (const ext of fieldsOf(typed(list, asn1js.Sequence, 'extensions'), 'extensions', 0)) {
      const parts = fieldsOf(typed(ext, asn1js.Sequence, 'Extension'), 'Extension', 2);
      const critical =
        parts.length === 3 ? typed(parts[1], asn1js.Boolean, 'critical').valueBlock.value : false;
      extensions.push({
        oid: typed(parts[0], asn1js.ObjectIdentifier, 'extnID').valueBlock.toString(),
        critical,
        value: typed(parts[parts.length - 1], asn1js.OctetString, 'extnValue').valueBlock.valueHexView,
      });
    }
  }
  const alg = fieldsOf(typed(sigAlg, asn1js.Sequence, 'signatureAlgorithm'), 'signatureAlgorithm', 1);
  return {
    serial: asBuffer(serial.valueBlock.valueHexView),
    issuer,
    subject,
    validity,
    publicKeyBits: asBuffer(typed(publicKey, asn1js.BitString, 'subjectPublicKey').valueBlock.valueHexView),
    spkiDer: asBuffer(spki.valueBeforeDecodeView),
    tbsDer: asBuffer(tbs!.valueBeforeDecodeView),
    signatureAlgorithm: {
      oid: typed(alg[0], asn1js.ObjectIdentifier, 'signatureAlgorithm').valueBlock.toString(),
      params: alg[1] ? asBuffer(alg[1].valueBeforeDecodeView) : undefined,
    },
    signature: asBuffer(typed(sig, asn1js.BitString, 'signatureValue').valueBlock.valueHexView),
    extensions,
  };
}

/** The items of a constructed value (a SEQUENCE, an EXPLICIT tag), at least `min` of them. */
function fieldsOf(block: asn1js.AsnType | undefined, what: string, min: number): asn1js.AsnType[] {
  const value = block?.idBlock.isConstructed ? (block as asn1js.Constructed).valueBlock.value : undefined;
  // A constructed string type (2C … for a UTF8String) has a string here, not a list of blocks.
  if (!Array.isArray(value) || value.length < min) {
    throw new CertificateParseError(`not an X.509 certificate (${what} does not match its structure)`);
  }
  return value;
}

function typed<T extends asn1js.AsnType>(
  block: asn1js.AsnType | undefined,
  type: new (...args: never[]) => T,
  what: string,
): T {
  if (!(block instanceof type)) {
    throw new CertificateParseError(`not an X.509 certificate (${what} is not a ${type.name})`);
  }
  return block;
}

/** An extension's value decoded, or undefined when it is not DER. */
function decodeValue(bytes: Uint8Array): asn1js.AsnType | undefined {
  try {
    const asn = asn1js.fromBER(bytes, { parseEmbedded: false });
    return asn.offset === -1 ? undefined : asn.result;
  } catch {
    return undefined;
  }
}

/** The items of a SEQUENCE OF `type` (others skipped); none when `value` is no SEQUENCE. */
function sequenceOf<T extends asn1js.AsnType>(
  value: asn1js.AsnType | undefined,
  type: new (...args: never[]) => T,
): T[] {
  if (!(value instanceof asn1js.Sequence)) return [];
  return value.valueBlock.value.filter((item) => item instanceof type) as T[];
}

/**
 * AuthorityInfoAccess ::= SEQUENCE OF SEQUENCE { accessMethod OID, accessLocation GeneralName }:
 * the uniformResourceIdentifier ([6] IA5String) locations with their method, read from the DER
 * directly (pkijs's GeneralName schema tries every CHOICE, the costliest step of a leaf's parse).
 * Other location forms are skipped; a malformed extension gives no URL.
 */
function accessDescriptions(value: asn1js.AsnType | undefined): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  for (const desc of sequenceOf(value, asn1js.Sequence)) {
    const [method, location] = desc.valueBlock.value;
    if (!(method instanceof asn1js.ObjectIdentifier) || !location) continue;
    const { tagClass, tagNumber, isConstructed } = location.idBlock;
    if (tagClass !== 3 || tagNumber !== 6 || isConstructed) continue;
    const bytes = (location as asn1js.Primitive).valueBlock.valueHexView;
    out.push({ method: method.valueBlock.toString(), url: String.fromCharCode(...bytes) });
  }
  return out;
}

export interface AlgorithmId {
  oid: string;
  /** DER of the parameters, when present. */
  params: Buffer | undefined;
}

export function algorithmId(alg: pkijs.AlgorithmIdentifier): AlgorithmId {
  const params = alg.algorithmParams as asn1js.BaseBlock | undefined;
  return {
    oid: alg.algorithmId,
    params: params && params.toBER ? asBuffer(params.toBER()) : undefined,
  };
}

/**
 * notBefore and notAfter read from the encoded characters, in the forms RFC 5280 §4.1.2.5 allows
 * (UTCTime YYMMDDHHMMSSZ, GeneralizedTime YYYYMMDDHHMMSSZ), not asn1js's lenient reading.
 */
function validity(validitySequence: asn1js.Sequence): [Date, Date] {
  const times = fieldsOf(validitySequence, 'validity', 2);
  return (['notBefore', 'notAfter'] as const).map((what, i) => {
    const block = times[i]!;
    if (!(block instanceof asn1js.UTCTime) && !(block instanceof asn1js.GeneralizedTime)) {
      throw new CertificateParseError(`not an X.509 certificate (${what} is not a time)`);
    }
    const raw = Buffer.from((block as asn1js.UTCTime).valueBlock.valueHexView).toString('latin1');
    const date = block instanceof asn1js.GeneralizedTime ? strictGeneralizedTime(raw) : strictUtcTime(raw);
    if (!date) {
      throw new CertificateParseError(
        `${what} ${JSON.stringify(raw.slice(0, 32))} is not a UTC time of the form ${block instanceof asn1js.GeneralizedTime ? 'YYYYMMDDHHMMSSZ' : 'YYMMDDHHMMSSZ'}`,
      );
    }
    return date;
  }) as [Date, Date];
}

/** A Name (SEQUENCE OF SET OF AttributeTypeAndValue) from the BER tree, as formatName renders it. */
function formatNameBlock(name: asn1js.Sequence): string {
  const parts: string[] = [];
  for (const rdn of name.valueBlock.value) {
    for (const atv of fieldsOf(rdn, 'Name', 0)) {
      const [type, value] = fieldsOf(atv, 'AttributeTypeAndValue', 2);
      const oid = typed(type, asn1js.ObjectIdentifier, 'AttributeType').valueBlock.toString();
      const raw = (value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
      parts.push(`${NAME_LABELS[oid] ?? oid}=${typeof raw === 'string' ? raw : '#'}`);
    }
  }
  return parts.reverse().join(',');
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
 * The fast path: the same fields as certificateFieldsSlow, read with the strict DER reader
 * (der-reader.ts) and no tree of objects. It answers only for a certificate it understands to the
 * last byte, in strict DER, and then EXACTLY what certificateFieldsSlow answers for those bytes;
 * anything else (BER, an odd shape, a string type it does not render, a time RFC 5280 refuses)
 * is `undefined`, and the constructor takes the slow path, which also words every error. Never
 * throws. The equivalence is tested on every shared vector, the test PKI, the bench fleet and a
 * fuzz corpus (test/certificate.fast-path.test.ts).
 *
 * Every TLV asn1js would decode is checked here for what asn1js would make of it, so a
 * certificate asn1js refuses (its node limit included) is never taken.
 */
export function certificateFieldsFast(der: Buffer): CertificateFields | undefined {
  if (der.length > FAST_MAX_BYTES) return undefined;
  const walk: Walk = { der, nodes: 1 };
  const top = kids(walk, readRoot(der, TAG.SEQUENCE));
  if (top?.length !== 3) return undefined;
  const [tbs, sigAlg, sig] = top as [Tlv, Tlv, Tlv];
  const fields = tbs.tag === TAG.SEQUENCE ? kids(walk, tbs) : undefined;
  if (!fields) return undefined;
  let i = 0;
  if (fields[0]?.tag === contextTag(0, true)) {
    // version [0] EXPLICIT INTEGER: read past, as the slow path does.
    const version = kids(walk, fields[i++]);
    if (version?.length !== 1 || !integerBytes(der, version[0])) return undefined;
  }
  const serial = integerBytes(der, fields[i++]);
  if (!serial || !plainAlgorithm(walk, fields[i++])) return undefined;
  const issuerName = fields[i++];
  const validityTlv = fields[i++];
  const subjectName = fields[i++];
  const spki = fields[i++];
  if (!issuerName || !subjectName || !validityTlv || !spki) return undefined;
  // The names' TLVs count against FAST_MAX_NODES like every other.
  const issuer = formatNameDer(der, issuerName, (tlv) => kids(walk, tlv));
  const subject = formatNameDer(der, subjectName, (tlv) => kids(walk, tlv));
  const times = validityTlv.tag === TAG.SEQUENCE ? kids(walk, validityTlv) : undefined;
  const notBefore = timeFast(der, times?.[0]);
  const notAfter = timeFast(der, times?.[1]);
  if (issuer === undefined || subject === undefined || times?.length !== 2 || !notBefore || !notAfter) {
    return undefined;
  }
  const spkiParts = spki.tag === TAG.SEQUENCE ? kids(walk, spki) : undefined;
  const publicKey = bitString(der, spkiParts?.[1]);
  if (spkiParts?.length !== 2 || !plainAlgorithm(walk, spkiParts[0]) || !publicKey) return undefined;
  // issuerUniqueID [1] and subjectUniqueID [2] (IMPLICIT BIT STRING, skipped as the slow path
  // does), then extensions [3]; nothing else, each at most once.
  if (fields[i]?.tag === contextTag(1, false)) i++;
  if (fields[i]?.tag === contextTag(2, false)) i++;
  const extensionsTag = fields[i]?.tag === contextTag(3, true) ? fields[i++] : undefined;
  if (i !== fields.length) return undefined;

  const algParts = sigAlg.tag === TAG.SEQUENCE ? kids(walk, sigAlg) : undefined;
  const algOid = oidString(der, algParts?.[0]);
  const params = algParts?.[1];
  const signature = bitString(der, sig);
  if (!algParts || algParts.length > 2 || !algOid || !signature) return undefined;
  if (params && !plainDer(walk, params, 0)) return undefined;

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
  if (!extensionsTag) return x;
  const list = kids(walk, extensionsTag);
  const extensions = list?.length === 1 && list[0]!.tag === TAG.SEQUENCE ? kids(walk, list[0]) : undefined;
  if (!extensions) return undefined;
  for (const ext of extensions) {
    const parts = ext.tag === TAG.SEQUENCE ? kids(walk, ext) : undefined;
    if (!parts || parts.length < 2 || parts.length > 3) return undefined;
    const oid = oidString(der, parts[0]);
    const critical = parts.length === 3 ? booleanValue(der, parts[1]) : false;
    const value = primitive(der, parts[parts.length - 1], TAG.OCTET_STRING);
    if (!oid || critical === undefined || !value) return undefined;
    if (critical) x.criticalExtensions.push(oid);
    if (NEEDED_EXTENSIONS.has(oid) && !extensionFast(walk, oid, value, x)) return undefined;
  }
  return x;
}

/** Larger DER is left to asn1js (16 MiB is its limit on one value; no certificate comes close). */
const FAST_MAX_BYTES = 1 << 20;
/**
 * The most TLVs the fast path reads for one certificate (its tree and its decoded extension
 * values): asn1js refuses a tree past 10 000 nodes, so staying far below keeps both paths agreed.
 */
const FAST_MAX_NODES = 2000;
/** The longest AIA URL the fast path reads: asn1js spreads a string's bytes into one call. */
const FAST_MAX_STRING = 4096;

/** The bytes under read and the count of TLVs read so far. */
interface Walk {
  der: Buffer;
  nodes: number;
}

/** A constructed TLV's children, counted against FAST_MAX_NODES; undefined past it. */
function kids(walk: Walk, tlv: Tlv | undefined): Tlv[] | undefined {
  const out = childrenOf(walk.der, tlv);
  if (!out) return undefined;
  walk.nodes += out.length;
  return walk.nodes <= FAST_MAX_NODES ? out : undefined;
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }, plain DER. */
function plainAlgorithm(walk: Walk, tlv: Tlv | undefined): boolean {
  const parts = tlv?.tag === TAG.SEQUENCE ? kids(walk, tlv) : undefined;
  if (!parts || parts.length < 1 || parts.length > 2 || !oidString(walk.der, parts[0])) return false;
  return parts.length === 1 || plainDer(walk, parts[1]!, 0);
}

/**
 * Whether a TLV (and all inside it) is strict DER of types asn1js decodes without error and this
 * file knows how asn1js reads: SEQUENCE, SET, context-specific tags, BOOLEAN, INTEGER, BIT
 * STRING, OCTET STRING, NULL, OID and the latin1 and UTF-8 strings. Anything else (times, BMP and
 * universal strings, other tags) is "not plain": the caller answers undefined.
 */
function plainDer(walk: Walk, tlv: Tlv, depth: number): boolean {
  const { der } = walk;
  const tag = tlv.tag;
  if (tag === TAG.SEQUENCE || tag === TAG.SET || (tag & 0xe0) === 0xa0) {
    const children = depth < 8 ? kids(walk, tlv) : undefined;
    return !!children && children.every((child) => plainDer(walk, child, depth + 1));
  }
  if ((tag & 0xe0) === 0x80) return true; // context-specific primitive: kept as bytes
  switch (tag) {
    case TAG.BOOLEAN:
      return booleanValue(der, tlv) !== undefined;
    case TAG.INTEGER:
      return integerBytes(der, tlv) !== undefined;
    case TAG.BIT_STRING:
      return bitString(der, tlv) !== undefined;
    case TAG.OCTET_STRING:
      return true;
    case TAG.NULL:
      return tlv.end === tlv.contentStart;
    case TAG.OID:
      return oidString(der, tlv) !== undefined;
    default:
      return stringValueDer(der, tlv) !== undefined;
  }
}

/** notBefore/notAfter by the same strict parsers as the slow path; undefined when refused. */
function timeFast(der: Buffer, tlv: Tlv | undefined): Date | undefined {
  if (tlv?.tag === TAG.UTC_TIME) {
    const chars = timeChars(der, tlv, TAG.UTC_TIME);
    return chars === undefined ? undefined : strictUtcTime(chars);
  }
  const chars = timeChars(der, tlv, TAG.GENERALIZED_TIME);
  return chars === undefined ? undefined : strictGeneralizedTime(chars);
}

/**
 * One needed extension's value into `x`, as the slow path reads it (the same lenient rules: items
 * of other types skipped, a value of another type ignored), but only once the whole value is
 * plain DER, so asn1js would have decoded it too. False when it is not: the caller gives up.
 */
function extensionFast(walk: Walk, oid: string, value: Buffer, x: CertificateFields): boolean {
  const v: Walk = { der: value, nodes: walk.nodes + 1 };
  const root = readRoot(value);
  if (!root || !plainDer(v, root, 0)) return false;
  walk.nodes = v.nodes;
  const items = root.tag === TAG.SEQUENCE ? childrenOf(value, root)! : [];
  switch (oid) {
    case OID.keyUsage: {
      const bits = root.tag === TAG.BIT_STRING ? bitString(value, root)!.bits : undefined;
      x.digitalSignature = !!bits && bits.length > 0 && (bits[0]! & 0x80) !== 0;
      return true;
    }
    case OID.authorityInfoAccess:
      for (const desc of items) {
        if (desc.tag !== TAG.SEQUENCE) continue;
        const [method, location] = childrenOf(value, desc)!;
        if (method?.tag !== TAG.OID || location?.tag !== contextTag(6, false)) continue;
        const url = stringAsLatin1(value, location);
        if (url === undefined) return false;
        const methodOid = oidString(value, method)!;
        if (methodOid === OID.ocsp) x.ocspUrls.push(url);
        if (methodOid === OID.caIssuers) x.caIssuersUrls.push(url);
      }
      return true;
    case OID.tlsFeature:
      // Minimal INTEGERs (plainDer checked): the value 5 is the one octet 05.
      x.mustStaple = items.some((item) => {
        const n = item.tag === TAG.INTEGER ? content(value, item) : undefined;
        return n?.length === 1 && n[0] === STATUS_REQUEST;
      });
      return true;
    case OID.basicConstraints:
      x.isCA = items[0]?.tag === TAG.BOOLEAN && booleanValue(value, items[0]) === true;
      return true;
    case OID.extKeyUsage:
      x.extKeyUsage = items.filter((item) => item.tag === TAG.OID).map((item) => oidString(value, item)!);
      return true;
    case OID.subjectKeyIdentifier:
      if (root.tag === TAG.OCTET_STRING) x.subjectKeyId = content(value, root);
      return true;
    case OID.authorityKeyIdentifier:
      if (items[0]?.tag === contextTag(0, false)) x.authorityKeyId = content(value, items[0]);
      return true;
    default:
      return false;
  }
}

/** An [6] IA5String URI's bytes as the slow path renders them (String.fromCharCode). */
function stringAsLatin1(der: Buffer, tlv: Tlv): string | undefined {
  return tlv.end - tlv.contentStart > FAST_MAX_STRING ? undefined : content(der, tlv).toString('latin1');
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
    if (err instanceof CertificateParseError && !STRUCTURAL.test(err.message)) throw err;
    throw new CertificateParseError(
      'not a certificate: well-formed DER, but not the structure of an X.509 certificate',
      {
        cause: err,
      },
    );
  }
}
/** The Certificate constructor's messages that say only "this is not a certificate". */
const STRUCTURAL = /^not DER|^not an X\.509 certificate/;
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
