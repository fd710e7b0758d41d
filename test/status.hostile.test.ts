/**
 * `ocsp-renewer status` over a directory someone else can write (issue 20): names that collide
 * or hold control characters, files that are not files, symlink loops, a tampered state. The
 * command runs in-process (`main`) over real certificates of the test PKI and staples signed
 * offline by `openssl ocsp`.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../lambda/cli/cli.js';
import type { StatusReport } from '../lambda/core/status.js';
import { runMain } from './helpers/in-process-cli.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { makeStaple } from './helpers/pull-script.js';

let pki: TestPki;
let work: string;

beforeAll(async () => {
  pki = await makeTestPki();
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-status-hostile-'));
}, 120_000);

afterAll(async () => {
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

async function freshDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(work, `${label}-`));
  await mkdir(dir, { recursive: true });
  return dir;
}

/** `status DIR --state none` (unless `args` say otherwise), its exit code and output. */
function status(dir: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return runMain(['status', dir, ...(args.includes('--state') ? [] : ['--state', 'none']), ...args]);
}

async function statusJson(dir: string, ...args: string[]): Promise<StatusReport> {
  const r = await status(dir, '--json', ...args);
  return JSON.parse(r.out) as StatusReport;
}

describe('status: names', () => {
  it('shows a.pem and a.crt (one staple a.ocsp) both failing with the collision, neither with the staple’s status', async () => {
    const dir = await freshDir('collision');
    await copyFile(pki.leaves.good.bundle, path.join(dir, 'twin.pem'));
    await copyFile(pki.leaves.revoked.bundle, path.join(dir, 'twin.crt'));
    await makeStaple(pki, pki.leaves.good.cert, path.join(dir, 'twin.ocsp'));
    const report = await statusJson(dir);
    expect(report.rows.map((r) => [r.certificate, r.health, r.why, r.certStatus])).toEqual([
      [
        'twin.crt',
        'failing',
        'refused: twin.pem has the same staple twin.ocsp; neither is renewed until one is renamed',
        undefined,
      ],
      [
        'twin.pem',
        'failing',
        'refused: twin.crt has the same staple twin.ocsp; neither is renewed until one is renamed',
        undefined,
      ],
    ]);
  });
});

describe('status and inspect: files that are not files (issue 20)', () => {
  it('reads no staple through a symlink to /dev/zero, opens no FIFO named *.pem, reads no 2 MiB certificate whole', async () => {
    const dir = await freshDir('special');
    await copyFile(pki.leaves.good.bundle, path.join(dir, 'good.pem'));
    await symlink('/dev/zero', path.join(dir, 'good.ocsp'));
    execFileSync('mkfifo', [path.join(dir, 'fifo.pem')]);
    await writeFile(path.join(dir, 'big.pem'), Buffer.alloc(2 * 1024 * 1024, 0x41));
    const report = await statusJson(dir);
    const why = Object.fromEntries(report.rows.map((r) => [r.certificate, r.why]));
    expect(why['good.pem']).toBe(
      'staple unreadable: cannot read: a staple file must be a regular file, not a character device',
    );
    expect(why['fifo.pem']).toBeUndefined(); // not a regular file: not listed, as renew lists none
    expect(why['big.pem']).toBe('no staple');
  });

  it('inspect refuses /dev/zero and a FIFO as a staple, saying why', async () => {
    const dir = await freshDir('inspect');
    const fifo = path.join(dir, 'staple.ocsp');
    execFileSync('mkfifo', [fifo]);
    for (const [file, kind] of [
      ['/dev/zero', 'a character device'],
      [fifo, 'a FIFO'],
    ] as const) {
      let err = '';
      const code = await main(['inspect', file], { out: () => undefined, err: (t) => (err += t) });
      expect(code).toBe(1);
      expect(err).toContain(`read ${file}: a certificate or staple must be a regular file, not ${kind}`);
    }
  });
});

describe('status and --issuers: symlinked directories (issue 20)', () => {
  it('--issuers does not walk into symlinked directories either, and a missing one is an error', async () => {
    const issuers = await freshDir('issuers');
    await copyFile(pki.intermediate.cert, path.join(issuers, 'int.pem'));
    await symlink('.', path.join(issuers, 'a'));
    await symlink('.', path.join(issuers, 'b'));
    const certs = await freshDir('certs');
    await copyFile(pki.leaves.good.cert, path.join(certs, 'good.pem')); // the leaf alone: issuer from --issuers
    const staples = await freshDir('staples');
    let out = '';
    let err = '';
    const io = { out: (t: string) => (out += t), err: (t: string) => (err += t) };
    const args = ['renew', '--certs', certs, '--staples', staples, '--state', 'none', '--dry-run', '--json'];
    expect(await main([...args, '--issuers', issuers], io), err).toBe(0);
    expect((JSON.parse(out) as { results: Array<{ action: string }> }).results[0]!.action).toBe('due');
    err = '';
    expect(await main([...args, '--issuers', path.join(issuers, 'missing')], io)).toBe(1);
    expect(err).toContain(`issuers directory: ${path.join(issuers, 'missing')} is not a directory`);
  });

  it('does not walk into symlinked directories: two links to `.` made the walk exponential', async () => {
    const dir = await freshDir('loops');
    await copyFile(pki.leaves.good.bundle, path.join(dir, 'good.pem'));
    await makeStaple(pki, pki.leaves.good.cert, path.join(dir, 'good.ocsp'));
    await symlink('.', path.join(dir, 'a'));
    await symlink('.', path.join(dir, 'b'));
    await symlink(dir, path.join(dir, 'up'));
    const report = await statusJson(dir);
    expect(report.rows.map((r) => [r.certificate, r.staple, r.certStatus])).toEqual([
      ['good.pem', 'good.ocsp', 'good'],
    ]);
  });
});

describe('status: a tampered state (names from outside)', () => {
  it('never reads a staple outside the directory for a state key with ..', async () => {
    const dir = await freshDir('state-escape');
    const outside = await freshDir('state-escape-outside');
    await copyFile(pki.leaves.good.bundle, path.join(dir, 'good.pem'));
    await makeStaple(pki, pki.leaves.good.cert, path.join(dir, 'good.ocsp'));
    await makeStaple(pki, pki.leaves.good.cert, path.join(outside, 'evil.ocsp'));
    const stateFile = path.join(work, `state-escape-${path.basename(dir)}.json`);
    // A state holding one well-formed entry, under a key that climbs out of `dir`.
    await main(['renew', '--certs', dir, '--state', stateFile, '--json'], { out: () => {}, err: () => {} });
    const doc = JSON.parse(await readFile(stateFile, 'utf8')) as { certs: Record<string, unknown> };
    const entry = doc.certs['good.pem'];
    expect(entry).toBeDefined();
    const hostile = `../${path.basename(outside)}/evil.pem`;
    doc.certs = { [hostile]: entry };
    await writeFile(stateFile, JSON.stringify(doc));

    const report = await statusJson(dir, '--state', stateFile);
    const row = report.rows.find((r) => r.certificate === hostile);
    expect(row).toBeDefined();
    expect(row!.health).toBe('failing');
    expect(row!.why).toMatch(/escapes/);
  });
});
