/**
 * Distinguished names read straight from their DER with the strict reader (der-reader.ts): the
 * "CN=…,O=…,C=…" string shown to people (formatNameDer), and the comparison RFC 5280 §7.1 and
 * OpenSSL make (sameName: X509_NAME_cmp over the canonical encoding, never a formatted string).
 */
import { childrenOf, oidString, readRoot, TAG, type Tlv } from './der-reader.js';

/** Labels for the attribute types a name is shown with; any other type shows as its OID. */
export const NAME_LABELS: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};

/**
 * The string types read one octet per character (latin1): NumericString, PrintableString,
 * TeletexString, VideotexString, IA5String, GraphicString, VisibleString, GeneralString.
 */
const LATIN1_STRING_TAGS = new Set([18, 19, 20, 21, 22, 25, 26, 27]);
const UTF8_STRING = 12;
const UNIVERSAL_STRING = 28;
const BMP_STRING = 30;

/**
 * The string types OpenSSL compares case- and space-insensitively (ASN1_MASK_CANON): UTF8String,
 * PrintableString, TeletexString, IA5String, UniversalString, VisibleString, BMPString. Any other
 * value is compared as its tag and bytes.
 */
const CANONICAL_TAGS = new Set([UTF8_STRING, 19, 20, 22, UNIVERSAL_STRING, 26, BMP_STRING]);

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const UTF16BE = new TextDecoder('utf-16be', { fatal: true, ignoreBOM: true });

/** One attribute of a Name: its type and value TLV, and which RDN (SET) it is in. */
interface Attribute {
  oid: string;
  value: Tlv;
  rdn: number;
}

/**
 * The attributes of a Name (SEQUENCE OF SET OF AttributeTypeAndValue) in encoding order, or
 * undefined when it is not one: an empty RDN, an attribute that is not exactly { OID, value }.
 * An empty Name (a certificate whose identity is in subjectAltName) has none.
 */
function attributesOf(
  bytes: Buffer,
  nameTlv: Tlv,
  children: (tlv: Tlv) => Tlv[] | undefined,
): Attribute[] | undefined {
  if (nameTlv.tag !== TAG.SEQUENCE) return undefined;
  const rdns = children(nameTlv);
  if (!rdns) return undefined;
  const out: Attribute[] = [];
  for (const [rdn, set] of rdns.entries()) {
    if (set.tag !== TAG.SET) return undefined;
    const attributes = children(set);
    if (!attributes || attributes.length === 0) return undefined;
    for (const attribute of attributes) {
      if (attribute.tag !== TAG.SEQUENCE) return undefined;
      const fields = children(attribute);
      if (fields?.length !== 2) return undefined;
      const oid = oidString(bytes, fields[0]);
      if (oid === undefined) return undefined;
      out.push({ oid, value: fields[1]!, rdn });
    }
  }
  return out;
}

/**
 * A Name as people read it: every attribute in encoding order, then reversed (most specific
 * first), `label=value` joined by commas; a value that is not a string shows as `#` and its DER in
 * hex (as openssl does). Undefined when the bytes are not a Name or a string value does not decode
 * (bad UTF-8, an odd-length BMPString), which OpenSSL refuses too.
 */
export function formatNameDer(
  bytes: Buffer,
  nameTlv: Tlv,
  children: (tlv: Tlv) => Tlv[] | undefined = (tlv) => childrenOf(bytes, tlv),
): string | undefined {
  const attributes = attributesOf(bytes, nameTlv, children);
  if (!attributes) return undefined;
  const parts: string[] = [];
  for (const { oid, value } of attributes) {
    const text = isStringTag(value.tag)
      ? stringValueDer(bytes, value)
      : `#${bytes.subarray(value.start, value.end).toString('hex')}`;
    if (text === undefined) return undefined;
    parts.push(`${NAME_LABELS[oid] ?? oid}=${text}`);
  }
  return parts.reverse().join(',');
}

