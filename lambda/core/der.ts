import { createHash } from 'node:crypto';

/** Bytes as upper-case hex, the way openssl prints serials and key hashes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex').toUpperCase();
}

/** An INTEGER's content bytes as openssl renders a serial: upper-case hex, no leading zero octets. */
export function serialHex(content: Uint8Array): string {
  let start = 0;
  while (start < content.length - 1 && content[start] === 0) start++;
  return toHex(content.subarray(start));
}

export function asBuffer(view: ArrayBuffer | Uint8Array): Buffer {
  return view instanceof Uint8Array
    ? Buffer.from(view.buffer, view.byteOffset, view.byteLength)
    : Buffer.from(view);
}

/**
 * A copy in memory of its own, exactly its size. `Buffer.from(bytes)` copies a small input into
 * Node's shared Buffer pool (slabs of `Buffer.poolSize`: 64 KiB on Node 24, 8 KiB on Node 20), and
 * one slice kept alive keeps its whole slab: a long-lived copy (a cached certificate) is made here.
 */
export function ownedCopy(bytes: Uint8Array): Buffer {
  return asBuffer(new Uint8Array(bytes));
}

/** A copy as a standalone ArrayBuffer, the shape asn1js wants. */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const HASH_OIDS: Record<HashName, string> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};

export function hashNameForOid(oid: string): HashName | undefined {
  return (Object.keys(HASH_OIDS) as HashName[]).find((name) => HASH_OIDS[name] === oid);
}

export function digest(hash: HashName, data: Uint8Array): Buffer {
  return createHash(hash).update(data).digest();
}

interface PemBlock {
  label: string;
  der: Buffer;
}

/**
 * A PEM boundary line's marker: `-----BEGIN <label>-----` or `-----END <label>-----`. Matched in
 * linear time: a label is a run of [A-Z0-9 ] with no `-`, so no two attempts scan the same label.
 */
const PEM_MARKER = /-----(BEGIN|END) ([A-Z0-9 ]+)-----/g;

/**
 * Every PEM block in a text, whatever its label (CRLF and stray whitespace tolerated). Callers pick
 * the labels they want; the others (private keys above all) are dropped here and never copied.
 *
 * Linear in the text: one pass finds the markers, a backward pass gives each BEGIN the next END
 * of its label, then blocks are taken from the first BEGIN that has one, going on after its END
 * (what the lazy regex `BEGIN (L)…?END \1` found, which was quadratic: every BEGIN without its END
 * searched to the end of the text — 27 s for 1 MiB of `-----BEGIN A-----`).
 */
export function pemBlocks(text: string): PemBlock[] {
  const markers = [...text.matchAll(PEM_MARKER)].map((m) => ({
    begin: m[1] === 'BEGIN',
    label: m[2]!,
    start: m.index,
    end: m.index + m[0].length,
  }));
  const nextEnd = new Array<number>(markers.length).fill(-1);
  const lastEnd = new Map<string, number>();
  for (let i = markers.length - 1; i >= 0; i--) {
    const m = markers[i]!;
    if (m.begin) nextEnd[i] = lastEnd.get(m.label) ?? -1;
    else lastEnd.set(m.label, i);
  }
  const blocks: PemBlock[] = [];
  for (let i = 0; i < markers.length; i++) {
    const m = markers[i]!;
    const j = nextEnd[i]!;
    if (!m.begin || j < 0) continue;
    const body = text.slice(m.end, markers[j]!.start).replace(/[^A-Za-z0-9+/=]/g, '');
    blocks.push({ label: m.label, der: Buffer.from(body, 'base64') });
    i = j;
  }
  return blocks;
}

