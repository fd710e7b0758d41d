/**
 * A distinguished name formatted straight from its DER, with the strict reader (der-reader.ts):
 * the same "CN=…,O=…,C=…" string formatName gives for the pkijs object, or undefined for anything
 * that reading could render differently, so the caller takes the asn1js path instead.
 */
import { childrenOf, oidString, TAG, type Tlv } from './der-reader.js';

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
 * The string types asn1js decodes one octet per character (String.fromCharCode, i.e. latin1):
 * NumericString, PrintableString, TeletexString, VideotexString, IA5String, GraphicString,
 * VisibleString, GeneralString, CharacterString. UTF8String (12) is decoded apart; BMPString,
 * UniversalString, the times and every other type are left to the asn1js path.
 */
const LATIN1_STRING_TAGS = new Set([18, 19, 20, 21, 22, 25, 26, 27, 29]);

/** asn1js decodes a UTF8String with exactly this decoder (a BOM is kept; bad UTF-8 is refused here). */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * asn1js spreads a string value's octets as call arguments (String.fromCharCode.apply), which
 * fails for very long values; names never come near this, so anything longer goes the slow way.
 */
const MAX_VALUE_OCTETS = 4096;

/**
 * A Name (SEQUENCE OF SET OF AttributeTypeAndValue) as formatName renders it: every attribute in
 * encoding order, then reversed (most specific first), `label=value` joined by commas.
 * Undefined for an empty Name or RDN, an attribute that is not exactly { OID, value }, or a value
 * that is not a primitive string of the types above (formatName would print `#` or another decoding).
 */
export function formatNameDer(
  bytes: Buffer,
  nameTlv: Tlv,
  children: (tlv: Tlv) => Tlv[] | undefined = (tlv) => childrenOf(bytes, tlv),
): string | undefined {
  if (nameTlv.tag !== TAG.SEQUENCE) return undefined;
  const rdns = children(nameTlv);
  if (!rdns || rdns.length === 0) return undefined;
  const parts: string[] = [];
  for (const rdn of rdns) {
    if (rdn.tag !== TAG.SET) return undefined;
    const attributes = children(rdn);
    if (!attributes || attributes.length === 0) return undefined;
    for (const attribute of attributes) {
      if (attribute.tag !== TAG.SEQUENCE) return undefined;
      const fields = children(attribute);
      if (fields?.length !== 2) return undefined;
      const oid = oidString(bytes, fields[0]);
      const value = stringValueDer(bytes, fields[1]!);
      if (oid === undefined || value === undefined) return undefined;
      parts.push(`${NAME_LABELS[oid] ?? oid}=${value}`);
    }
  }
  return parts.reverse().join(',');
}

/**
 * A string TLV's text as asn1js decodes it (`valueBlock.value`), or undefined for any other type,
 * bad UTF-8, or a value too long for asn1js's decoding.
 */
export function stringValueDer(bytes: Buffer, tlv: Tlv): string | undefined {
  if (tlv.end - tlv.contentStart > MAX_VALUE_OCTETS) return undefined;
  const value = bytes.subarray(tlv.contentStart, tlv.end);
  if (LATIN1_STRING_TAGS.has(tlv.tag)) return value.toString('latin1');
  if (tlv.tag !== TAG.UTF8_STRING) return undefined;
  try {
    return UTF8.decode(value);
  } catch {
    return undefined;
  }
}
