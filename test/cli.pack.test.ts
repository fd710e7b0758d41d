/**
 * The published package, as a user gets it: `npm pack` (prepack builds dist/ with tsc), installed
 * from the tarball into a temporary prefix, then the installed `ocsp-renewer` run for real:
 * `--version`, a `renew` against an `openssl ocsp` responder, and `--persist` under `npx` with
 * signals reaching the daemon and no orphan left when npx is stopped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, killAll, REPO_ROOT, runToEnd, start, waitFor } from './helpers/cli-process.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';

const VERSION = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

let work: string;
let tarball: string;
let prefix: string;
let bin: string;
let pki: TestPki;
let responder: OpensslResponder;

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: path.join(work, 'state') };
  delete e.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
  return e;
}

async function npm(args: string[], cwd: string) {
  const res = await runToEnd('npm', args, { cwd, timeoutMs: 300_000 });
  return res;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-pack-'));
  const packed = await npm(['pack', '--pack-destination', work], REPO_ROOT);
  expect(packed.code, packed.stderr).toBe(0);
  tarball = path.join(work, packed.stdout.trim().split('\n').at(-1)!);
  prefix = path.join(work, 'prefix');
  // From the npm cache if it holds everything, else from the registry.
  let installed = await npm(
    ['install', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--offline'],
    work,
  );
  if (installed.code !== 0) {
    installed = await npm(
      ['install', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--prefer-offline'],
      work,
    );
  }
  expect(installed.code, installed.stderr).toBe(0);
  bin = path.join(prefix, 'node_modules', '.bin', 'ocsp-renewer');
  pki = await makeTestPki();
  responder = await startDelegatedResponder(pki);
}, 600_000);

afterAll(async () => {
  killAll();
  await responder?.stop();
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds only what runs: compiled JavaScript, package.json and the README', async () => {
    const listing = await runToEnd('tar', ['tzf', tarball]);
    const files = listing.stdout.trim().split('\n');
    const stray = files.filter((f) => !/^package\/(dist\/.+\.js|package\.json|README\.md)$/.test(f));
    expect(stray).toEqual([]);
    expect(files).toContain('package/dist/cli/bin.js');
    expect(files.filter((f) => f.includes('test'))).toEqual([]);
    // tsx is for development only: the installed tree has no TypeScript loader.
    expect(existsSync(path.join(prefix, 'node_modules', 'tsx'))).toBe(false);
  });

  it('starts dist/cli/bin.js with #!/usr/bin/env node', () => {
    const installed = path.join(prefix, 'node_modules', 'ocsp-renewer', 'dist', 'cli', 'bin.js');
    expect(readFileSync(installed, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('ocsp-renewer --version prints the version', async () => {
    const res = await runToEnd(bin, ['--version'], { env: env() });
    expect(res).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it('renew writes a staple openssl verifies', async () => {
    const certs = path.join(work, 'certs-once');
    await mkdir(certs);
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
    const res = await runToEnd(bin, ['renew', '--certs', certs, '--allow-private-responders'], {
      env: env(),
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/good\.pem\s+renewed/);
    const verified = await openssl([
      'ocsp', '-respin', path.join(certs, 'good.ocsp'), '-issuer', pki.intermediate.cert,
      '-CAfile', pki.chain, '-cert', pki.leaves.good.cert,
    ]); // prettier-ignore
    expect(verified).toMatch(/good\.pem: good/);
  }, 120_000);

  it('--persist under npx: USR1 and USR2 reach the daemon, TERM to npx stops it, no orphan', async () => {
    const certs = path.join(work, 'certs-persist');
    const staples = path.join(work, 'staples-persist');
    await mkdir(certs);
    await mkdir(staples);
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
    const npx = start(
      'npx',
      ['--no-install', 'ocsp-renewer', 'renew', '--persist', '--certs', certs, '--staples', staples,
        '--allow-private-responders'], // prettier-ignore
      { cwd: prefix, env: env() },
    );
    let daemonPid = 0;
    try {
      await waitFor(
        'the daemon to start',
        () => /pid (\d+)/.test(npx.stderr()) || npx.result() !== undefined,
        120_000,
      );
      daemonPid = Number(/pid (\d+)/.exec(npx.stderr())![1]);
      await waitFor(
        'the first run',
        () => npx.stderr().includes('next check') || npx.result() !== undefined,
        60_000,
      );
      expect(npx.result()).toBeUndefined();
      // The daemon is node running the compiled bin itself: no loader, no child process.
      const cmdline = readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8').split('\0');
      expect(path.basename(cmdline[0]!)).toMatch(/^node/);
      expect(cmdline[1]).toBe(bin);
      expect(cmdline.join(' ')).not.toContain('tsx');
      expect(readFileSync(`/proc/${daemonPid}/task/${daemonPid}/children`, 'utf8').trim()).toBe('');

      process.kill(daemonPid, 'SIGUSR1');
      await waitFor('SIGUSR1 handled', () => npx.stderr().includes('SIGUSR1: checking now'), 30_000);
      const reports = () => npx.stdout().split('CERTIFICATE').length - 1;
      const before = reports();
      process.kill(daemonPid, 'SIGUSR2');
      await waitFor(
        'SIGUSR2 handled with a forced run',
        () => npx.stderr().includes('SIGUSR2: forcing all') && reports() > before,
        60_000,
      );

      npx.child.kill('SIGTERM');
      await npx.exited;
      await waitFor('the daemon to exit after npx', () => !alive(daemonPid), 20_000);
      expect(npx.stderr()).toContain('stopping');
      expect(await readdir(staples)).toEqual(['good.ocsp']);
    } finally {
      if (daemonPid && alive(daemonPid)) process.kill(daemonPid, 'SIGKILL');
    }
  }, 300_000);
});
