/**
 * The strict DER reader: TLV headers and the few primitive values OCSP responses and
 * certificates need, read straight from the bytes with no tree of objects. It is the only reader
 * of responses and certificates (ocsp-response.ts, certificate.ts): what it refuses is refused.
 *
 * Strict means it accepts only what X.690 §10 (DER) allows and answers `undefined` for anything
 * else, never a guess: single-byte tags (tag numbers below 31), definite lengths in their minimal
 * form (short form below 128, no leading zero octets, at most 4 length octets), children that
 * exactly fill their parent, primitive strings, minimal INTEGERs and OID arcs, BOOLEAN 00/FF.
 * `tlvProblem` says, in a person's terms, why a header was refused (test/der-reader.test.ts).
 */

import { strictGeneralizedTime, strictUtcTime } from './der.js';

/** One TLV: its tag octet and where it, its content and its end lie in the buffer. */
export interface Tlv {
  /** The identifier octet (class, constructed bit and tag number < 31). */
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** Universal tags (with the constructed bit where DER requires it). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A context-specific tag: [n], constructed (EXPLICIT, or IMPLICIT over a constructed type) or not. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** The TLV at `offset`, ending within `limit`; undefined unless its header is strict DER (see tlvProblem). */
export function readTlv(bytes: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers: not used by X.509 or OCSP
  let length = bytes[offset + 1]!;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 octets is more than any buffer here.
    if (count === 0 || count > 4 || contentStart + count > limit) return undefined;
    if (bytes[contentStart] === 0) return undefined; // a leading zero octet: not minimal
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[contentStart++]!;
    if (length < 0x80) return undefined; // long form for a short length: not minimal
  }
  const end = contentStart + length;
  return end <= limit ? { tag, start: offset, contentStart, end } : undefined;
}

/**
 * Why readTlv(bytes, offset, limit) is undefined: where and what, for an error message ("length at
 * byte 2 is in long form for a length under 128 (BER, not DER)").
 */
export function tlvProblem(bytes: Uint8Array, offset: number, limit: number): string {
  if (offset + 2 > limit) return `the data ends inside the element at byte ${offset}`;
  if ((bytes[offset]! & 0x1f) === 0x1f) {
    return `the tag at byte ${offset} has a high tag number, which no OCSP or X.509 field uses`;
  }
  const at = offset + 1;
  const first = bytes[at]!;
  let length = first;
  let contentStart = at + 1;
  if (first === 0x80) return `length at byte ${at} is indefinite (BER, not DER)`;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count > 4 || contentStart + count > limit) return `length at byte ${at} is too long or cut off`;
    if (bytes[contentStart] === 0) return `length at byte ${at} has a leading zero octet (BER, not DER)`;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[contentStart++]!;
    if (length < 0x80) return `length at byte ${at} is in long form for a length under 128 (BER, not DER)`;
  }
  return `length at byte ${at} (${length}) runs past the end of its enclosing element (${Math.max(0, limit - contentStart)} bytes left)`;
}

/**
 * Whether a TLV and everything inside it is strict DER: every header (readTlv), constructed
 * encodings only for SEQUENCE, SET and non-universal tags (DER encodes strings primitive), and
 * BOOLEAN, INTEGER, ENUMERATED, NULL, OID and BIT STRING values in their DER form, times in RFC
 * 5280's (`YYMMDDHHMMSSZ`, `YYYYMMDDHHMMSSZ`). Other primitive
 * values are bytes. For parameters and extension values a field is copied or read from.
 */
export function isStrictDer(bytes: Buffer, tlv: Tlv, depth = 0): boolean {
  if (tlv.tag & 0x20) {
    if ((tlv.tag & 0xc0) === 0 && tlv.tag !== TAG.SEQUENCE && tlv.tag !== TAG.SET) return false;
    if (depth >= MAX_DEPTH) return false;
    const children = childrenOf(bytes, tlv);
    return !!children && children.every((child) => isStrictDer(bytes, child, depth + 1));
  }
  switch (tlv.tag) {
    case TAG.BOOLEAN:
      return booleanValue(bytes, tlv) !== undefined;
    case TAG.INTEGER:
    case TAG.ENUMERATED:
      return integerBytes(bytes, tlv, tlv.tag) !== undefined;
    case TAG.NULL:
      return tlv.end === tlv.contentStart;
    case TAG.OID:
      return oidString(bytes, tlv) !== undefined;
    case TAG.BIT_STRING:
      return bitString(bytes, tlv) !== undefined;
    case TAG.UTC_TIME:
      return strictUtcTime(timeChars(bytes, tlv, tlv.tag)!) !== undefined;
    case TAG.GENERALIZED_TIME:
      return strictGeneralizedTime(timeChars(bytes, tlv, tlv.tag)!) !== undefined;
    default:
      return true;
  }
}
/** How deep isStrictDer follows nested values (parameters and extension values are shallow). */
const MAX_DEPTH = 16;

/** The one TLV that exactly fills `bytes`, with tag `tag` when given. */
export function readRoot(bytes: Uint8Array, tag?: number): Tlv | undefined {
  const tlv = readTlv(bytes, 0, bytes.length);
  if (!tlv || tlv.end !== bytes.length || (tag !== undefined && tlv.tag !== tag)) return undefined;
  return tlv;
}

