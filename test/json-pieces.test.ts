/**
 * The JSON run report, written in pieces: joined, the pieces are byte for byte what
 * JSON.stringify(value, null, 2) gives (`renew --json`), and each piece but the last ends a line;
 * compact, what JSON.stringify(value) gives (the Lambda's report object).
 */
import { describe, expect, it } from 'vitest';
import { jsonPieces } from '../lambda/report/json-pieces.js';

const row = (i: number) => ({
  key: `dir/leaf-${i}.pem`,
  name: `dir/leaf-${i}.pem`,
  staple: `dir/leaf-${i}.ocsp`,
  action: i % 5 ? 'renewed' : 'failed',
  reason: i === 3 ? 'fetch "x":\nréponse 503 \u2028' : 'fresh',
  stage: i % 5 ? undefined : 'fetch',
  thisUpdate: '2026-11-30T11:00:00.000Z',
  nested: { list: [1, { a: null }], empty: [], none: {} },
  mustStaple: false,
});

const cases: Array<[string, object]> = [
  [
    'a report of 5 000 rows',
    {
      startedAt: 'x',
      leastValidityHours: undefined,
      counts: { renewed: 4000 },
      results: Array.from({ length: 5000 }, (_, i) => row(i)),
      notReached: ['a', 'b'],
    },
  ],
  ['a report with no rows', { startedAt: 'x', dryRun: true, results: [], notReached: [] }],
  ['an array last, of scalars and nulls', { n: 1, list: [1, 'two', null, undefined, false] }],
  ['an empty object', {}],
  ['only undefined and functions', { a: undefined, b: () => 1 }],
];

describe('jsonPieces', () => {
  it.each(cases)('should give what JSON.stringify gives for %s', (_name, value) => {
    const pieces = [...jsonPieces(value, 2)];
    expect(pieces.join('')).toBe(JSON.stringify(value, null, 2));
    for (const piece of pieces.slice(0, -1)) expect(piece.endsWith('\n')).toBe(true);
  });

  it.each(cases)('should give what compact JSON.stringify gives for %s', (_name, value) => {
    expect([...jsonPieces(value)].join('')).toBe(JSON.stringify(value));
  });

  it('should cut a large report into pieces of about 64 KiB', () => {
    const pieces = [...jsonPieces(cases[0]![1], 2)];
    expect(pieces.length).toBeGreaterThan(10);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThan(64 * 1024 + 2048);
  });
});
