/**
 * A certbot/ACME live directory, as certbot lays it out: `live/<name>/{cert,chain,fullchain,
 * privkey}.pem`, symbolic links into `archive/<name>/`. `renew` staples the certificates, takes
 * `chain.pem` as the issuer of `cert.pem`, passes over the key quietly and `--exclude` leaves out
 * what it names. The command runs in-process (`main`) against an `openssl ocsp` responder.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { excludedBy } from '../lambda/cli/exclude.js';
import { runMain, startInProcessCli, type InProcessCli } from './helpers/in-process-cli.js';
import { openssl, type TestPki } from './helpers/pki.js';

let fixture: InProcessCli | undefined;
let pki: TestPki;
let work: string;
let live: string;

function renew(...args: string[]) {
  return runMain(['renew', ...args, '--allow-private-responders']);
}

/** /etc/letsencrypt as certbot leaves it, for one certificate (`example.test`). */
async function letsencrypt(root: string): Promise<string> {
  const archive = path.join(root, 'archive', 'example.test');
  const liveDir = path.join(root, 'live', 'example.test');
  await mkdir(archive, { recursive: true });
  await mkdir(liveDir, { recursive: true });
  const leaf = await readFile(pki.leaves.good.cert, 'utf8');
  const chain = await readFile(pki.intermediate.cert, 'utf8');
  const files: Record<string, string> = {
    cert: leaf,
    chain,
    fullchain: leaf + chain,
    privkey: await readFile(pki.leaves.good.key, 'utf8'),
  };
  for (const [name, text] of Object.entries(files)) {
    await writeFile(path.join(archive, `${name}1.pem`), text);
    await symlink(`../../archive/example.test/${name}1.pem`, path.join(liveDir, `${name}.pem`));
  }
  await writeFile(path.join(root, 'live', 'README'), 'This directory contains your keys and certificates.\n');
  return path.join(root, 'live');
}

beforeAll(async () => {
  fixture = await startInProcessCli('ocsp-renewer-certbot-');
  ({ pki, work } = fixture);
  live = await letsencrypt(path.join(work, 'letsencrypt'));
}, 120_000);

afterAll(() => fixture?.stop());

describe('renew over a certbot live directory', () => {
  it('staples cert.pem (issuer from chain.pem) and fullchain.pem; the key and the chain are skipped, not failed', async () => {
    const staples = path.join(work, 'ocsp');
    await mkdir(staples);
    const res = await renew('--certs', live, '--staples', staples);
    expect(res.code, res.out + res.err).toBe(0);
    expect(res.out).toMatch(/^example\.test\/cert\.pem\s+renewed\s+good/m);
    expect(res.out).toMatch(/^example\.test\/fullchain\.pem\s+renewed\s+good/m);
    expect(res.out).toMatch(/^example\.test\/privkey\.pem\s+skipped\s.*a private key, not a certificate$/m);
    expect(res.out).toMatch(
      /^example\.test\/chain\.pem\s+skipped\s.*only CA certificates: an issuer for the certificates beside it/m,
    );
    expect(res.out).not.toContain('BEGIN');
    // The staples openssl verifies, named after the files nginx, Exim and HAProxy are pointed at.
    for (const name of ['cert', 'fullchain']) {
      const verified = await openssl([
        'ocsp', '-respin', path.join(staples, 'example.test', `${name}.ocsp`),
        '-CAfile', pki.chain, '-issuer', pki.intermediate.cert, '-cert', pki.leaves.good.cert,
      ]); // prettier-ignore
      expect(verified).toMatch(/good/);
    }
    expect(existsSync(path.join(staples, 'example.test', 'privkey.ocsp'))).toBe(false);
    expect(existsSync(path.join(staples, 'example.test', 'chain.ocsp'))).toBe(false);
    // Quiet runs say nothing: nothing failed and nothing changed.
    expect(await renew('--certs', live, '--staples', staples, '--quiet')).toEqual({
      code: 0,
      out: '',
      err: '',
    });
  }, 120_000);

  it('--exclude leaves out what it names: a file name at any depth, or a path', async () => {
    const staples = path.join(work, 'ocsp-excluded');
    await mkdir(staples);
    const res = await renew(
      '--certs', live, '--staples', staples, '--exclude', 'cert.pem', '--exclude', 'example.test/privkey.pem',
    ); // prettier-ignore
    expect(res.code, res.out + res.err).toBe(0);
    expect(res.out).not.toMatch(/^example\.test\/cert\.pem/m);
    expect(res.out).not.toContain('privkey.pem');
    expect(res.out).toMatch(/^example\.test\/fullchain\.pem\s+renewed/m);
    expect(existsSync(path.join(staples, 'example.test', 'cert.ocsp'))).toBe(false);
  }, 120_000);
});

describe('excludedBy', () => {
  it.for([
    [['cert.pem'], 'example.test/cert.pem', true],
    [['cert.pem'], 'cert.pem', true],
    [['cert.pem'], 'example.test/fullchain.pem', false],
    [['*/cert.pem'], 'example.test/cert.pem', true],
    [['*/cert.pem'], 'a/b/cert.pem', false],
    [['**/cert.pem'], 'a/b/cert.pem', true],
    [['**/cert.pem'], 'cert.pem', true],
    [['old/**'], 'old/a/b.pem', true],
    [['*.crt'], 'a/b.crt', true],
    [['priv?ey.pem'], 'privkey.pem', true],
    [['a+b.pem'], 'a+b.pem', true],
    [['a+b.pem'], 'aab.pem', false],
  ] as const)('should match %j against %s: %s', ([globs, key, want], { expect }) => {
    expect(excludedBy(globs)(key)).toBe(want);
  });
});
