/**
 * The operator's day with the `ocsp-renewer` command, run as a person runs it from cron or
 * systemd: a real process (the development launcher over the TypeScript sources), real files, a
 * real `openssl ocsp` responder, real signals and a real reload command (a shell script that
 * records its calls).
 */
import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv } from '../lambda/aws/config.js';
import { main } from '../lambda/cli/cli.js';
import { lockFileFor } from '../lambda/cli/locations.js';
import {
  DEV_BIN,
  REPO_ROOT,
  killAll,
  runToEnd,
  start,
  waitFor,
  type ProcessResult,
} from './helpers/cli-process.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';

const PRIVATE = '--allow-private-responders';
const ISO_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

let pki: TestPki;
let responder: OpensslResponder;
let work: string;
let stateHome: string;

/** The command's environment: its own state directory, no guard-lifting variable from the shell. */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: stateHome };
  delete e.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
  return e;
}
const cli = (args: string[]): Promise<ProcessResult> =>
  runToEnd(process.execPath, [DEV_BIN, ...args], { env: env() });
const startCli = (args: string[]) => start(process.execPath, [DEV_BIN, ...args], { env: env() });

async function freshDir(label: string): Promise<string> {
  return mkdtemp(path.join(work, `${label}-`));
}
/** A certificate directory holding the named leaves' bundles as <name>.pem. */
async function certDir(...leaves: Array<keyof TestPki['leaves']>): Promise<string> {
  const dir = await freshDir('certs');
  for (const leaf of leaves) await copyFile(pki.leaves[leaf].bundle, path.join(dir, `${leaf}.pem`));
  return dir;
}

beforeAll(async () => {
  pki = await makeTestPki();
  responder = await startDelegatedResponder(pki);
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-operator-'));
  stateHome = await freshDir('state-home');
});

afterAll(async () => {
  killAll();
  await responder?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  await pki?.cleanup();
});

// --- help and flags -----------------------------------------------------------------------------------

