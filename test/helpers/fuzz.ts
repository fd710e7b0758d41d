/**
 * Seeded mutation of DER for the fuzz tests: bit flips, truncations, byte insertions and
 * deletions, DER length octets nudged, time characters swapped, one to three stacked. The PRNG is
 * seeded, so every failing case reproduces from its seed and case number.
 */

/** mulberry32: a small seeded PRNG, so every failure reproduces from its seed. */
export function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = (bytes: Buffer, rand: () => number) => { bytes: Buffer; what: string };
const at = (bytes: Buffer, rand: () => number) => Math.floor(rand() * bytes.length);

const MUTATIONS: Mutation[] = [
  (b, rand) => {
    const i = at(b, rand);
    const bit = Math.floor(rand() * 8);
    const out = Buffer.from(b);
    out[i]! ^= 1 << bit;
    return { bytes: out, what: `flip bit ${bit} of byte ${i}` };
  },
  (b, rand) => {
    const n = at(b, rand);
    return { bytes: b.subarray(0, n), what: `truncate to ${n} bytes` };
  },
  (b, rand) => {
    const i = at(b, rand);
    const byte = Math.floor(rand() * 256);
    return {
      bytes: Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]),
      what: `insert ${byte} at ${i}`,
    };
  },
  (b, rand) => {
    const i = at(b, rand);
    return { bytes: Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]), what: `delete byte ${i}` };
  },
  (b, rand) => {
    const i = at(b, rand);
    const byte = Math.floor(rand() * 256);
    const out = Buffer.from(b);
    out[i] = byte;
    return { bytes: out, what: `set byte ${i} to ${byte}` };
  },
  // A DER length octet (the byte after a tag) nudged by ±1 or ±0x80: lengths that lie.
  (b, rand) => {
    const tags = [0x30, 0x04, 0x02, 0x06, 0x03, 0x18, 0x17, 0xa0, 0xa1, 0xa2, 0x0a, 0x05];
    const starts = [...b.keys()].filter((i) => i + 1 < b.length && tags.includes(b[i]!));
    const i = (starts[Math.floor(rand() * starts.length)] ?? 0) + 1;
    const delta = [1, -1, 0x80, -0x80][Math.floor(rand() * 4)]!;
    const out = Buffer.from(b);
    out[i] = (out[i]! + delta) & 0xff;
    return { bytes: out, what: `length octet ${i} ${delta > 0 ? '+' : ''}${delta}` };
  },
  // A character of a GeneralizedTime/UTCTime replaced: local times, offsets, impossible dates.
  (b, rand) => {
    const times = [...b.keys()].filter(
      (i) => (b[i] === 0x18 && b[i + 1] === 15) || (b[i] === 0x17 && b[i + 1] === 13),
    );
    const start = times[Math.floor(rand() * times.length)];
    if (start === undefined) return { bytes: b, what: 'no time to mutate' };
    const i = start + 2 + Math.floor(rand() * b[start + 1]!);
    const chars = '0123456789Z+-. 9';
    const out = Buffer.from(b);
    out[i] = chars.charCodeAt(Math.floor(rand() * chars.length));
    return { bytes: out, what: `time character ${i} set to ${String.fromCharCode(out[i]!)}` };
  },
];

export function mutate(bytes: Buffer, rand: () => number): { bytes: Buffer; what: string } {
  // One to three mutations stacked, so a few reach past the first check that fails.
  let current = { bytes, what: '' };
  const rounds = 1 + Math.floor(rand() * 3);
  for (let r = 0; r < rounds; r++) {
    const next = MUTATIONS[Math.floor(rand() * MUTATIONS.length)]!(current.bytes, rand);
    current = { bytes: next.bytes, what: current.what ? `${current.what}, ${next.what}` : next.what };
  }
  return current;
}
