/**
 * The order of certificate keys (core/key-order.ts): UTF-16 code units, the same whatever the
 * host's locale. `localeCompare` made it follow LANG (`aa.pem` after `z.pem` in Danish), and the
 * order decides the report's rows, which certificates a deadline leaves unreached and the state
 * document's order.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareKeys } from '../lambda/core/key-order.js';
import { DEV_BIN, runToEnd } from './helpers/cli-process.js';

/** Keys whose order a collator changes: case, `-` and `_`, a letter pair, an accent. */
const KEYS = ['b.pem', 'B.pem', 'a_b.pem', 'a-b.pem', 'aa.pem', 'é.pem', 'z.pem', 'sub/a.pem', 'sub-a.pem'];
const CODE_UNIT_ORDER = [
  'B.pem',
  'a-b.pem',
  'a_b.pem',
  'aa.pem',
  'b.pem',
  'sub-a.pem',
  'sub/a.pem',
  'z.pem',
  'é.pem',
];

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-key-order-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('compareKeys', () => {
  it('orders by UTF-16 code units, as < does', () => {
    expect([...KEYS].sort(compareKeys)).toEqual(CODE_UNIT_ORDER);
    expect(compareKeys('a.pem', 'a.pem')).toBe(0);
  });
});

describe('renew lists certificates in that order whatever the locale', () => {
  it.for(['en_US.UTF-8', 'da_DK.UTF-8', 'cs_CZ.UTF-8'])('LC_ALL=%s', async (locale) => {
    const certs = path.join(work, `certs-${locale}`);
    await mkdir(path.join(certs, 'sub'), { recursive: true });
    for (const key of KEYS) await writeFile(path.join(certs, key), 'not a certificate\n');
    const r = await runToEnd(
      process.execPath,
      [
        DEV_BIN,
        'renew',
        '--certs',
        certs,
        '--staples',
        path.join(work, `staples-${locale}`),
        '--state',
        'none',
        '--json',
      ],
      { env: { ...process.env, LC_ALL: locale, LANG: locale, XDG_STATE_HOME: path.join(work, 'state') } },
    );
    expect(r.code, r.stderr).toBe(1); // every file fails to parse: one row each
    const report = JSON.parse(r.stdout) as { results: { key: string }[] };
    expect(report.results.map((row) => row.key)).toEqual(CODE_UNIT_ORDER);
  });
});
