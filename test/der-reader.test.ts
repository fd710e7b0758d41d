/**
 * The strict DER reader (lambda/core/der-reader.ts) refuses every encoding DER does not allow
 * (X.690 §10: definite minimal lengths, low tag numbers, minimal INTEGERs and OID arcs, BOOLEAN
 * 00/FF, BIT STRING padding) with undefined, and reads the allowed forms right.
 */
import { describe, expect, it } from 'vitest';
import {
  bitString,
  booleanValue,
  childrenOf,
  explicitInner,
  integerBytes,
  isStrictDer,
  oidString,
  readRoot,
  readTlv,
  smallInteger,
  TAG,
  timeChars,
  tlvProblem,
} from '../lambda/core/der-reader.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
/** The reader's result for one whole TLV given in hex, through `read`. */
const on = <T>(h: string, read: (b: Buffer, tlv: ReturnType<typeof readRoot>) => T): T => {
  const b = hex(h);
  return read(b, readRoot(b));
};

describe('der-reader: TLV headers', () => {
  it('reads short and long definite lengths', () => {
    expect(readRoot(hex('0403 010203'))).toEqual({ tag: 0x04, start: 0, contentStart: 2, end: 5 });
    const long = Buffer.concat([hex('0481 80'), Buffer.alloc(0x80)]);
    expect(readRoot(long)).toEqual({ tag: 0x04, start: 0, contentStart: 3, end: 0x83 });
    const longer = Buffer.concat([hex('0482 0100'), Buffer.alloc(0x100)]);
    expect(readRoot(longer)).toEqual({ tag: 0x04, start: 0, contentStart: 4, end: 0x104 });
  });

  it('refuses the indefinite length 0x80 (BER)', () => {
    expect(readRoot(hex('3080 0500 0000'))).toBeUndefined();
    expect(readTlv(hex('3080 0500 0000'), 0, 6)).toBeUndefined();
  });

  it('refuses the long form for a length below 128', () => {
    expect(readRoot(hex('0481 03 010203'))).toBeUndefined();
    expect(readRoot(Buffer.concat([hex('0481 7f'), Buffer.alloc(0x7f)]))).toBeUndefined();
  });

  it('refuses a leading zero length octet', () => {
    expect(readRoot(Buffer.concat([hex('0482 0080'), Buffer.alloc(0x80)]))).toBeUndefined();
  });

  it('refuses more than 4 length octets and a length running past the end', () => {
    expect(readRoot(hex('0485 0100000000'))).toBeUndefined();
    expect(readRoot(hex('0404 010203'))).toBeUndefined();
    expect(readRoot(hex('04'))).toBeUndefined();
  });

  it('refuses high tag numbers (0x1f form)', () => {
    expect(readRoot(hex('1f20 01 00'))).toBeUndefined();
    expect(readRoot(hex('9f20 01 00'))).toBeUndefined();
  });

  it('refuses trailing bytes after the root and a root of another tag', () => {
    expect(readRoot(hex('0500 00'))).toBeUndefined();
    expect(readRoot(hex('0500'), TAG.SEQUENCE)).toBeUndefined();
    expect(readRoot(hex('0500'), TAG.NULL)).toEqual({ tag: 0x05, start: 0, contentStart: 2, end: 2 });
  });
});

describe('der-reader: children', () => {
  it('reads the children that exactly fill a constructed TLV', () => {
    const b = hex('3006 0201 05 0401 ff');
    expect(childrenOf(b, readRoot(b))).toEqual([
      { tag: 0x02, start: 2, contentStart: 4, end: 5 },
      { tag: 0x04, start: 5, contentStart: 7, end: 8 },
    ]);
    expect(childrenOf(hex('3000'), readRoot(hex('3000')))).toEqual([]);
  });

  it('refuses children that do not fill the parent, or run past it', () => {
    const runs = hex('3005 020105 0401'); // the second child claims 1 byte, none left in the parent
    expect(readRoot(runs)).toBeDefined();
    expect(childrenOf(runs, readRoot(runs))).toBeUndefined();
    const over = hex('3004 020105 04'); // the second child's header is cut by the parent's end
    expect(childrenOf(over, readRoot(over))).toBeUndefined();
    const past = hex('3005 020105 0402ff'); // children one byte longer than the parent
    expect(readRoot(past)).toBeUndefined();
    const inner = hex('3006 3003 0201 05 00'); // the inner SEQUENCE ends before its parent does
    expect(childrenOf(inner, readRoot(inner))).toBeUndefined();
  });

  it('refuses the children of a primitive TLV, and reads an EXPLICIT tag holding exactly one', () => {
    expect(childrenOf(hex('0400'), readRoot(hex('0400')))).toBeUndefined();
    expect(on('a003 020102', (b, t) => explicitInner(b, t, 0))).toEqual({
      tag: 0x02,
      start: 2,
      contentStart: 4,
      end: 5,
    });
    expect(on('a003 020102', (b, t) => explicitInner(b, t, 1))).toBeUndefined();
    expect(on('a006 020102 020102', (b, t) => explicitInner(b, t, 0))).toBeUndefined();
    expect(on('8003 020102', (b, t) => explicitInner(b, t, 0))).toBeUndefined();
  });
});

