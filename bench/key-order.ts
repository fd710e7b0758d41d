/**
 * The listing's sort, side by side in one run: `localeCompare` (the order run() used) against
 * compareKeys (code units, as `<` compares: what run() uses now), on N realistic certificate
 * keys (default 10^6) in a seeded random order. Each round sorts a fresh copy of the same array
 * with each comparator, alternating which goes first; the median and the fastest of the rounds
 * are printed, and how many positions the two orders differ in.
 *
 *   npx tsx bench/key-order.ts [--n 1000000] [--rounds 5]
 *
 * The keys look like a platform team's S3 prefix: 80 % under a tenant directory, host names with
 * a service word, a number and a domain, a few with upper case or `_`, `.pem` or `.crt`.
 */
import { parseArgs } from 'node:util';
import { compareKeys } from '../lambda/core/key-order.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' } },
});
const N = Number(values.n);
const ROUNDS = Number(values.rounds);

let seed = 42;
const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const WORDS = [
  'mail',
  'www',
  'api',
  'smtp',
  'imap',
  'vpn',
  'edge',
  'shop',
  'login',
  'cdn',
  'mx1',
  'Mail',
  'cert_01',
];
const DOMAINS = ['example.com', 'example.net', 'corp.example.org', 'tenant.example.io'];

const objects = Array.from({ length: N }, () => {
  const host = `${pick(WORDS)}-${Math.floor(random() * 1e6)}.${pick(DOMAINS)}${random() < 0.9 ? '.pem' : '.crt'}`;
  const tenant = `tenant-${String(Math.floor(random() * 400)).padStart(4, '0')}`;
  return { key: random() < 0.8 ? `${tenant}/${host}` : host, tag: '"0123456789abcdef0123456789abcdef"' };
});

type Entry = (typeof objects)[number];
const comparators: Record<string, (a: Entry, b: Entry) => number> = {
  localeCompare: (a, b) => a.key.localeCompare(b.key),
  'code units': (a, b) => compareKeys(a.key, b.key), // what run() sorts with now
};

const times = new Map<string, number[]>(Object.keys(comparators).map((name) => [name, []]));
const names = Object.keys(comparators);
// One warm-up sort each (ICU's collator is built on first use), not counted.
for (const name of names) objects.slice(0, 10_000).sort(comparators[name]);
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const name of order) {
    const copy = objects.slice();
    const start = process.hrtime.bigint();
    copy.sort(comparators[name]);
    times.get(name)!.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
}

const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
console.log(`node ${process.version}, N = ${N}, ${ROUNDS} rounds, LANG=${process.env.LANG ?? ''}`);
for (const name of names) {
  const list = times.get(name)!;
  console.log(
    `${name.padEnd(14)} median ${median(list).toFixed(0).padStart(6)} ms   fastest ${Math.min(...list)
      .toFixed(0)
      .padStart(6)} ms`,
  );
}
const byLocale = objects
  .slice()
  .sort(comparators.localeCompare)
  .map((o) => o.key);
const byCodeUnit = objects
  .slice()
  .sort(comparators['code units'])
  .map((o) => o.key);
console.log(`positions where the orders differ: ${byLocale.filter((k, i) => k !== byCodeUnit[i]).length}`);