/** The TLVs that exactly fill a constructed TLV's content; undefined for a primitive or a misfit. */
export function childrenOf(bytes: Uint8Array, parent: Tlv | undefined): Tlv[] | undefined {
  if (!parent || (parent.tag & 0x20) === 0) return undefined;
  const out: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const child = readTlv(bytes, at, parent.end);
    if (!child) return undefined;
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The single TLV inside an EXPLICIT context tag [n]. */
export function explicitInner(bytes: Uint8Array, tlv: Tlv | undefined, n: number): Tlv | undefined {
  if (!tlv || tlv.tag !== contextTag(n, true)) return undefined;
  const inner = childrenOf(bytes, tlv);
  return inner?.length === 1 ? inner[0] : undefined;
}

/** A TLV's whole encoding (header and content) as a view on the same memory. */
export function encoding(bytes: Buffer, tlv: Tlv): Buffer {
  return bytes.subarray(tlv.start, tlv.end);
}

/** A TLV's content as a view on the same memory. */
export function content(bytes: Buffer, tlv: Tlv): Buffer {
  return bytes.subarray(tlv.contentStart, tlv.end);
}

/** A primitive TLV's content, when the tag is `tag`. */
export function primitive(bytes: Buffer, tlv: Tlv | undefined, tag: number): Buffer | undefined {
  return tlv && tlv.tag === tag ? content(bytes, tlv) : undefined;
}

/** An INTEGER's (or ENUMERATED's) content bytes, when minimally encoded (X.690 §8.3.2). */
export function integerBytes(
  bytes: Buffer,
  tlv: Tlv | undefined,
  tag: number = TAG.INTEGER,
): Buffer | undefined {
  const value = primitive(bytes, tlv, tag);
  if (!value || value.length === 0) return undefined;
  if (value.length > 1) {
    const first = value[0]!;
    const second = value[1]!;
    if ((first === 0x00 && second < 0x80) || (first === 0xff && second >= 0x80)) return undefined;
  }
  return value;
}

/** A small non-negative INTEGER or ENUMERATED as a number, up to 3 content octets. */
export function smallInteger(
  bytes: Buffer,
  tlv: Tlv | undefined,
  tag: number = TAG.INTEGER,
): number | undefined {
  const value = integerBytes(bytes, tlv, tag);
  if (!value || value.length > 3 || value[0]! >= 0x80) return undefined;
  let n = 0;
  for (const octet of value) n = n * 256 + octet;
  return n;
}

/** A DER BOOLEAN: 00 or FF, nothing else. */
export function booleanValue(bytes: Buffer, tlv: Tlv | undefined): boolean | undefined {
  const value = primitive(bytes, tlv, TAG.BOOLEAN);
  if (!value || value.length !== 1 || (value[0] !== 0x00 && value[0] !== 0xff)) return undefined;
  return value[0] === 0xff;
}

/**
 * A primitive BIT STRING's value after its unused-bits octet (what asn1js calls valueHexView),
 * with the unused-bits count. DER: 0–7 unused bits, none in an empty string, and those bits zero.
 */
export function bitString(bytes: Buffer, tlv: Tlv | undefined): { bits: Buffer; unused: number } | undefined {
  const value = primitive(bytes, tlv, TAG.BIT_STRING);
  if (!value || value.length === 0) return undefined;
  const unused = value[0]!;
  if (unused > 7 || (unused > 0 && value.length === 1)) return undefined;
  if (unused > 0 && (value[value.length - 1]! & ((1 << unused) - 1)) !== 0) return undefined;
  return { bits: value.subarray(1), unused };
}

/**
 * An OBJECT IDENTIFIER in dotted form, as asn1js renders it (the first subidentifier split into
 * 0./1./2.). Each arc must be minimally encoded and at most 7 octets (49 bits, exact as a number).
 */
export function oidString(bytes: Buffer, tlv: Tlv | undefined): string | undefined {
  const value = primitive(bytes, tlv, TAG.OID);
  if (!value || value.length === 0) return undefined;
  const arcs: number[] = [];
  let arc = 0;
  let octets = 0;
  for (const octet of value) {
    if (octets === 0 && octet === 0x80) return undefined; // a leading 0x80: not minimal
    arc = arc * 128 + (octet & 0x7f);
    octets++;
    if (octets > 7) return undefined;
    if ((octet & 0x80) === 0) {
      arcs.push(arc);
      arc = 0;
      octets = 0;
    }
  }
  if (octets !== 0) return undefined; // the last arc runs off the end
  const first = arcs[0]!;
  const head = first <= 39 ? `0.${first}` : first <= 79 ? `1.${first - 40}` : `2.${first - 80}`;
  return arcs.length === 1 ? head : `${head}.${arcs.slice(1).join('.')}`;
}

/** A time's characters (UTCTime or GeneralizedTime, by `tag`), for the strict parsers in der.ts. */
export function timeChars(bytes: Buffer, tlv: Tlv | undefined, tag: number): string | undefined {
  const value = primitive(bytes, tlv, tag);
  return value ? value.toString('latin1') : undefined;
}