function isStringTag(tag: number): boolean {
  return LATIN1_STRING_TAGS.has(tag) || tag === UTF8_STRING || tag === BMP_STRING || tag === UNIVERSAL_STRING;
}

/**
 * A string TLV's text (UTF8String as UTF-8, BMPString as UTF-16, UniversalString as UTF-32, the
 * others one octet per character), or undefined for another type or a value that does not decode.
 */
function stringValueDer(bytes: Buffer, tlv: Tlv): string | undefined {
  const value = bytes.subarray(tlv.contentStart, tlv.end);
  if (LATIN1_STRING_TAGS.has(tlv.tag)) return value.toString('latin1');
  try {
    if (tlv.tag === UTF8_STRING) return UTF8.decode(value);
    if (tlv.tag === BMP_STRING) return UTF16BE.decode(value);
  } catch {
    return undefined;
  }
  if (tlv.tag === UNIVERSAL_STRING) {
    if (value.length % 4 !== 0) return undefined;
    let text = '';
    for (let i = 0; i < value.length; i += 4) {
      const code = value.readUInt32BE(i);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return undefined;
      text += String.fromCodePoint(code);
    }
    return text;
  }
  return undefined;
}

/**
 * A Name's canonical form for comparison, as OpenSSL builds it (x509_name_canon): per RDN, its
 * attributes with string values of the CANONICAL_TAGS types as text with leading and trailing
 * white space removed, inner runs of it made one space, ASCII letters lower-cased; any other
 * value as its tag and bytes; the attributes of one RDN as a set. Undefined when not a Name.
 */
function canonicalName(bytes: Buffer, nameTlv: Tlv): string | undefined {
  const attributes = attributesOf(bytes, nameTlv, (tlv) => childrenOf(bytes, tlv));
  if (!attributes) return undefined;
  const rdns: string[][] = [];
  for (const { oid, value, rdn } of attributes) {
    let canonical: string;
    if (CANONICAL_TAGS.has(value.tag)) {
      const text = stringValueDer(bytes, value);
      if (text === undefined) return undefined;
      canonical = `s:${text
        .replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '')
        .replace(/[ \t\n\v\f\r]+/g, ' ')
        .replace(/[A-Z]/g, (c) => c.toLowerCase())}`;
    } else {
      canonical = `${value.tag}:${bytes.subarray(value.contentStart, value.end).toString('hex')}`;
    }
    (rdns[rdn] ??= []).push(`${oid}=${JSON.stringify(canonical)}`);
  }
  return rdns.map((set) => set.sort().join('+')).join(',');
}

/**
 * Whether two Names (each its whole DER) are the same name as RFC 5280 §7.1 and OpenSSL's
 * X509_NAME_cmp compare them: the same bytes, or the same canonical form (canonicalName). A
 * multi-valued RDN never equals the same attributes in separate RDNs, nor a NumericString a
 * PrintableString of the same text.
 */
export function sameName(a: Buffer, b: Buffer): boolean {
  if (a.equals(b)) return true;
  const ca = canonicalOf(a);
  return ca !== undefined && ca === canonicalOf(b);
}

/**
 * The canonical form of a whole Name's DER, remembered by its bytes: every response of a fleet
 * names the same responder, and a certificate's subject is compared with each of them.
 */
function canonicalOf(der: Buffer): string | undefined {
  const key = der.toString('latin1');
  let canonical = canonicalMemo.get(key);
  if (canonical === undefined && !canonicalMemo.has(key)) {
    const root = readRoot(der);
    canonical = root && canonicalName(der, root);
    if (canonicalMemo.size >= CANONICAL_MEMO_SIZE) canonicalMemo.clear();
    canonicalMemo.set(key, canonical);
  }
  return canonical;
}
const canonicalMemo = new Map<string, string | undefined>();
/** Names are small; a run sees a handful of issuers and responders. */
const CANONICAL_MEMO_SIZE = 1024;