describe('help and flags', () => {
  it('--version prints the package version; no arguments prints usage to stderr and exits 2', async () => {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const v = await cli(['--version']);
    expect(v).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('ocsp-renewer renew --certs');
  });

  it('inspect --help and fetch --help print help and exit 0 without reading files or asking anyone', async () => {
    // The certificate does not exist and the responder URL would be refused: help touches neither.
    for (const command of ['inspect', 'fetch']) {
      const res = await cli([command, '/nonexistent/file.pem', '--help']);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^Usage: ocsp-renewer ${command} `));
      expect(res.stderr).toBe('');
    }
  });

  it("every command's help lists exactly the flags it accepts", async () => {
    const flagsOf = (help: string) => [
      ...new Set(
        help
          .slice(help.indexOf('Options:'))
          .split('\n')
          .map((l) => /^\s+(?:-\w, )?--([a-z-]+)/.exec(l)?.[1])
          .filter((f): f is string => f !== undefined),
      ),
    ];
    const helps = new Map<string, string[]>();
    for (const command of ['renew', 'inspect', 'fetch', 'status']) {
      const res = await cli([command, '--help']);
      expect(res.code).toBe(0);
      helps.set(command, flagsOf(res.stdout));
    }
    expect(helps.get('fetch')).not.toContain('concurrency');
    // docs/cli.md has one options table per command, listing exactly these flags.
    const reference = await readFile(path.join(REPO_ROOT, 'docs', 'cli.md'), 'utf8');
    for (const [command, flags] of helps) {
      const start = reference.indexOf(`\n## \`ocsp-renewer ${command}\`\n`);
      expect(start, `docs/cli.md has a section "ocsp-renewer ${command}"`).toBeGreaterThan(-1);
      const end = reference.indexOf('\n## ', start + 1);
      const section = reference.slice(start, end === -1 ? undefined : end);
      const documented = [...section.matchAll(/^\| `--([a-z-]+)/gm)].map((m) => m[1]);
      expect(documented.sort(), `docs/cli.md options table of ${command}`).toEqual(
        flags.filter((f) => f !== 'help').sort(),
      );
    }
    expect(helps.get('renew')).toEqual(
      expect.arrayContaining(['reload', 'quiet', 'lock-wait', 'concurrency']),
    );
    const quietIo = { out: () => undefined, err: (t: string) => void (lastErr = t) };
    let lastErr = '';
    for (const [command, flags] of helps) {
      // Every listed flag parses (with --help nothing runs, so values need not make sense).
      const args = flags.filter((f) => f !== 'help').flatMap((f) => [`--${f}`, 'x']);
      // A boolean flag's "x" becomes a positional, which --help ignores.
      const all = await cli([command, ...args, '--help']);
      expect(all.code, `${command}: ${all.stderr}`).toBe(0);
      // Every flag of another command that this one does not list is refused.
      const others = new Set([...helps.values()].flat().filter((f) => !flags.includes(f)));
      for (const flag of others) {
        expect(await main([command, `--${flag}`, 'x', '--help'], quietIo), `${command} --${flag}`).toBe(2);
        expect(lastErr).toContain(`unknown option '--${flag}'`);
      }
    }
  });
});

// --- settings -----------------------------------------------------------------------------------------

describe('one settings module: the CLI and the Lambda say the same', () => {
  const cases = [
    ['hash', 'CERTID_HASH', 'md5', 'must be sha1 or sha256, got "md5"'],
    ['on-revoked', 'ON_REVOKED', 'ignore', 'must be publish or withhold, got "ignore"'],
    ['refresh-at', 'REFRESH_AT', '0.99', 'must be between 0.1 and 0.95, got "0.99"'],
    ['concurrency', 'CONCURRENCY', '0', 'must be a positive integer, got "0"'],
    ['timeout', 'HTTP_TIMEOUT_SECONDS', '0', 'must be a number of seconds ≥ 1, got "0"'],
    ['timeout', 'HTTP_TIMEOUT_SECONDS', '-1', 'must be a number of seconds ≥ 1, got "-1"'],
  ] as const;

  it.each(cases)('--%s / %s %s', async (flag, variable, value, reason) => {
    const certs = await certDir('good');
    const res = await cli(['renew', '--certs', certs, `--${flag}`, value, '--state', 'none']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`--${flag} ${reason}`);
    expect(() => configFromEnv({ BUCKET: 'b', [variable]: value })).toThrow(`${variable} ${reason}`);
  });
});

describe('renew-only numbers', () => {
  it.each([
    ['--reload-timeout', '0', '--reload-timeout must be a positive number of seconds, got "0"'],
    ['--lock-wait', 'soon', '--lock-wait must be a non-negative number of seconds, got "soon"'],
    ['--watch-interval', '1.5', '--watch-interval must be a positive integer'],
  ])('%s %s is a usage error', async (flag, value, message) => {
    const res = await cli(['renew', '--certs', work, flag, value]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
  });
});

// --- the reload hook ----------------------------------------------------------------------------------

describe('renew --reload', () => {
  it('runs once after a change with the changed staples in its env; a failure exits 4 and is retried until it succeeds', async () => {
    const certs = await certDir('good', 'revoked');
    const staples = await freshDir('staples');
    const dir = await freshDir('reload');
    const calls = path.join(dir, 'calls.log');
    const exitWith = path.join(dir, 'exit-code');
    const script = path.join(dir, 'reload.sh');
    await writeFile(
      script,
      `#!/bin/sh\nprintf '%s|%s|%s\\n' "$(printf '%s' "$OCSP_CHANGED" | tr '\\n' ',')" "$(printf '%s' "$OCSP_INSTALLED" | tr '\\n' ',')" "$OCSP_DEST" >> '${calls}'\nexit "$(cat '${exitWith}')"\n`,
    );
    await chmod(script, 0o755);
    const renew = (...more: string[]) =>
      cli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--reload', script, ...more]);
    const callLines = async () =>
      existsSync(calls) ? (await readFile(calls, 'utf8')).trim().split('\n') : [];
    const changed = `${path.join(staples, 'good.ocsp')},${path.join(staples, 'revoked.ocsp')}|good.ocsp,revoked.ocsp|${staples}`;

    // 1. The reload fails: exit 4, the staples are written, the failure is said.
    await writeFile(exitWith, '3');
    const first = await renew();
    expect(first.code, first.stderr).toBe(4);
    expect(first.stderr).toContain('reload command failed (exit code 3)');
    expect((await readdir(staples)).sort()).toEqual(['good.ocsp', 'revoked.ocsp']);
    expect(await callLines()).toEqual([changed]);

    // 2. Nothing changes, but the failed reload is retried, still failing: exit 4 again.
    const second = await renew();
    expect(second.code, second.stderr).toBe(4);
    expect(second.stderr).toContain('reload pending since');
    expect(await callLines()).toEqual([changed, changed]);

    // 3. The reload works now: exit 0, and the same list is given once more.
    await writeFile(exitWith, '0');
    const third = await renew();
    expect(third.code, third.stderr).toBe(0);
    expect(await callLines()).toEqual([changed, changed, changed]);

    // 4. Nothing changed, nothing pending: no reload at all.
    const fourth = await renew();
    expect(fourth.code, fourth.stderr).toBe(0);
    expect(await callLines()).toHaveLength(3);

    // 5. --force changes both staples again; a reload that hangs is killed after --reload-timeout.
    const hung = await cli([
      'renew', '--certs', certs, '--staples', staples, PRIVATE, '--force',
      '--reload', 'sleep 30', '--reload-timeout', '1',
    ]); // prettier-ignore
    expect(hung.code, hung.stderr).toBe(4);
    expect(hung.stderr).toContain('reload command failed (timed out after 1 s)');
  });
});

describe('renew --reload: names reach it only through its environment (issue 20, keep)', () => {
  it('a certificate named with shell syntax is a value in OCSP_INSTALLED and OCSP_CHANGED, never a command', async () => {
    const certs = await freshDir('shell-names');
    const staples = await freshDir('staples');
    const cwd = await freshDir('cwd');
    const name = 'a;touch PWNED1;$(touch PWNED2)`touch PWNED3`\'"b';
    await copyFile(pki.leaves.good.bundle, path.join(certs, `${name}.pem`));
    const listed = path.join(cwd, 'listed');
    const reload = `printf '%s\\n' "$OCSP_INSTALLED" "$OCSP_CHANGED" > '${listed}'`;
    const r = await runToEnd(
      process.execPath,
      [DEV_BIN, 'renew', '--certs', certs, '--staples', staples, PRIVATE, '--reload', reload],
      { env: env(), cwd },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(listed, 'utf8')).toBe(`${name}.ocsp\n${path.join(staples, `${name}.ocsp`)}\n`);
    expect((await readdir(cwd)).sort()).toEqual(['listed']); // no PWNED file
  });
});

// --- lock, quiet, daemon ------------------------------------------------------------------------------

describe('cron and systemd', () => {
  it('two overlapping runs on the same staples never interleave: the second waits, then exits 75', async () => {
    const certs = await certDir('good');
    const staples = await freshDir('staples');
    const dir = await freshDir('lock');
    const marker = path.join(dir, 'reloading');
    // The first run holds the lock through its reload, which lasts until the test lets it go.
    const release = path.join(dir, 'release');
    const first = startCli([
      'renew', '--certs', certs, '--staples', staples, PRIVATE, '--state', 'none',
      '--reload', `touch '${marker}'; while [ ! -e '${release}' ]; do sleep 0.1; done`,
    ]); // prettier-ignore
    await waitFor('the first run to reach its reload', () => existsSync(marker), 60_000);
    const lockFile = lockFileFor(staples, { XDG_STATE_HOME: stateHome });
    expect(existsSync(lockFile)).toBe(true);
    expect(lockFile.startsWith(staples)).toBe(false);

    const second = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--lock-wait', '1']);
    expect(second.code, second.stderr).toBe(75);
    expect(second.stderr).toContain(`holds the lock ${lockFile} (pid ${first.child.pid})`);

    // A third run that may wait long enough goes once the first is done.
    const third = startCli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--lock-wait', '60']);
    await writeFile(release, '');
    expect((await first.exited).code).toBe(0);
    const thirdDone = await third.exited;
    expect(thirdDone.code, thirdDone.stderr).toBe(0);
    expect(existsSync(lockFile)).toBe(false);

    // A lock left by a process that died (a pid no longer alive) is stale and taken over.
    await mkdir(path.dirname(lockFile), { recursive: true });
    const dead = start('/bin/true', []);
    await dead.exited;
    await writeFile(lockFile, `${dead.child.pid} ${hostname()}\n`);
    const afterCrash = await cli([
      'renew',
      '--certs',
      certs,
      '--staples',
      staples,
      PRIVATE,
      '--lock-wait',
      '0',
    ]);
    expect(afterCrash.code, afterCrash.stderr).toBe(0);
  });

  it('a reader that goes away (`| head`) does not crash the run: exit 0, no stack trace, the staple written', async () => {
    const certs = await certDir('good');
    const staples = await freshDir('staples');
    const running = startCli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--json']);
    running.child.stdout!.destroy(); // the reader is gone before the report is written: EPIPE
    const done = await running.exited;
    expect(done.stderr).not.toMatch(/EPIPE|Unhandled|at .*\.js:\d+/);
    expect(done.code).toBe(0);
    expect(existsSync(path.join(staples, 'good.ocsp'))).toBe(true);
  });

  it('--quiet prints the renewals, then nothing at all when all is well', async () => {
    const certs = await certDir('good', 'noOcsp');
    const staples = await freshDir('staples');
    const args = ['renew', '--certs', certs, '--staples', staples, PRIVATE, '--quiet'];
    const first = await cli(args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('good.pem');
    expect(first.stdout).toContain('renewed');
    expect(first.stdout).not.toContain('noOcsp.pem'); // skipped: not news
    const second = await cli(args);
    expect(second).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('--persist --json prints one JSON line per run, logs with ISO timestamps, and a missing directory fails at start', async () => {
    const missing = await cli(['renew', '--persist', '--certs', path.join(work, 'nope'), PRIVATE]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`the certificates ${path.join(work, 'nope')} does not exist`);
    const certs = await certDir('good');
    const noStaples = await cli([
      'renew',
      '--persist',
      '--certs',
      certs,
      '--staples',
      path.join(work, 'nope'),
      PRIVATE,
    ]);
    expect(noStaples.code).toBe(1);
    expect(noStaples.stderr).toContain('the staples directory');

    const staples = await freshDir('staples');
    const daemon = startCli([
      'renew',
      '--persist',
      '--json',
      '--watch-interval',
      '1',
      '--certs',
      certs,
      '--staples',
      staples,
      PRIVATE,
    ]);
    try {
      await waitFor(
        'the first report',
        () => daemon.stdout().includes('\n') || daemon.result() !== undefined,
      );
      daemon.child.kill('SIGUSR2');
      await waitFor(
        'a second report',
        () => daemon.stdout().split('\n').length > 2 || daemon.result() !== undefined,
      );
      daemon.child.kill('SIGTERM');
      const done = await daemon.exited;
      expect(done.code, done.stderr).toBe(0);
      const lines = done.stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThanOrEqual(2);
      const reports = lines.map((l) => JSON.parse(l) as { results: Array<{ name: string; action: string }> });
      expect(reports[0]!.results).toEqual([expect.objectContaining({ name: 'good.pem', action: 'renewed' })]);
      expect(reports[1]!.results.map((r) => r.name)).toEqual(['good.pem']);
      const logLines = done.stderr.trim().split('\n');
      expect(logLines.length).toBeGreaterThanOrEqual(3);
      for (const line of logLines) expect(line).toMatch(ISO_LINE);
      expect(done.stderr).toContain('SIGUSR2: forcing all');
      expect(done.stderr).toContain('SIGTERM: stopping');
      // The last log line says the daemon is gone.
      expect(logLines.at(-1)).toMatch(new RegExp(`${ISO_LINE.source}ocsp-renewer pid \\d+: stopped$`));
    } finally {
      daemon.child.kill('SIGKILL');
    }
  });
});

describe('host/examples: the systemd units and the cron line', () => {
  const examples = path.join(REPO_ROOT, 'host', 'examples');
  const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((f) => existsSync(f));
  const units = ['ocsp-renewer.service', 'ocsp-renewer-once.service', 'ocsp-renewer-once.timer'];

  /** The units with the command's path replaced by one that exists here (verify checks it). */
  async function unitsHere(): Promise<string> {
    const dir = await freshDir('units');
    for (const unit of units) {
      const text = await readFile(path.join(examples, unit), 'utf8');
      await writeFile(path.join(dir, unit), text.replaceAll('/usr/local/bin/ocsp-renewer', DEV_BIN));
    }
    return dir;
  }

  it.runIf(analyze)(
    'systemd-analyze verifies the units and rates both services exposure <= 2.5 (hardened)',
    async () => {
      const dir = await unitsHere();
      const verify = await runToEnd(analyze!, ['verify', ...units.map((u) => path.join(dir, u))]);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stderr.trim()).toBe('');
      for (const unit of units.filter((u) => u.endsWith('.service'))) {
        const text = await readFile(path.join(examples, unit), 'utf8');
        for (const line of [
          'ProtectSystem=strict',
          'ReadWritePaths=/etc/ssl/ocsp',
          'StateDirectory=ocsp-renewer',
          'Environment=XDG_STATE_HOME=/var/lib',
          'NoNewPrivileges=yes',
          'PrivateTmp=yes',
        ]) {
          // prettier-ignore
          expect(text.split('\n'), `${unit}: ${line}`).toContain(line);
        }
        const security = await runToEnd(analyze!, [
          'security',
          '--offline=true',
          '--threshold=25',
          path.join(dir, unit),
        ]);
        expect(security.code, security.stdout.split('\n').at(-2)).toBe(0);
      }
    },
  );

  it("the one-shot unit's and the cron line's command run as written: renew, reload, then quiet", async () => {
    const certs = await certDir('good');
    const staples = await freshDir('staples');
    const calls = path.join(await freshDir('reload'), 'calls.log');
    /** ExecStart's words, with the host's paths swapped for the test's. */
    const words = (line: string) =>
      [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => {
        const word = m[1] ?? m[2] ?? m[3]!;
        return word === 'systemctl reload nginx'
          ? `echo "$OCSP_INSTALLED" >> '${calls}'`
          : word.replace('/etc/ssl/tls', certs).replace('/etc/ssl/ocsp', staples);
      });
    const unit = await readFile(path.join(examples, 'ocsp-renewer-once.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!;
    const cron = (await readFile(path.join(examples, 'ocsp-renewer.cron'), 'utf8'))
      .split('\n')
      .find((l) => /^\d/.test(l))!;
    const cronCommand = cron.slice(cron.indexOf('/usr/local/bin/ocsp-renewer'));
    for (const command of [execStart, cronCommand]) {
      const [program, ...args] = words(command);
      expect(program).toBe('/usr/local/bin/ocsp-renewer');
      const run = () => cli([...args, PRIVATE]);
      const first = await run();
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toMatch(/good\.pem\s+renewed/);
      const second = await run();
      expect(second).toMatchObject({ code: 0, stdout: '', stderr: '' });
      await rm(path.join(staples, 'good.ocsp'));
    }
    expect((await readFile(calls, 'utf8')).trim().split('\n')).toEqual(['good.ocsp', 'good.ocsp']);
  });
});

// --- messages -----------------------------------------------------------------------------------------

describe('messages a person understands', () => {
  it('a certificate that is not DER says where it breaks, not what asn1js says', async () => {
    const dir = await freshDir('bad');
    const bad = path.join(dir, 'bad.pem');
    await writeFile(bad, Buffer.from('3003220100', 'hex')); // a constructed INTEGER
    const res = await cli(['fetch', bad, PRIVATE]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `parse certificate ${bad}: not a certificate: DER decoding failed at byte 2: a constructed encoding where DER requires a primitive one`,
    );
    expect(res.stderr).not.toMatch(/Constructed encoding used|Too big integer|schema/);
  });

  it('inspect without an issuer says the signature was NOT CHECKED, not "NOT valid"', async () => {
    const certs = await certDir('good');
    const staples = await freshDir('staples');
    expect((await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE])).code).toBe(0);
    const res = await cli(['inspect', path.join(staples, 'good.ocsp')]);
    expect(res.stdout).toMatch(
      /^signature: +NOT CHECKED: no issuer \(pass --cert <bundle> or --issuer <pem>\)$/m,
    );
    expect(res.stdout).not.toContain('NOT valid');
    const json = await cli(['inspect', path.join(staples, 'good.ocsp'), '--json']);
    expect((JSON.parse(json.stdout) as { signature: { checked: boolean } }).signature.checked).toBe(false);
    const withIssuer = await cli([
      'inspect',
      path.join(staples, 'good.ocsp'),
      '--cert',
      pki.leaves.good.bundle,
      '--json',
    ]);
    expect(withIssuer.code).toBe(0);
    expect(JSON.parse(withIssuer.stdout)).toMatchObject({ signature: { valid: true, checked: true } });
  });

  it('a certificate file over 1 MiB is refused before it is read, by fetch, inspect and renew', async () => {
    const dir = await freshDir('big');
    const big = path.join(dir, 'big.pem');
    await writeFile(big, '');
    await truncate(big, 2 * 1024 * 1024);
    const fetched = await cli(['fetch', big, PRIVATE]);
    expect(fetched.code).toBe(1);
    expect(fetched.stderr).toContain(
      `parse certificate ${big}: 2.0 MiB is too large for a certificate or staple (limit 1 MiB)`,
    );
    const renewed = await cli([
      'renew',
      '--certs',
      dir,
      '--staples',
      await freshDir('staples'),
      PRIVATE,
      '--json',
    ]);
    expect(renewed.code).toBe(1);
    const report = JSON.parse(renewed.stdout) as { results: Array<{ reason: string }> };
    expect(report.results[0]!.reason).toContain('2.0 MiB is too large for a certificate file (limit 1 MiB)');
  });

  it('--certs FILE renews just that certificate, its staple beside it', async () => {
    const certs = await certDir('good', 'revoked');
    const res = await cli(['renew', '--certs', path.join(certs, 'good.pem'), PRIVATE, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as { results: Array<{ name: string; action: string }> };
    expect(report.results.map((r) => [r.name, r.action])).toEqual([['good.pem', 'renewed']]);
    expect((await readdir(certs)).sort()).toEqual(['good.ocsp', 'good.pem', 'revoked.pem']);
  });

  it('fetch --out into a missing directory is an error, and creates nothing', async () => {
    const dir = await freshDir('out');
    const out = path.join(dir, 'missing', 'good.ocsp');
    const res = await cli(['fetch', pki.leaves.good.bundle, PRIVATE, '--out', out]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`the directory ${path.join(dir, 'missing')} does not exist`);
    expect(existsSync(path.join(dir, 'missing'))).toBe(false);
  });
});
