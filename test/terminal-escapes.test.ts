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
import { printable, printableLines } from '../lambda/core/printable.js';
import { DEV_BIN, runToEnd } from './helpers/cli-process.js';
import { runMain } from './helpers/in-process-cli.js';
import { startOpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';

const EVIL = 'evil\x1b]0;owned\x07\x1b[2J\nforged.pem';
const SHOWN = 'evil\\u001b]0;owned\\u0007\\u001b[2J\\u000aforged.pem';
/** Control characters other than the line feeds between lines (and Unicode's line breaks). */
const controls = (text: string) =>
  [...text].filter((ch) => ch !== '\n' && /[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(ch)); // eslint-disable-line no-control-regex

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

describe('printable', () => {
  it('escapes C0, DEL and C1 characters, line feeds too; printableLines keeps line feeds', () => {
    expect(printable(EVIL)).toBe(SHOWN);
    expect(printable('tab\tdel\x7fcsi\u009bok é')).toBe('tab\\u0009del\\u007fcsi\\u009bok é');
    expect(printableLines('a\x1b\nb\r\n')).toBe('a\\u001b\nb\\u000d\n');
  });

  it('escapes Unicode line and paragraph separators (U+2028, U+2029), in both', () => {
    expect(printable('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
    expect(printableLines('a\u2028b\n')).toBe('a\\u2028b\n');
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
    const r = await runMain(['renew', '--certs', certs, '--staples', staples, '--state', 'none']);
    expect(r.code).toBe(1);
    expect(controls(r.out)).toEqual([]);
    const row = r.out.split('\n').find((l) => l.startsWith('evil'));
    expect(row).toMatch(new RegExp(`^${SHOWN.replace(/[\\[\]]/g, '\\$&')}\\s+failed\\s`));
  });

  it('status shows a certificate named with escapes escaped, in its row and its note', async () => {
    const dir = await mkdtemp(path.join(work, 'status-'));
    await copyFile(pki.leaves.good.bundle, path.join(dir, EVIL));
    const r = await runMain(['status', dir, '--state', 'none']);
    expect(controls(r.out)).toEqual([]);
    expect(r.out).toContain(SHOWN);
  });
});

describe('the command’s stdout and stderr', () => {
  it('status quotes a hostile state entry’s key on one line when it drops it', async () => {
    const dir = await mkdtemp(path.join(work, 'status-state-'));
    await copyFile(pki.leaves.good.bundle, path.join(dir, 'good.pem'));
    const state = path.join(work, 'hostile-state.json');
    await writeFile(
      state,
      JSON.stringify({ version: 1, certs: { 'x.pem\nforged line': { failures: 'text' } } }),
    );
    const r = await runMain(['status', dir, '--state', state]);
    const warning = r.err.split('\n').filter((l) => l.includes('state entries dropped'));
    expect(warning).toEqual([
      `ocsp-renewer: state entries dropped (${state}): 1 bad entry dropped: x.pem\\u000aforged line: failures is not a count`,
    ]);
    expect(r.err.split('\n')).not.toContain('forged line: failures is not a count');
  });

  it('an error naming a file with escapes prints them escaped (a real process)', async () => {
    const file = path.join(work, 'x\x1b[31mred.ocsp');
    const r = await runToEnd(process.execPath, [DEV_BIN, 'inspect', file]);
    expect(r.code).toBe(1);
    expect(controls(r.stderr)).toEqual([]);
    expect(r.stderr).toContain('x\\u001b[31mred.ocsp');
  });
});

/**
 * Fields taken from a certificate or a response (subjects, responder names, errors quoting them)
 * are printed on one line each: a subject holding a line break cannot forge a line of `inspect`
 * or `fetch`. The certificate is real: a delegated OCSP signer issued by the test intermediate,
 * its CN made by openssl with a CR LF, U+2028, U+2029 and an escape sequence in it.
 */
describe('fields from a certificate or a response', () => {
  const FORGED = 'valid:           yes';
  const CN = `evil\r\n${FORGED}\u2028\u2029\x1b[2J`;
  const NAME = `CN=${CN},O=ocsp-renewer tests`;
  const NAME_SHOWN = 'CN=evil\\u000d\\u000avalid:           yes\\u2028\\u2029\\u001b[2J,O=ocsp-renewer tests';
  let signer: { cert: string; key: string };
  let staple: string;

  /** The command as a real process (the bin through tsx). */
  const cli = (...args: string[]) => runToEnd(process.execPath, [DEV_BIN, ...args]);
  /** The lines of an output that start with `label` (the forged one would be a second). */
  const linesStarting = (text: string, label: string) => text.split('\n').filter((l) => l.startsWith(label));

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(work, 'evil-signer-'));
    signer = { cert: path.join(dir, 'signer.pem'), key: path.join(dir, 'signer.key.pem') };
    await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', signer.key]);
    const csr = path.join(dir, 'signer.csr');
    const subj = `/O=ocsp-renewer tests/CN=${CN}`;
    await openssl([
      'req',
      '-new',
      '-utf8',
      '-config',
      pki.config,
      '-key',
      signer.key,
      '-subj',
      subj,
      '-out',
      csr,
    ]);
    await openssl([
      'x509', '-req', '-in', csr, '-CA', pki.intermediate.cert, '-CAkey', pki.intermediate.key,
      '-set_serial', '4242', '-days', '30', '-extfile', pki.config, '-extensions', 'ext_signer',
      '-out', signer.cert,
    ]); // prettier-ignore
    const request = path.join(dir, 'request.der');
    staple = path.join(dir, 'good.ocsp');
    await openssl([
      'ocsp',
      '-issuer',
      pki.intermediate.cert,
      '-cert',
      pki.leaves.good.cert,
      '-no_nonce',
      '-reqout',
      request,
    ]);
    await openssl([
      'ocsp', '-index', pki.index, '-CA', pki.intermediate.cert, '-rsigner', signer.cert, '-rkey', signer.key,
      '-reqin', request, '-respout', staple, '-ndays', '1',
    ]); // prettier-ignore
  }, 120_000);

  it('inspect prints the responder name and signer subject escaped, on their own lines', async () => {
    const r = await cli('inspect', staple, '--cert', pki.leaves.good.bundle);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(linesStarting(r.stdout, 'valid:')).toEqual([FORGED]);
    expect(controls(r.stdout)).toEqual([]);
    expect(linesStarting(r.stdout, 'responderId:')).toEqual([`responderId:     byName ${NAME_SHOWN}`]);
    expect(linesStarting(r.stdout, 'signature:')).toEqual([
      `signature:       valid, signer delegated (${NAME_SHOWN})`,
    ]);
  });

  it('inspect --json keeps the name, every line break escaped', async () => {
    const r = await cli('inspect', staple, '--cert', pki.leaves.good.bundle, '--json');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\\u2028\\u2029');
    expect(controls(r.stdout)).toEqual([]);
    const json = JSON.parse(r.stdout) as {
      responderId: { name: string };
      signature: { responderCert: string };
    };
    expect(json.responderId.name).toBe(NAME);
    expect(json.signature.responderCert).toBe(NAME);
  });

  it('inspect prints an error quoting a certificate subject escaped, on one line', async () => {
    // The signer given as the issuer: the error quotes its subject.
    const r = await cli('inspect', staple, '--cert', pki.leaves.good.cert, '--issuer', signer.cert);
    expect(r.code).toBe(1);
    expect(linesStarting(r.stdout, 'valid:')).toEqual(['valid:           NO']);
    expect(controls(r.stdout)).toEqual([]);
    expect(r.stdout).toContain(
      `error:           issuer certificate (${NAME_SHOWN}) is not named as the certificate's issuer`,
    );
  });

  it('fetch prints the answer of a responder signing with that certificate escaped', async () => {
    const responder = await startOpensslResponder({
      index: pki.index,
      ca: pki.intermediate.cert,
      rsigner: signer.cert,
      rkey: signer.key,
      port: pki.ocspPort,
    });
    try {
      const r = await cli('fetch', pki.leaves.good.bundle, '--allow-private-responders');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(linesStarting(r.stdout, 'url:')).toEqual([`url:             ${responder.url}`]);
      expect(linesStarting(r.stdout, 'valid:')).toEqual([FORGED]);
      expect(linesStarting(r.stdout, 'responderId:')).toEqual([`responderId:     byName ${NAME_SHOWN}`]);
      expect(controls(r.stdout)).toEqual([]);
    } finally {
      await responder.stop();
    }
  });
});
