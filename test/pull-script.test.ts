/**
 * host/pull-staples.sh run for real: Debian's aws CLI v2 (/usr/bin/aws) against s3rver, openssl
 * checks, under dash, bash and busybox sh. Staples are signed offline with `openssl ocsp -index`
 * (test/helpers/pull-script.ts), so each case gets exactly the response it needs.
 *
 * Downloads are counted by a small HTTP proxy between the aws CLI and s3rver (the script's
 * --endpoint-url points at it): every GET of an object key is one download, whatever the CLI
 * version or its log format. The list request that `aws s3 sync` always makes is not counted.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import {
  AWS_V2,
  backdateStaple,
  makeStaple,
  PULL_SCRIPT,
  runPull,
  type PullResult,
  type RunPullOptions,
} from './helpers/pull-script.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';
import { onPath, SHELLS } from './helpers/shells.js';

const BUCKET = 'host-staples';
const RUN_TIMEOUT_MS = 30_000;
const TEST_TIMEOUT_MS = 90_000;
const isRoot = process.getuid?.() === 0;
/** A reload command's first half: prints `$OCSP_INSTALLED|$OCSP_REMOVED` on one line, each list's names (one a line) joined by commas. */
const BOTH_LISTS = `printf '%s|%s\\n' "$(printf '%s' "$OCSP_INSTALLED" | tr '\\n' ,)" "$(printf '%s' "$OCSP_REMOVED" | tr '\\n' ,)"`;

/** An `aws` on PATH that is the CLI v1 (e.g. a pip install), with its version line. */
function findAwsV1(): { path: string; version: string } | undefined {
  const candidate = onPath('aws');
  if (!candidate) return undefined;
  try {
    const out = execFileSync(candidate, ['--version'], { encoding: 'utf8', stdio: 'pipe', timeout: 20_000 });
    const version = out.trim().split(/\s+/)[0] ?? '';
    return version.startsWith('aws-cli/1.') ? { path: candidate, version } : undefined;
  } catch {
    return undefined;
  }
}

const haveAwsV2 = existsSync(AWS_V2);
const awsV1 = haveAwsV2 ? findAwsV1() : undefined;
const haveFlock = onPath('flock') !== undefined;
const haveSetpriv = onPath('setpriv') !== undefined;

let work: string;
let pki: TestPki;
let otherPki: TestPki;
let s3: S3Server;
let admin: S3Client;
let proxy: CountingProxy;
/** A PATH with every tool of the real PATH except flock, so the script takes its mkdir lock. */
let pathWithoutFlock: string;
/** An aws CLI shim that can hold a run at the download (see writeGatedAws). */
let gatedAws: string;
const staples = {} as Record<
  | 'good'
  | 'renewed'
  | 'mustStaple'
  | 'revoked'
  | 'revokedLater'
  | 'short'
  | 'noNext'
  | 'expired'
  | 'future'
  | 'foreign'
  | 'garbage',
  Buffer
>;