describe('der-reader: values', () => {
  it('INTEGER: minimal encodings only', () => {
    expect(on('0201 7f', integerBytes)).toEqual(hex('7f'));
    expect(on('0202 0080', integerBytes)).toEqual(hex('0080'));
    expect(on('0202 ff7f', integerBytes)).toEqual(hex('ff7f'));
    expect(on('0202 007f', integerBytes)).toBeUndefined();
    expect(on('0202 ff80', integerBytes)).toBeUndefined();
    expect(on('0200', integerBytes)).toBeUndefined();
    expect(on('0a01 05', integerBytes)).toBeUndefined(); // an ENUMERATED is not an INTEGER…
    expect(on('0a01 05', (b, t) => integerBytes(b, t, TAG.ENUMERATED))).toEqual(hex('05')); // …unless asked
    expect(on('0203 010000', smallInteger)).toBe(65536);
    expect(on('0201 80', smallInteger)).toBeUndefined(); // negative
    expect(on('0204 01000000', smallInteger)).toBeUndefined(); // 4 octets: asn1js reads those as 0
    expect(on('0205 0100000000', smallInteger)).toBeUndefined(); // more than 4 octets
  });

  it('BOOLEAN: 00 and FF only', () => {
    expect(on('0101 ff', booleanValue)).toBe(true);
    expect(on('0101 00', booleanValue)).toBe(false);
    expect(on('0101 01', booleanValue)).toBeUndefined();
    expect(on('0102 ffff', booleanValue)).toBeUndefined();
    expect(on('0100', booleanValue)).toBeUndefined();
  });

  it('OBJECT IDENTIFIER: minimal arcs that end inside the value', () => {
    expect(on('0603 550403', oidString)).toBe('2.5.4.3');
    expect(on('0608 2b06010505073001', oidString)).toBe('1.3.6.1.5.5.7.48.1');
    expect(on('0609 608648016503040201', oidString)).toBe('2.16.840.1.101.3.4.2.1');
    expect(on('0601 27', oidString)).toBe('0.39');
    expect(on('0602 8837', oidString)).toBe('2.999');
    expect(on('0604 55 80 8104', oidString)).toBeUndefined(); // an arc with a leading 0x80 octet
    expect(on('0602 8001', oidString)).toBeUndefined(); // the same in the first arc
    expect(on('0603 550483', oidString)).toBeUndefined(); // the last arc runs off the end
    expect(on('0600', oidString)).toBeUndefined();
    expect(on('0609 55 ffffffffffffff7f', oidString)).toBeUndefined(); // an arc over 7 octets
  });

  it('BIT STRING: 0–7 unused bits, zero padding, none in an empty string', () => {
    expect(on('0303 00 abcd', bitString)).toEqual({ bits: hex('abcd'), unused: 0 });
    expect(on('0302 04 f0', bitString)).toEqual({ bits: hex('f0'), unused: 4 });
    expect(on('0301 00', bitString)).toEqual({ bits: hex(''), unused: 0 });
    expect(on('0302 08 00', bitString)).toBeUndefined(); // more than 7 unused bits
    expect(on('0302 04 f8', bitString)).toBeUndefined(); // a padding bit set
    expect(on('0301 03', bitString)).toBeUndefined(); // unused bits in an empty string
    expect(on('0300', bitString)).toBeUndefined();
    expect(on('2303 030100', bitString)).toBeUndefined(); // constructed (BER)
  });

  it('times: the characters of the tag asked for', () => {
    const gt = '180f 3230323430313031303030303030 5a';
    expect(on(gt, (b, t) => timeChars(b, t, TAG.GENERALIZED_TIME))).toBe('20240101000000Z');
    expect(on(gt, (b, t) => timeChars(b, t, TAG.UTC_TIME))).toBeUndefined();
  });
});

describe('der-reader: why a header is refused, and whole elements', () => {
  it("tlvProblem names the byte and the rule, in a person's terms", () => {
    const why = (h: string) => tlvProblem(hex(h), 0, hex(h).length);
    expect(why('30')).toBe('the data ends inside the element at byte 0');
    expect(why('1f01 00')).toMatch(/^the tag at byte 0 has a high tag number/);
    expect(why('3080 0000')).toBe('length at byte 1 is indefinite (BER, not DER)');
    expect(why('3081 05 0000000000')).toBe(
      'length at byte 1 is in long form for a length under 128 (BER, not DER)',
    );
    expect(why('3082 0080' + '00'.repeat(128))).toBe(
      'length at byte 1 has a leading zero octet (BER, not DER)',
    );
    expect(why('3085 0100000000')).toBe('length at byte 1 is too long or cut off');
    expect(why('3005 00')).toBe(
      'length at byte 1 (5) runs past the end of its enclosing element (1 bytes left)',
    );
  });

  it('isStrictDer checks every TLV inside: constructed strings, padded INTEGERs, bad times refused', () => {
    const strict = (h: string) => isStrictDer(hex(h), readRoot(hex(h))!);
    expect(strict('300a 0500 020101 0101ff 0400')).toBe(true);
    expect(strict('300a a003 020101 8003 616263')).toBe(true); // context tags, constructed and not
    expect(strict('3004 02020001')).toBe(false); // a padded INTEGER
    expect(strict('3003 010101')).toBe(false); // BOOLEAN 01
    expect(strict('3004 24020400')).toBe(false); // a constructed OCTET STRING
    expect(strict('3004 0c020000'.replace('0c02', '2c02'))).toBe(false); // a constructed UTF8String
    expect(strict('3003 050100')).toBe(false); // NULL with content
    expect(strict('300f 170d 3234303130313030303030305a')).toBe(true);
    expect(strict('300f 170d 3234313330313030303030305a')).toBe(false); // month 13
  });
});
