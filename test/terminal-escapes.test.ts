/**
 * Terminal escape sequences in names from outside (issue 20): file names, keys, URLs were printed
 * raw by the renew and status tables. Every control character is now shown as a `\u00XX` escape,
 * in the tables (a name cannot forge a row) and at the command's stdout/stderr (whatever the
 * message). The pull script's log is covered in pull-script.test.ts.
 */
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../lambda/cli/cli.js';
import { printable, printableLines } from '../lambda/core/printable.js';
import { DEV_BIN, runToEnd } from './helpers/cli-process.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';

const EVIL = 'evil\x1b]0;owned\x07\x1b[2J\nforged.pem';
const SHOWN = 'evil\\u001b]0;owned\\u0007\\u001b[2J\\u000aforged.pem';
/** Control characters other than the line feeds between lines. */
const controls = (text: string) => [...text].filter((ch) => ch !== '\n' && /[\x00-\x1f\x7f-\x9f]/.test(ch)); // eslint-disable-line no-control-regex

let pki: TestPki;
let work: string;
beforeAll(async () => {
  pki = await makeTestPki();
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-escapes-'));
}, 120_000);
afterAll(async () => {
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

async function inProcess(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

describe('printable', () => {
  it('escapes C0, DEL and C1 characters, line feeds too; printableLines keeps line feeds', () => {
    expect(printable(EVIL)).toBe(SHOWN);
    expect(printable('tab\tdel\x7fcsi\u009bok é')).toBe('tab\\u0009del\\u007fcsi\\u009bok é');
    expect(printableLines('a\x1b\nb\r\n')).toBe('a\\u001b\nb\\u000d\n');
  });

  it('leaves JSON parsing to the same value (JSON.stringify leaves DEL and C1 raw)', () => {
    const value = { key: 'del\x7f csi\u009b esc\x1b line\n' };
    const json = JSON.stringify(value, null, 2);
    expect(controls(json)).not.toEqual([]);
    expect(controls(printableLines(json))).toEqual([]);
    expect(JSON.parse(printableLines(json))).toEqual(value);
  });
});

describe('the renew and status tables', () => {
  it('renew shows a file name with escapes and a newline escaped, on one row', async () => {
    const certs = await mkdtemp(path.join(work, 'certs-'));
    const staples = await mkdtemp(path.join(work, 'staples-'));
    await writeFile(path.join(certs, EVIL), 'not a certificate');
    const r = await inProcess(['renew', '--certs', certs, '--staples', staples, '--state', 'none']);
    expect(r.code).toBe(1);
    expect(controls(r.out)).toEqual([]);
    const row = r.out.split('\n').find((l) => l.startsWith('evil'));
    expect(row).toMatch(new RegExp(`^${SHOWN.replace(/[\\[\]]/g, '\\$&')}\\s+failed\\s`));
  });

  it('status shows a certificate named with escapes escaped, in its row and its note', async () => {
    const dir = await mkdtemp(path.join(work, 'status-'));
    await copyFile(pki.leaves.good.bundle, path.join(dir, EVIL));
    const r = await inProcess(['status', dir, '--state', 'none']);
    expect(controls(r.out)).toEqual([]);
    expect(r.out).toContain(SHOWN);
  });
});

describe('the command’s stdout and stderr', () => {
  it('an error naming a file with escapes prints them escaped (a real process)', async () => {
    const file = path.join(work, 'x\x1b[31mred.ocsp');
    const r = await runToEnd(process.execPath, [DEV_BIN, 'inspect', file]);
    expect(r.code).toBe(1);
    expect(controls(r.stderr)).toEqual([]);
    expect(r.stderr).toContain('x\\u001b[31mred.ocsp');
  });
});