describe
  .skipIf(!haveAwsV2)
  .concurrent('host/pull-staples.sh with the aws CLI v2 against s3rver', { timeout: TEST_TIMEOUT_MS }, () => {
    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'ocsp-pull-script-'));
      await chmod(work, 0o755); // the `nobody` case must reach its directory
      [pki, otherPki, s3] = await Promise.all([
        makeTestPki(),
        makeTestPki(),
        startS3Server({ buckets: [BUCKET] }),
      ]);
      admin = s3.client();
      proxy = await startCountingProxy(s3.endpoint);

      const fx = path.join(work, 'fixtures');
      await mkdir(fx);
      const f = (name: string) => path.join(fx, name);
      const leaves = pki.leaves;
      [staples.good, staples.mustStaple, staples.revoked, staples.short, staples.noNext, staples.foreign] =
        await Promise.all([
          makeStaple(pki, leaves.good.cert, f('good.ocsp'), { ndays: 1 }),
          makeStaple(pki, leaves.mustStaple.cert, f('mustStaple.ocsp')),
          makeStaple(pki, leaves.revoked.cert, f('revoked.ocsp')),
          makeStaple(pki, leaves.good.cert, f('short.ocsp'), { nmin: 10 }),
          makeStaple(pki, leaves.good.cert, f('noNext.ocsp'), { noNextUpdate: true }),
          makeStaple(otherPki, otherPki.leaves.good.cert, f('foreign.ocsp')),
        ]);
      // Renewals are signed in a later second: a later thisUpdate, as a real renewal has (the
      // script never installs an older staple over a newer one).
      await nextSecond();
      [staples.renewed, staples.revokedLater] = await Promise.all([
        makeStaple(pki, leaves.good.cert, f('renewed.ocsp'), { ndays: 2 }),
        makeStaple(pki, leaves.revoked.cert, f('revokedLater.ocsp')),
      ]);
      staples.expired = await backdateStaple(staples.good, f('expired.ocsp'));
      staples.future = await backdateStaple(staples.good, f('future.ocsp'), +1);
      staples.garbage = randomBytes(700);

      gatedAws = await writeGatedAws(path.join(work, 'aws-gate'));

      pathWithoutFlock = path.join(work, 'path-without-flock');
      await mkdir(pathWithoutFlock);
      for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
        const names = await readdir(dir).catch(() => [] as string[]);
        for (const name of names) {
          if (name === 'flock') continue;
          await symlink(path.join(dir, name), path.join(pathWithoutFlock, name)).catch(() => undefined);
        }
      }
    }, 120_000);

    afterAll(async () => {
      await proxy?.close();
      admin?.destroy();
      await s3?.stop();
      await Promise.all([pki?.cleanup(), otherPki?.cleanup()]);
      if (work) await rm(work, { recursive: true, force: true });
    });

    for (const { name, argv, available } of SHELLS) {
      it.skipIf(!available)(
        `under ${name}: installs new staples (the S3 bytes, mode 0644 and dirs 0755 even under umask 077) and reloads once with OCSP_INSTALLED${available ? '' : ` (skipped: ${name} is not installed)`}`,
        async ({ expect }) => {
          const c = await newCase(`happy-${name.replace(/\W/g, '')}`);
          await c.put('web/good.ocsp', staples.good);
          await c.put('mail/mustStaple.ocsp', staples.mustStaple);
          const r = await c.run(
            ['--issuer', pki.intermediate.cert, '--ca-file', pki.chain, '--reload', c.reload],
            {
              shell: argv,
              prefix: ['sh', '-c', 'umask 077 && exec "$@"', 'umask077'],
            },
          );
          expect(r.code, r.stderr).toBe(0);
          expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
          expect(await readFile(c.file('mail/mustStaple.ocsp'))).toEqual(staples.mustStaple);
          expect(await mode(c.file('web/good.ocsp'))).toBe(0o644);
          expect(await mode(c.file('mail/mustStaple.ocsp'))).toBe(0o644);
          expect(await mode(c.dest)).toBe(0o755);
          expect(await mode(c.file('web'))).toBe(0o755);
          expect(await readdir(c.file('web'))).toEqual(['good.ocsp']); // no temporary file left
          expect(await c.reloads()).toEqual(['mail/mustStaple.ocsp,web/good.ocsp']);
          expect(r.stderr).toContain('ocsp-pull: installed web/good.ocsp');
          expect(r.stderr).toContain('ocsp-pull: done: 2 installed, 0 rejected');
        },
      );
    }

    if (awsV1) {
      it(`works with the aws CLI v1 on PATH (${awsV1.version}), including a same-size renewal, a deletion and a .withheld marker`, async ({
        expect,
      }) => {
        const c = await newCase('aws-v1', { aws: awsV1.path });
        await c.put('web/good.ocsp', staples.good);
        const first = await c.run(['--issuer', pki.intermediate.cert, '--reload', c.reload]);
        expect(first.code, first.stderr).toBe(0);
        expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
        await c.put('web/good.ocsp', staples.renewed);
        const second = await c.run(['--issuer', pki.intermediate.cert, '--reload', c.reload]);
        expect(second.code, second.stderr).toBe(0);
        expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.renewed);
        expect(await c.reloads()).toEqual(['web/good.ocsp', 'web/good.ocsp']);

        // v1's sync --delete and the .withheld include: a marker removes, a deletion orphans.
        await c.put('mail/gone.ocsp', staples.mustStaple);
        const third = await c.run(['--issuer', pki.intermediate.cert]);
        expect(third.code, third.stderr).toBe(0);
        await c.remove('mail/gone.ocsp');
        await c.remove('web/good.ocsp');
        await c.put('web/good.ocsp.withheld', Buffer.from('revoked\n'));
        const fourth = await c.run(['--issuer', pki.intermediate.cert]);
        expect(fourth.code, fourth.stderr).toBe(0);
        expect(fourth.stderr).toContain('withheld web/good.ocsp: the renewer withholds it (revoked)');
        expect(fourth.stderr).toContain('orphaned mail/gone.ocsp');
        expect(existsSync(c.file('web/good.ocsp'))).toBe(false);
        expect(await readFile(c.file('mail/gone.ocsp'))).toEqual(staples.mustStaple);
        expect(existsSync(c.staged('mail/gone.ocsp'))).toBe(false);
      });
    } else {
      it.skip('works with the aws CLI v1 on PATH: skipped, no aws CLI v1 on PATH', () => undefined);
    }

    it('keeps the mode (0640) and owner of a staple it replaces', async ({ expect }) => {
      const c = await newCase('keep-mode');
      await c.preinstall('web/good.ocsp', staples.good, 0o640);
      if (isRoot) await chown(c.file('web/good.ocsp'), 65534, 65534);
      await c.put('web/good.ocsp', staples.renewed);
      const r = await c.run(['--issuer', pki.intermediate.cert]);
      expect(r.code, r.stderr).toBe(0);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.renewed);
      const st = await stat(c.file('web/good.ocsp'));
      expect(st.mode & 0o7777).toBe(0o640);
      if (isRoot) expect([st.uid, st.gid]).toEqual([65534, 65534]);
      expect(await readdir(c.file('web'))).toEqual(['good.ocsp']);
    });

    it('never keeps a setuid bit, and replaces a staple that is a symlink with a 0644 file, its target untouched (issue 20)', async ({
      expect,
    }) => {
      const c = await newCase('keep-mode-not-setuid');
      await c.preinstall('web/good.ocsp', staples.good, 0o4750);
      const target = path.join(c.dir, 'link-target');
      await writeFile(target, 'not a staple');
      await chmod(target, 0o600);
      await mkdir(c.file('mail'), { recursive: true });
      await symlink(target, c.file('mail/linked.ocsp'));
      await c.put('web/good.ocsp', staples.renewed);
      await c.put('mail/linked.ocsp', staples.mustStaple);
      const r = await c.run(['--issuer', pki.intermediate.cert]);
      expect(r.code, r.stderr).toBe(0);
      expect(await mode(c.file('web/good.ocsp'))).toBe(0o750);
      expect(await readFile(c.file('mail/linked.ocsp'))).toEqual(staples.mustStaple);
      expect(await mode(c.file('mail/linked.ocsp'))).toBe(0o644);
      expect(await readFile(target, 'utf8')).toBe('not a staple');
      expect(await mode(target)).toBe(0o600);
    });

    const rejections: Array<{ name: string; staple: keyof typeof staples; why: RegExp }> = [
      { name: 'a corrupt staple (garbage bytes)', staple: 'garbage', why: /not an OCSP response/ },
      {
        name: 'an expired staple (its dates moved a year back)',
        staple: 'expired',
        why: /nextUpdate .* is less than 3600s away/,
      },
      {
        name: 'a staple from the future (its dates moved a year on)',
        staple: 'future',
        why: /thisUpdate .* is in the future/,
      },
      { name: 'a staple valid 10 min (< --min-validity)', staple: 'short', why: /is less than 3600s away/ },
      { name: 'a staple without nextUpdate', staple: 'noNext', why: /no nextUpdate/ },
      { name: 'a staple from another PKI (--issuer)', staple: 'foreign', why: /signature check failed/ },
    ];
    for (const { name, staple, why } of rejections) {
      it(`rejects ${name}: the old staple kept byte-identical, exit 1, the file named, no reload`, async ({
        expect,
      }) => {
        const c = await newCase(`reject-${name.replace(/\W+/g, '-')}`);
        await c.preinstall('web/good.ocsp', staples.good, 0o644);
        await c.put('web/good.ocsp', staples[staple]);
        const r = await c.run([
          '--issuer',
          pki.intermediate.cert,
          '--ca-file',
          pki.chain,
          '--reload',
          c.reload,
        ]);
        expect(r.code, r.stderr).toBe(1);
        expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
        expect(r.stderr).toMatch(new RegExp(`ocsp-pull: reject web/good\\.ocsp: .*${why.source}`));
        expect(r.stderr).toContain('done: 0 installed, 1 rejected');
        expect(await c.reloads()).toEqual([]);
        expect(await readdir(c.file('web'))).toEqual(['good.ocsp']);
      });
    }

    it('installs a staple whose name has a space and tells the reload OCSP_DEST', async ({ expect }) => {
      const c = await newCase('space-name');
      await c.put('web/my site.ocsp', staples.good);
      const r = await c.run([
        '--issuer',
        pki.intermediate.cert,
        '--reload',
        `printf '%s' "$OCSP_DEST" > '${c.file('dest.txt')}'`,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(await readFile(c.file('web/my site.ocsp'))).toEqual(staples.good);
      expect(await readFile(c.file('dest.txt'), 'utf8')).toBe(c.dest);
    });

    it('refuses --cert-dir without --issuer (usage error, exit 2)', async ({ expect }) => {
      const c = await newCase('cert-dir-no-issuer');
      const r = await c.run(['--cert-dir', c.dest]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--cert-dir needs --issuer');
    });

    it('a rejected staple does not stop the others: they are installed and reloaded, exit 1', async ({
      expect,
    }) => {
      const c = await newCase('reject-one');
      await c.put('mail/short.ocsp', staples.short);
      await c.put('web/good.ocsp', staples.good);
      const r = await c.run(['--issuer', pki.intermediate.cert, '--reload', c.reload]);
      expect(r.code, r.stderr).toBe(1);
      expect(existsSync(c.file('mail/short.ocsp'))).toBe(false);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
      expect(await c.reloads()).toEqual(['web/good.ocsp']);
    });

    it('--allow-revoked (now the default, kept for old configurations) installs a revoked staple, with a warning', async ({
      expect,
    }) => {
      const c = await newCase('allow-revoked');
      await c.put('mail/revoked.ocsp', staples.revoked);
      const r = await c.run(['--issuer', pki.intermediate.cert, '--allow-revoked', '--reload', c.reload]);
      expect(r.code, r.stderr).toBe(0);
      expect(await readFile(c.file('mail/revoked.ocsp'))).toEqual(staples.revoked);
      expect(r.stderr).toContain('warning mail/revoked.ocsp: certificate REVOKED');
      expect(await c.reloads()).toEqual(['mail/revoked.ocsp']);
    });

    it('--cert-dir: a staple must be for DIR/<name>.pem when that file exists', async ({ expect }) => {
      const c = await newCase('cert-dir');
      const certDir = path.join(c.dir, 'certs');
      await mkdir(path.join(certDir, 'web'), { recursive: true });
      await copyFile(pki.leaves.good.cert, path.join(certDir, 'web', 'good.pem'));
      await copyFile(pki.leaves.mustStaple.cert, path.join(certDir, 'web', 'mustStaple.pem'));
      await c.put('web/good.ocsp', staples.mustStaple); // a valid staple, for the wrong certificate
      await c.put('web/mustStaple.ocsp', staples.mustStaple);
      const r = await c.run(['--issuer', pki.intermediate.cert, '--cert-dir', certDir]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`reject web/good.ocsp: not a response for ${certDir}/web/good.pem`);
      expect(existsSync(c.file('web/good.ocsp'))).toBe(false);
      expect(await readFile(c.file('web/mustStaple.ocsp'))).toEqual(staples.mustStaple);
    });

    it('downloads only what changed: a second run fetches nothing and does not reload; a same-size renewal is fetched and reloads once', async ({
      expect,
    }) => {
      const c = await newCase('incremental');
      await c.put('web/good.ocsp', staples.good);
      await c.put('mail/mustStaple.ocsp', staples.mustStaple);
      const args = ['--issuer', pki.intermediate.cert, '--reload', c.reload];

      const first = await c.run(args);
      expect(first.code, first.stderr).toBe(0);
      expect(c.downloads()).toBe(2);
      expect(await c.reloads()).toHaveLength(1);

      const second = await c.run(args);
      expect(second.code, second.stderr).toBe(0);
      expect(c.downloads()).toBe(2); // no object fetched
      expect(await c.reloads()).toHaveLength(1); // reload not run
      expect(second.stderr).not.toContain('done:'); // quiet when nothing happened (cron mails only news)
      const verbose = await c.run([...args, '--verbose']);
      expect(verbose.stderr).toContain('done: 0 installed, 0 rejected');
      expect(second.stderr).not.toContain('reloading');

      // A renewed staple is the same size as the one before: the sync must still fetch it.
      expect(staples.renewed.length).toBe(staples.good.length);
      await c.put('web/good.ocsp', staples.renewed);
      const third = await c.run(args);
      expect(third.code, third.stderr).toBe(0);
      expect(c.downloads()).toBe(3);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.renewed);
      expect(await c.reloads()).toEqual(['mail/mustStaple.ocsp,web/good.ocsp', 'web/good.ocsp']);
    });

    it('--dry-run downloads and checks, installs nothing and does not reload', async ({ expect }) => {
      const c = await newCase('dry-run');
      await c.put('web/good.ocsp', staples.good);
      const r = await c.run(['--issuer', pki.intermediate.cert, '--dry-run', '--reload', c.reload]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('would install web/good.ocsp');
      expect(existsSync(c.file('web/good.ocsp'))).toBe(false);
      expect(await c.reloads()).toEqual([]);
    });

    it('a failed download exits 3; a failed reload exits 4 (the staple stays installed)', async ({
      expect,
    }) => {
      const c = await newCase('exit-3-4');
      const noBucket = await c.run([], { bucketOverride: 'no-such-bucket' });
      expect(noBucket.code, noBucket.stderr).toBe(3);
      expect(noBucket.stderr).toContain('download from s3://no-such-bucket/');

      await c.put('web/good.ocsp', staples.good);
      const badReload = await c.run(['--reload', 'exit 7']);
      expect(badReload.code, badReload.stderr).toBe(4);
      expect(badReload.stderr).toContain('reload command failed: exit 7');
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
    });

    it('--timeout cuts off a hung download (exit 3) and a hung reload (exit 4)', async ({ expect }) => {
      const c = await newCase('timeout', { aws: gatedAws });
      await c.put('web/good.ocsp', staples.good);
      const started = Date.now();
      // The gated shim waits for a release that never comes.
      const hung = await c.run(['--timeout', '1'], {
        env: { GATE_STARTED: path.join(c.dir, 'gate.started'), GATE_RELEASE: path.join(c.dir, 'never') },
      });
      expect(hung.code, hung.stderr).toBe(3);
      expect(hung.stderr).toContain('timed out after 1s');
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(existsSync(c.file('web/good.ocsp'))).toBe(false);

      // Long enough for the real download on a loaded machine, far shorter than the reload.
      const slowReload = await c.run(['--timeout', '10', '--reload', 'sleep 120']);
      expect(slowReload.code, slowReload.stderr).toBe(4);
      expect(slowReload.stderr).toContain('reload command timed out after 10s');
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
    });

    const locks = [
      { lock: 'flock', available: haveFlock },
      { lock: 'mkdir', available: true },
    ];
    for (const { lock, available } of locks) {
      it.skipIf(!available)(
        `${lock} lock: a run overlapping another exits 75 and changes nothing; the first completes${available ? '' : ' (skipped: flock(1) is not installed)'}`,
        async ({ expect }) => {
          const c = await newCase(`lock-${lock}`, { noFlock: lock === 'mkdir', aws: gatedAws });
          await c.put('web/good.ocsp', staples.good);
          const started = path.join(c.dir, 'gate.started');
          const release = path.join(c.dir, 'gate.release');
          // The first run stops in the aws shim (holding the lock) until the test releases it.
          const first = c.run(['--reload', c.reload], {
            env: { GATE_STARTED: started, GATE_RELEASE: release },
          });
          await waitFor(() => existsSync(started), 20_000, 'the first run never reached the download');

          const second = await c.run(['--reload', c.reload]);
          expect(second.code, second.stderr).toBe(75);
          expect(second.stderr).toMatch(/another run .*holds/);
          expect(existsSync(c.file('web/good.ocsp'))).toBe(false);
          if (lock === 'mkdir') expect(existsSync(path.join(c.dest, '.ocsp-pull.lock.d'))).toBe(true);

          await writeFile(release, '');
          const done = await first;
          expect(done.code, done.stderr).toBe(0);
          expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
          expect(await c.reloads()).toEqual(['web/good.ocsp']);
          expect(existsSync(path.join(c.dest, '.ocsp-pull.lock.d'))).toBe(false); // mkdir lock released
        },
      );
    }

    it('mkdir lock (no flock on PATH): a stale lock of a dead process is taken over, then released', async ({
      expect,
    }) => {
      const c = await newCase('lock-stale', { noFlock: true });
      await c.put('web/good.ocsp', staples.good);
      const dead = await deadPid();
      await mkdir(path.join(c.dest, '.ocsp-pull.lock.d'), { recursive: true });
      await writeFile(path.join(c.dest, '.ocsp-pull.lock.d', 'pid'), `${dead}\n`);
      const r = await c.run([]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`taking over a stale lock from pid ${dead}`);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
      expect(existsSync(path.join(c.dest, '.ocsp-pull.lock.d'))).toBe(false);
      expect(existsSync(path.join(c.dest, '.ocsp-pull.lock'))).toBe(false); // flock's file not used
    });

    it.runIf(haveFlock)(
      `flock: a daemon started by the reload command does not keep the lock${haveFlock ? '' : ' (skipped: no flock(1))'}`,
      async ({ expect }) => {
        const c = await newCase('lock-daemon');
        await c.put('web/good.ocsp', staples.good);
        const pidFile = path.join(c.dir, 'daemon.pid');
        const reload = `sleep 60 </dev/null >/dev/null 2>&1 & echo $! > '${pidFile}'`;
        try {
          const first = await c.run(['--reload', reload]);
          expect(first.code, first.stderr).toBe(0);
          await waitFor(() => existsSync(pidFile), 5_000, 'the reload did not start its daemon');
          const second = await c.run([]);
          expect(second.code, second.stderr).toBe(0);
        } finally {
          const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
          if (pid > 0) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // already gone
            }
          }
        }
      },
    );

    it('a destination that cannot be created (under a regular file) exits 5', async ({ expect }) => {
      const c = await newCase('unwritable-file');
      await writeFile(path.join(c.dir, 'a-file'), 'not a directory');
      const r = await c.run([], { destOverride: path.join(c.dir, 'a-file', 'staples') });
      expect(r.code, r.stderr).toBe(5);
      expect(r.stderr).toContain(`cannot create destination ${c.dir}/a-file/staples`);
    });

    it.runIf(isRoot && haveSetpriv)(
      `a destination the user cannot write (nobody, root-owned directory) exits 5${isRoot && haveSetpriv ? '' : ' (skipped: needs root and setpriv(1))'}`,
      async ({ expect }) => {
        const c = await newCase('unwritable-nobody');
        await mkdir(c.dest, { recursive: true, mode: 0o755 });
        await chmod(c.dir, 0o755);
        // A copy of the script in a directory nobody can read (the checkout may be under /root).
        const script = path.join(c.dir, 'pull-staples.sh');
        await copyFile(PULL_SCRIPT, script);
        await chmod(script, 0o755);
        const r = await c.run([], {
          prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'],
          script,
        });
        expect(r.code, r.stderr).toBe(5);
        expect(r.stderr).toContain(`destination not writable: ${c.dest}`);
      },
    );

    it('--syslog logs through logger(1), and does not fail with the real logger', async ({ expect }) => {
      const c = await newCase('syslog');
      await c.put('web/good.ocsp', staples.good);
      const shimDir = path.join(c.dir, 'shim');
      const loggerLog = path.join(c.dir, 'logger.log');
      await mkdir(shimDir);
      await writeFile(path.join(shimDir, 'logger'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${loggerLog}'\n`, {
        mode: 0o755,
      });
      const shimmed = await c.run(['--syslog'], {
        env: { PATH: `${shimDir}${path.delimiter}${process.env.PATH ?? ''}` },
      });
      expect(shimmed.code, shimmed.stderr).toBe(0);
      const logged = await readFile(loggerLog, 'utf8');
      expect(logged).toContain('-t ocsp-pull -- installed web/good.ocsp');
      expect(logged).toContain('-t ocsp-pull -- done: 1 installed, 0 rejected');

      if (onPath('logger')) {
        const real = await c.run(['--syslog']);
        expect(real.code, real.stderr).toBe(0);
      }
    });

    // --- it settles (issue 12: items 7, 8, 9) ----------------------------------------------------

    it('staging mirrors S3: a rejected staple deleted from S3 is forgotten, and the next run exits 0', async ({
      expect,
    }) => {
      const c = await newCase('settle-deleted-reject');
      await c.put('web/good.ocsp', staples.good);
      await c.put('web/broken.ocsp', staples.garbage);
      const args = ['--issuer', pki.intermediate.cert];
      const first = await c.run(args);
      expect(first.code, first.stderr).toBe(1);
      expect(first.stderr).toContain('reject web/broken.ocsp: not an OCSP response');
      expect(existsSync(c.staged('web/broken.ocsp'))).toBe(true);

      await c.remove('web/broken.ocsp');
      const second = await c.run(args);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toBe(''); // nothing to say: nothing was installed, nothing is orphaned
      expect(existsSync(c.staged('web/broken.ocsp'))).toBe(false);
      expect(existsSync(c.file('web/broken.ocsp'))).toBe(false);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
    });

    it('a failed reload is remembered and retried on the next runs, with nothing new, until it succeeds', async ({
      expect,
    }) => {
      const c = await newCase('settle-reload-retry');
      await c.put('web/good.ocsp', staples.good);
      const broken = path.join(c.dir, 'server-is-broken');
      await writeFile(broken, '');
      // The server refuses to reload while it is broken (exit 1), like `systemctl reload` would.
      const reload = `test ! -e '${broken}' && ${c.reload}`;

      const first = await c.run(['--reload', reload]);
      expect(first.code, first.stderr).toBe(4);
      expect(first.stderr).toContain('reload command failed');
      expect(first.stderr).toContain('(retried on the next run)');
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);

      const second = await c.run(['--reload', reload]); // nothing new in S3
      expect(second.code, second.stderr).toBe(4);
      expect(second.stderr).toContain('retrying the reload that failed before');

      await rm(broken);
      const third = await c.run(['--reload', reload]);
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toContain('retrying the reload that failed before');
      expect(await c.reloads()).toEqual(['web/good.ocsp']); // OCSP_INSTALLED still names the staple

      const fourth = await c.run(['--reload', reload]);
      expect(fourth.code, fourth.stderr).toBe(0);
      expect(fourth.stderr).toBe('');
      expect(await c.reloads()).toEqual(['web/good.ocsp']); // settled: no further reload
    });

    it('a retried reload is told only what is still true: a staple withheld since is in OCSP_REMOVED, not OCSP_INSTALLED', async ({
      expect,
    }) => {
      const c = await newCase('settle-reload-retry-lists');
      await c.put('web/good.ocsp', staples.good);
      await c.put('mail/a.ocsp', staples.mustStaple);
      const broken = path.join(c.dir, 'server-is-broken');
      const reloadLog = path.join(c.dir, 'reload-lists.log');
      await writeFile(broken, '');
      const reload = `test ! -e '${broken}' && ${BOTH_LISTS} >> '${reloadLog}'`;
      const first = await c.run(['--reload', reload]);
      expect(first.code, first.stderr).toBe(4);

      await c.remove('mail/a.ocsp');
      await c.put('mail/a.ocsp.withheld', Buffer.from('revoked\n'));
      await rm(broken);
      const second = await c.run(['--reload', reload]);
      expect(second.code, second.stderr).toBe(0);
      expect(existsSync(c.file('mail/a.ocsp'))).toBe(false);
      expect(await readFile(reloadLog, 'utf8')).toBe('web/good.ocsp|mail/a.ocsp\n');
    });

    it('never installs an older staple over a newer one (thisUpdate from the DER, not S3 metadata); says so once, exit 0', async ({
      expect,
    }) => {
      const c = await newCase('settle-older');
      await c.put('web/good.ocsp', staples.renewed);
      const args = ['--issuer', pki.intermediate.cert, '--reload', c.reload];
      const first = await c.run(args);
      expect(first.code, first.stderr).toBe(0);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.renewed);

      // An older, otherwise valid staple, whose metadata claims a newer thisUpdate.
      await c.put('web/good.ocsp', staples.good, {
        'this-update': new Date(Date.now() + 3_600_000).toISOString(),
      });
      const second = await c.run(args);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toContain('keep web/good.ocsp: the staple in S3 is older than the installed one');
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.renewed);
      expect(await c.reloads()).toEqual(['web/good.ocsp']);

      const third = await c.run(args);
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toBe(''); // said once

      // A newer one is installed again.
      await c.put('web/good.ocsp', staples.renewed);
      await rm(c.file('web/good.ocsp'));
      await c.preinstall('web/good.ocsp', staples.good, 0o644);
      const fourth = await c.run(args);
      expect(fourth.code, fourth.stderr).toBe(0);
      expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.renewed);
    });

    for (const { name, argv, available } of SHELLS) {
      it.skipIf(!available)(
        `under ${name}: a valid revoked staple is installed by default, warned about once per change, exit 0${available ? '' : ` (skipped: ${name} is not installed)`}`,
        async ({ expect }) => {
          const c = await newCase(`revoked-default-${name.replace(/\W/g, '')}`);
          const args = ['--issuer', pki.intermediate.cert, '--ca-file', pki.chain, '--reload', c.reload];
          await c.put('mail/revoked.ocsp', staples.revoked);
          const first = await c.run(args, { shell: argv });
          expect(first.code, first.stderr).toBe(0);
          expect(await readFile(c.file('mail/revoked.ocsp'))).toEqual(staples.revoked);
          const warning = 'warning mail/revoked.ocsp: certificate REVOKED';
          expect(first.stderr).toContain(warning);
          expect(await c.reloads()).toEqual(['mail/revoked.ocsp']);

          const second = await c.run(args, { shell: argv });
          expect(second.code, second.stderr).toBe(0);
          expect(second.stderr).toBe('');

          // The renewer renews the revoked staple: installed and reloaded, not warned about again.
          await c.put('mail/revoked.ocsp', staples.revokedLater);
          const third = await c.run(args, { shell: argv });
          expect(third.code, third.stderr).toBe(0);
          expect(await readFile(c.file('mail/revoked.ocsp'))).toEqual(staples.revokedLater);
          expect(third.stderr).toContain('installed mail/revoked.ocsp');
          expect(third.stderr).not.toContain('REVOKED');
          expect(await c.reloads()).toEqual(['mail/revoked.ocsp', 'mail/revoked.ocsp']);
        },
      );
    }

    it('--on-revoked withhold: the host serves no staple for a revoked certificate (installed one removed, said once, exit 0)', async ({
      expect,
    }) => {
      const c = await newCase('revoked-withhold');
      const reloadLog = path.join(c.dir, 'reload-removed.log');
      const reload = `${BOTH_LISTS} >> '${reloadLog}'`;
      // Before: web/site.ocsp is good, mail/revoked.ocsp installed as revoked by the default.
      await c.put('web/site.ocsp', staples.good);
      await c.put('mail/revoked.ocsp', staples.revoked);
      const before = await c.run(['--issuer', pki.intermediate.cert, '--reload', reload]);
      expect(before.code, before.stderr).toBe(0);
      expect(existsSync(c.file('mail/revoked.ocsp'))).toBe(true);

      // Then web/site.ocsp turns revoked too (the script, without --cert-dir, does not care for
      // which certificate), and the host switches to withhold.
      await c.put('web/site.ocsp', staples.revokedLater);
      const args = ['--issuer', pki.intermediate.cert, '--on-revoked', 'withhold', '--reload', reload];
      const r = await c.run(args);
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(c.file('web/site.ocsp'))).toBe(false);
      expect(existsSync(c.file('mail/revoked.ocsp'))).toBe(false);
      expect(r.stderr).toContain('withheld web/site.ocsp: certificate REVOKED (--on-revoked withhold)');
      expect(r.stderr).toContain('withheld mail/revoked.ocsp: certificate REVOKED (--on-revoked withhold)');
      expect(r.stderr).toContain('done: 0 installed, 0 rejected, 2 removed');
      expect(r.stderr).not.toContain('orphaned');
      const reloads = (await readFile(reloadLog, 'utf8')).trim().split('\n');
      expect(reloads).toEqual(['mail/revoked.ocsp,web/site.ocsp|', '|mail/revoked.ocsp,web/site.ocsp']);

      const again = await c.run(args);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toBe(''); // said once
      expect((await readFile(reloadLog, 'utf8')).trim().split('\n')).toHaveLength(2);
    });

    it('a <staple>.withheld marker from the renewer removes the installed staple, said once, not reported as orphaned', async ({
      expect,
    }) => {
      const c = await newCase('marker-withheld');
      await c.put('mail/a.ocsp', staples.good);
      await c.put('web/b.ocsp', staples.mustStaple);
      const reloadLog = path.join(c.dir, 'reload-removed.log');
      const reload = `${BOTH_LISTS} >> '${reloadLog}'`;
      const reloads = async () => (await readFile(reloadLog, 'utf8')).trim().split('\n');
      const args = ['--issuer', pki.intermediate.cert, '--reload', reload];
      const first = await c.run(args);
      expect(first.code, first.stderr).toBe(0);

      // The renewer's withhold: the staple object goes, a short marker takes its place.
      await c.remove('mail/a.ocsp');
      await c.put('mail/a.ocsp.withheld', Buffer.from('certificate revoked 2026-11-30T18:00:00Z\n'));
      const second = await c.run(args);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toContain(
        'withheld mail/a.ocsp: the renewer withholds it (certificate revoked 2026-11-30T18:00:00Z); the installed staple is removed',
      );
      expect(second.stderr).not.toContain('orphaned');
      expect(existsSync(c.file('mail/a.ocsp'))).toBe(false);
      expect(existsSync(c.staged('mail/a.ocsp.withheld'))).toBe(true);
      expect(await readFile(c.file('web/b.ocsp'))).toEqual(staples.mustStaple);
      expect(await reloads()).toEqual(['mail/a.ocsp,web/b.ocsp|', '|mail/a.ocsp']); // one staple less

      const third = await c.run(args);
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toBe('');
      expect(await reloads()).toHaveLength(2);
    });

    for (const { name, argv, available } of SHELLS) {
      it.skipIf(!available)(
        `under ${name}: a staple gone from S3 (retired) keeps its installed file, reported orphaned once, again only for a new orphan${available ? '' : ` (skipped: ${name} is not installed)`}`,
        async ({ expect }) => {
          const c = await newCase(`retired-${name.replace(/\W/g, '')}`);
          await c.put('web/old.ocsp', staples.good);
          await c.put('web/keep.ocsp', staples.mustStaple);
          await c.put('mail/later.ocsp', staples.good);
          const args = ['--issuer', pki.intermediate.cert, '--reload', c.reload];
          const first = await c.run(args, { shell: argv });
          expect(first.code, first.stderr).toBe(0);

          await c.remove('web/old.ocsp');
          const second = await c.run(args, { shell: argv });
          expect(second.code, second.stderr).toBe(0);
          expect(second.stderr).toContain('orphaned web/old.ocsp: gone from S3');
          expect(second.stderr).toContain(`then delete ${c.dest}/web/old.ocsp`);
          expect(await readFile(c.file('web/old.ocsp'))).toEqual(staples.good); // kept for the server
          expect(existsSync(c.staged('web/old.ocsp'))).toBe(false);
          expect(await c.reloads()).toHaveLength(1); // nothing changed on the server

          const third = await c.run(args, { shell: argv });
          expect(third.code, third.stderr).toBe(0);
          expect(third.stderr).toBe('');

          await c.remove('mail/later.ocsp');
          const fourth = await c.run(args, { shell: argv });
          expect(fourth.code, fourth.stderr).toBe(0);
          expect(fourth.stderr).toContain('orphaned mail/later.ocsp');
          expect(fourth.stderr).not.toContain('web/old.ocsp');

          // The operator removes it from the server configuration, then deletes the file.
          await rm(c.file('web/old.ocsp'));
          await rm(c.file('mail/later.ocsp'));
          const fifth = await c.run(args, { shell: argv });
          expect(fifth.code, fifth.stderr).toBe(0);
          expect(fifth.stderr).toBe('');
          expect(await readFile(c.file('web/keep.ocsp'))).toEqual(staples.mustStaple);
          expect(await c.reloads()).toHaveLength(1);
        },
      );
    }

    // --- hostile names (issue 20, items 1, 10 and 13) -------------------------------------------

    for (const { name, argv, available } of SHELLS) {
      it.skipIf(!available)(
        `under ${name}: keys with newlines, escapes or a .. path never reach a file outside --dest; they are refused and named printably; OCSP_INSTALLED is one name a line${available ? '' : ` (skipped: ${name} is not installed)`}`,
        async ({ expect }) => {
          const c = await newCase(`hostile-${name.replace(/\W/g, '')}`);
          // What a split line would name: DEST/../victim.key, and DEST/../outside/x.ocsp written
          // from DEST/outside/x.ocsp (a real staple, installed before).
          const victim = path.join(c.dir, 'victim.key');
          await writeFile(victim, 'private key');
          await c.preinstall('outside/x.ocsp', staples.good, 0o644);
          await c.put('outside/x.ocsp', staples.good);
          await c.put('a\n../victim.key\nz.ocsp.withheld', Buffer.from('revoked\n'));
          await c.put('b\n../outside/x.ocsp', staples.good);
          // s3rver lists keys as raw XML, where an escape (0x1b) cannot be: a tab stands for the
          // control characters in a key, and a marker's text carries the escape sequence.
          await c.put('web/tab\there.ocsp', staples.good);
          await c.put('web/gone.ocsp.withheld', Buffer.from('\x1b]0;owned\x07revoked\u009b31m\n'));
          await c.put('web/good.ocsp', staples.good);
          await c.put('web/my site.ocsp', staples.mustStaple);
          const listed = path.join(c.dir, 'listed.log');
          // The documented way to read the list: one name a line, spaces kept.
          const reload = `printf '%s\\n' "$OCSP_INSTALLED" | while IFS= read -r f; do test -f "$OCSP_DEST/$f" && printf '[%s]\\n' "$f"; done >> '${listed}'`;
          const r = await c.run(['--issuer', pki.intermediate.cert, '--reload', reload], { shell: argv });
          expect(r.code, r.stderr).toBe(1);
          expect(await readFile(victim, 'utf8')).toBe('private key');
          expect(existsSync(path.join(c.dir, 'outside'))).toBe(false);
          expect(r.stderr).toContain(
            'refuse a?../victim.key?z.ocsp.withheld: the name holds a control character (newline, escape…)',
          );
          expect(r.stderr).toContain('refuse b?../outside/x.ocsp: the name holds a control character');
          expect(r.stderr).toContain('refuse web/tab?here.ocsp: the name holds a control character');
          expect(r.stderr).toContain(
            'withheld web/gone.ocsp: the renewer withholds it (?]0;owned?revoked?31m)',
          );
          // Nothing but the line ends is a control character: no escape reached the log.
          expect(
            [...r.stderr.replace(/\n/g, '')].filter((ch) => ch < ' ' || (ch >= '\x7f' && ch <= '\x9f')),
          ).toEqual([]);
          expect(r.stderr).toContain('done: 2 installed, 3 rejected');
          expect(await readFile(c.file('web/good.ocsp'))).toEqual(staples.good);
          expect(await readFile(c.file('web/my site.ocsp'))).toEqual(staples.mustStaple);
          expect((await readdir(c.file('web'))).sort()).toEqual(['good.ocsp', 'my site.ocsp']);
          expect(await readFile(listed, 'utf8')).toBe('[web/good.ocsp]\n[web/my site.ocsp]\n');
        },
      );
    }

    // ---------------------------------------------------------------------------------------------

    interface CaseOptions {
      /** aws CLI for --aws-cli (default Debian's v2). */
      aws?: string;
      /** Run with a PATH without flock(1). */
      noFlock?: boolean;
    }

    interface RunOptions extends Partial<Pick<RunPullOptions, 'shell' | 'prefix'>> {
      env?: NodeJS.ProcessEnv;
      bucketOverride?: string;
      destOverride?: string;
      script?: string;
    }

    /** One test's own prefix in the bucket, destination and reload log. */
    async function newCase(id: string, options: CaseOptions = {}) {
      const dir = path.join(work, id);
      await mkdir(dir);
      const dest = path.join(dir, 'dest');
      const prefix = `${id}/staples/`;
      const reloadLog = path.join(dir, 'reload.log');
      const file = (rel: string) => path.join(dest, rel);
      return {
        dir,
        dest,
        file,
        /** A reload command that appends $OCSP_INSTALLED (one name a line) to the reload log, joined by commas. */
        reload: `{ printf '%s' "$OCSP_INSTALLED" | tr '\\n' ,; echo; } >> '${reloadLog}'`,
        async reloads(): Promise<string[]> {
          const text = await readFile(reloadLog, 'utf8').catch(() => '');
          return text.split('\n').filter(Boolean);
        },
        downloads: () => proxy.objectGets(prefix),
        async put(rel: string, body: Buffer, metadata?: Record<string, string>): Promise<void> {
          await admin.send(
            new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}${rel}`, Body: body, Metadata: metadata }),
          );
        },
        async remove(rel: string): Promise<void> {
          await admin.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${prefix}${rel}` }));
        },
        /** The script's hidden copy of S3 (DEST/.ocsp-staging). */
        staged: (rel: string) => path.join(dest, '.ocsp-staging', rel),
        async preinstall(rel: string, body: Buffer, fileMode: number): Promise<void> {
          await mkdir(path.dirname(file(rel)), { recursive: true });
          await writeFile(file(rel), body);
          await chmod(file(rel), fileMode);
        },
        run(args: string[], opts: RunOptions = {}): Promise<PullResult> {
          const env: NodeJS.ProcessEnv = {
            PATH: options.noFlock ? pathWithoutFlock : process.env.PATH,
            HOME: process.env.HOME ?? work,
            ...(process.env.PYENV_ROOT ? { PYENV_ROOT: process.env.PYENV_ROOT } : {}),
            AWS_ACCESS_KEY_ID: s3.env.AWS_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY: s3.env.AWS_SECRET_ACCESS_KEY,
            AWS_REGION: s3.env.AWS_REGION,
            AWS_EC2_METADATA_DISABLED: 'true',
            AWS_CONFIG_FILE: path.join(work, 'no-aws-config'),
            AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-aws-credentials'),
            LC_ALL: 'C',
            ...opts.env,
          };
          const base = [
            '--bucket',
            opts.bucketOverride ?? BUCKET,
            '--prefix',
            prefix,
            '--dest',
            opts.destOverride ?? dest,
            '--endpoint-url',
            proxy.endpoint,
            '--aws-cli',
            options.aws ?? AWS_V2,
          ];
          return runPull([...base, ...args], {
            env,
            shell: opts.shell ?? ['dash'],
            prefix: opts.prefix,
            script: opts.script,
            timeoutMs: RUN_TIMEOUT_MS,
          });
        },
      };
    }
  });

