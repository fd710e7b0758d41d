/**
 * A strict DER reader for the hot path: TLV headers and the few primitive values OCSP responses
 * and certificates need, read straight from the bytes with no tree of objects.
 *
 * Strict means it accepts only what X.690 §10 (DER) allows and answers `undefined` for anything
 * else, never a guess: single-byte tags (tag numbers below 31), definite lengths in their minimal
 * form (short form below 128, no leading zero octets, at most 4 length octets), children that
 * exactly fill their parent, primitive strings, minimal INTEGERs and OID arcs, BOOLEAN 00/FF.
 *
 * Callers treat `undefined` as "not the plain DER this reader is for" and take the general path
 * (asn1js), so the reader may refuse anything it is unsure of without changing a result. The
 * equivalence of the two paths is tested field for field on every shared vector and on a fuzz
 * corpus (test/ocsp-response.fast-path.test.ts, test/certificate.fast-path.test.ts;
 * the reader itself in test/der-reader.test.ts).
 */

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

/** The TLV at `offset`, ending within `limit`; undefined unless its header is strict DER. */
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

/**
 * A small non-negative INTEGER or ENUMERATED as a number, up to 3 content octets: asn1js's
 * `valueDec` reads 1–3 octets and calls anything longer 0, so a longer value is left to it.
 */
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