export function looksLikePem(bytes: Uint8Array): boolean {
  return asBuffer(bytes).includes('-----BEGIN ');
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/**
 * A DER GeneralizedTime's characters as a Date, only in the one form RFC 5280 §4.1.2.5.2 allows:
 * `YYYYMMDDHHMMSSZ` (UTC, seconds, no fraction). Undefined for anything else, including dates
 * that do not exist (Feb 30) — asn1js reads a time without `Z` as local time and worse.
 */
export function strictGeneralizedTime(text: string): Date | undefined {
  const m = GENERALIZED_TIME.exec(text);
  return m ? utcDate(Number(m[1]), m[2]!, m[3]!, m[4]!, m[5]!, m[6]!) : undefined;
}

/** A DER UTCTime as a Date, only as `YYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.1: YY < 50 is 20YY). */
export function strictUtcTime(text: string): Date | undefined {
  const m = UTC_TIME.exec(text);
  if (!m) return undefined;
  const yy = Number(m[1]);
  return utcDate(yy < 50 ? 2000 + yy : 1900 + yy, m[2]!, m[3]!, m[4]!, m[5]!, m[6]!);
}

function utcDate(year: number, mo: string, d: string, h: string, mi: string, s: string): Date | undefined {
  const [month, day, hour, minute, second] = [mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls Feb 30 over to March: a date that does not exist fails the round trip.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    return undefined;
  }
  return date;
}

/**
 * Where and why bytes are not one well-formed DER element, in a person's terms, or undefined when
 * the encoding is sound (then the content, not the encoding, is wrong): lengths that do not add
 * up or are not in their shortest form, constructed strings, padded INTEGERs, BOOLEANs other than
 * 00/FF. It walks the tag-length-value structure of constructed elements (not inside OCTET STRINGs).
 *
 * @example derProblem(Buffer.from('3005020101', 'hex')) // 'DER decoding failed at byte 1: …'
 */
export function derProblem(bytes: Uint8Array): string | undefined {
  const fail = (at: number, why: string) => `DER decoding failed at byte ${at}: ${why}`;
  // Universal types that DER always encodes primitive (strings and times included, X.690 §10.2).
  const PRIMITIVE_ONLY = new Set([
    1, 2, 3, 4, 5, 6, 9, 10, 12, 13, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30,
  ]);
  /** Walks the elements in [start, end); returns a problem or undefined. */
  const walk = (start: number, end: number, depth: number): string | undefined => {
    let at = start;
    while (at < end) {
      const tagAt = at;
      const tag = bytes[at++]!;
      if ((tag & 0x1f) === 0x1f) {
        // High tag number: base-128 digits, the last without the top bit.
        while (at < end && bytes[at]! & 0x80) at++;
        if (at >= end) return fail(tagAt, 'the data ends inside a tag');
        at++;
      }
      if (at >= end) return fail(tagAt, 'the data ends before the length');
      const first = bytes[at++]!;
      let length = first;
      if (first === 0x80) return fail(at - 1, 'indefinite length (BER, not DER)');
      if (first > 0x80) {
        const n = first & 0x7f;
        if (n > 4 || at + n > end) return fail(at - 1, 'the length field is too long or cut off');
        if (bytes[at] === 0) return fail(at - 1, 'a length with a leading zero octet (BER, not DER)');
        length = 0;
        for (let i = 0; i < n; i++) length = length * 256 + bytes[at++]!;
        if (length < 0x80) return fail(at - 1 - n, 'a long-form length under 128 (BER, not DER)');
      }
      if (at + length > end) {
        return fail(tagAt, `an element of ${length} bytes runs past the end of the data (${end - at} left)`);
      }
      const constructed = (tag & 0x20) !== 0;
      if (constructed && (tag & 0xc0) === 0 && PRIMITIVE_ONLY.has(tag & 0x1f)) {
        return fail(tagAt, 'a constructed encoding where DER requires a primitive one');
      }
      const value = bytes.subarray(at, at + length);
      if (tag === 0x02 || tag === 0x0a) {
        const padded =
          length > 1 && ((value[0] === 0 && value[1]! < 0x80) || (value[0] === 0xff && value[1]! >= 0x80));
        if (length === 0 || padded) return fail(tagAt, 'an INTEGER not in its minimal form (BER, not DER)');
      }
      if (tag === 0x01 && (length !== 1 || (value[0] !== 0 && value[0] !== 0xff))) {
        return fail(tagAt, 'a BOOLEAN other than 00 or FF (BER, not DER)');
      }
      if (tag === 0x05 && length !== 0) return fail(tagAt, 'a NULL with content');
      if (constructed && depth < 64) {
        const inner = walk(at, at + length, depth + 1);
        if (inner) return inner;
      }
      at += length;
      if (depth === 0 && at < end) return fail(at, `${end - at} bytes of trailing data after the element`);
    }
    if (depth === 0 && start === end) return fail(0, 'the data is empty');
    return undefined;
  };
  return walk(0, bytes.length, 0);
}

/** One DER element: tag, definite length (short or long form, up to 16 MiB), content. */
export function derElement(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