describe.concurrent('host/pull-staples.sh usage errors exit 2', () => {
  const cases: Array<{ name: string; args: string[]; message: RegExp }> = [
    { name: 'no arguments', args: [], message: /--bucket \(OCSP_BUCKET\) is required/ },
    { name: 'no --dest', args: ['--bucket', 'b'], message: /--dest \(OCSP_DEST\) is required/ },
    { name: 'an unknown option', args: ['--frobnicate'], message: /unknown option: --frobnicate/ },
    { name: 'an option without its value', args: ['--bucket'], message: /--bucket needs a value/ },
    {
      name: 'an unknown --on-revoked',
      args: ['--bucket', 'b', '--dest', '/tmp/x', '--on-revoked', 'reject'],
      message: /--on-revoked must be install or withhold, not 'reject'/,
    },
    {
      name: 'a non-numeric --min-validity',
      args: ['--bucket', 'b', '--dest', '/tmp/x', '--min-validity', 'soon'],
      message: /--min-validity must be a number of seconds/,
    },
    {
      name: 'an unreadable --issuer',
      args: ['--bucket', 'b', '--dest', '/tmp/x', '--issuer', '/nonexistent/issuer.pem'],
      message: /issuer file not readable/,
    },
    {
      name: 'a missing aws CLI',
      args: ['--bucket', 'b', '--dest', '/tmp/x', '--aws-cli', '/nonexistent/aws'],
      message: /aws CLI not found: \/nonexistent\/aws/,
    },
  ];
  it.for(cases)('$name', async ({ args, message }, { expect }) => {
    const r = await runPull(args, { shell: ['dash'], env: { PATH: process.env.PATH } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await runPull(['--help'], { shell: ['dash'], env: { PATH: process.env.PATH } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: .*--bucket B --dest DIR/);
  });
});

describe('host/pull-staples.sh lint', () => {
  if (onPath('shellcheck')) {
    it('is shellcheck-clean as POSIX sh (shellcheck -s sh)', () => {
      const out = (() => {
        try {
          return execFileSync('shellcheck', ['-s', 'sh', PULL_SCRIPT], { encoding: 'utf8', stdio: 'pipe' });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string };
          return `${e.stdout ?? ''}${e.stderr ?? ''}` || String(err);
        }
      })();
      expect(out).toBe('');
    });
  } else {
    it.skip('is shellcheck-clean: skipped, shellcheck is not installed (Debian: apt-get install shellcheck)', () =>
      undefined);
  }
});

// ---------------------------------------------------------------------------------------------

interface CountingProxy {
  endpoint: string;
  /** GETs of object keys (downloads) under `prefix` of the bucket so far. */
  objectGets(prefix: string): number;
  close(): Promise<void>;
}

/** A pass-through HTTP proxy to s3rver that records every object GET (SigV4 still verifies: Host is kept). */
async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const gets: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const segments = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && segments.length > 1) gets.push(decodeURIComponent(url.pathname));
    const up = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.once('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    objectGets: (prefix) => gets.filter((p) => p.startsWith(`/${BUCKET}/${prefix}`)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * An aws CLI shim: when GATE_STARTED is set it creates that file (the run holds its lock and has
 * reached the download), waits up to 30 s for GATE_RELEASE to exist, then runs the real CLI.
 */
async function writeGatedAws(file: string): Promise<string> {
  const text = [
    '#!/bin/sh',
    'if [ -n "${GATE_STARTED:-}" ]; then',
    '  : > "$GATE_STARTED"',
    '  i=0',
    '  while [ ! -e "$GATE_RELEASE" ] && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done',
    'fi',
    `exec ${AWS_V2} "$@"`,
    '',
  ].join('\n');
  await writeFile(`${file}.tmp`, text, { mode: 0o755 });
  await rename(`${file}.tmp`, file);
  return file;
}

/** Resolves once the wall clock has passed into the next whole second (and a little more). */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1_100 - (Date.now() % 1_000)));
}

async function mode(file: string): Promise<number> {
  return (await stat(file)).mode & 0o7777;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid of a process that has just exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('true', [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve(child.pid as number));
  });
}
