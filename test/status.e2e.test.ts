/**
 * `ocsp-renewer status` end to end: the real command over a fleet of real certificates (test PKI)
 * and real `openssl ocsp`-signed staples, with the state of a real renewer run; its HTML page
 * loaded by headless Chromium (Debian `chromium`); and the progress line of `renew` in a real
 * pseudo-terminal (`script` from util-linux) against a piped run.
 *
 * Sorting in the browser is driven through the page's URL fragment (`#sort=-certificate`), which
 * runs the same code a header click runs; the comparator itself is unit-tested in status.test.ts.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_COLOURS } from '../lambda/report/status-page.js';
import type { StatusReport } from '../lambda/core/status.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { makeStaple } from './helpers/pull-script.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(REPO_ROOT, 'lambda/cli/ocsp-renewer.js');
const CHROMIUM = '/usr/bin/chromium';
/** Generous: two shared cores, a dozen test processes. */
const SLOW_MS = 120_000;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (its process group killed after SLOW_MS). */
function execute(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, XDG_STATE_HOME: stateHome, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, SLOW_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const cli = (args: string[]) => execute(process.execPath, [BIN, ...args]);

let pki: TestPki;
let work: string;
let stateHome: string;
let fleet: string;
let stateFile: string;
let renewRun: Result;
/** Status is judged 20 h after the staples were signed: the one-day staple has 4 h left. */
let at: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-status-'));
  stateHome = path.join(work, 'xdg');
  // Nothing listens on the PKI's OCSP port: every fetch is refused (the failing certificate).
  pki = await makeTestPki();
  fleet = path.join(work, 'fleet');
  const failing = path.join(work, 'failing-certs');
  const scratch = path.join(work, 'scratch');
  await Promise.all([mkdir(fleet), mkdir(failing), mkdir(scratch)]);
  const l = pki.leaves;
  for (const [name, leaf] of [
    ['good', l.good],
    ['revoked', l.revoked],
    ['mustStaple', l.mustStaple],
    ['noOcsp', l.noOcsp],
    ['ec', l.ec],
  ] as const) {
    await copyFile(leaf.bundle, path.join(fleet, `${name}.pem`));
  }
  await copyFile(l.ec.bundle, path.join(failing, 'ec.pem'));
  // Real openssl-signed staples: a week for good and revoked, a day for the one that will lapse.
  await makeStaple(pki, l.good.cert, path.join(scratch, 'good.ocsp'), { ndays: 7 });
  await makeStaple(pki, l.revoked.cert, path.join(scratch, 'revoked.ocsp'), { ndays: 7 });
  await makeStaple(pki, l.mustStaple.cert, path.join(scratch, 'mustStaple.ocsp'), { ndays: 1 });
  at = new Date(Date.now() + 20 * 3_600_000).toISOString();
  for (const f of ['good.ocsp', 'revoked.ocsp', 'mustStaple.ocsp']) {
    await copyFile(path.join(scratch, f), path.join(fleet, f));
  }
  // A real renewer run for ec.pem (responder down): its failure lands in the state.
  stateFile = path.join(work, 'state.json');
  renewRun = await cli([
    'renew',
    '--certs',
    failing,
    '--staples',
    fleet,
    '--state',
    stateFile,
    '--allow-private-responders',
    '--timeout',
    '5',
  ]);
}, SLOW_MS);

afterAll(async () => {
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('status over a directory', () => {
  let json: StatusReport;
  let jsonRun: Result;

  beforeAll(async () => {
    expect(renewRun.code, renewRun.stderr + renewRun.stdout).toBe(1);
    jsonRun = await cli(['status', fleet, '--state', stateFile, '--json', '--at', at]);
    json = JSON.parse(jsonRun.stdout) as StatusReport;
  }, SLOW_MS);

  it('should list every certificate most urgent first and exit 1', () => {
    expect(jsonRun.code).toBe(1);
    expect(json.rows.map((r) => [r.certificate, r.health])).toEqual([
      ['ec.pem', 'failing'],
      ['revoked.pem', 'revoked'],
      ['mustStaple.pem', 'lapsing'],
      ['good.pem', 'healthy'],
      ['noOcsp.pem', 'skipped'],
    ]);
  });

  it('should show the renewer’s last error for the failing certificate', () => {
    const ec = json.rows[0]!;
    expect(ec).toMatchObject({ lastOutcome: 'failed', failures: 1 });
    expect(ec.lastError).toMatch(/^fetch ec\.pem: /);
    expect(ec.why).toContain('fetch ec.pem');
  });

  it('should read the staples themselves: status, window, must-staple, responder host', () => {
    const row = (name: string) => json.rows.find((r) => r.certificate === name)!;
    expect(row('revoked.pem').certStatus).toBe('revoked');
    expect(row('good.pem')).toMatchObject({ certStatus: 'good', mustStaple: false });
    expect(row('good.pem').validityHours).toBeGreaterThan(7 * 24 - 21);
    expect(row('mustStaple.pem')).toMatchObject({ mustStaple: true });
    expect(row('mustStaple.pem').validityHours).toBeLessThanOrEqual(4);
    expect(row('mustStaple.pem').why).toBe('less than 6h 0m of validity left');
    expect(row('good.pem').responderHost).toBe(new URL(pki.ocspUrl).host);
    expect(row('noOcsp.pem').why).toBe('no OCSP URL in the certificate');
    expect(json.summary).toMatchObject({
      healthy: 1,
      failing: 1,
      revoked: 1,
      lapsing: 1,
      skipped: 1,
      attention: 3,
    });
    expect(json.summary.leastValidityCertificate).toBe('mustStaple.pem');
  });

  it('should print a table with a summary line', async () => {
    const text = await cli(['status', fleet, '--state', stateFile, '--at', at]);
    expect(text.code).toBe(1);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CERTIFICATE\s+HEALTH/);
    expect(lines[1]).toMatch(/^ec\.pem\s+failing/);
    expect(lines.at(-1)).toMatch(
      /^1 healthy, 0 due, 1 failing, 1 revoked, 1 lapsing, 1 skipped; least validity [34]h \d+m \(mustStaple\.pem\)$/,
    );
  });

  it('should work without any state, from the certificates and staples alone', async () => {
    const res = await cli(['status', fleet, '--state', 'none', '--json', '--at', at]);
    const rows = (JSON.parse(res.stdout) as StatusReport).rows;
    expect(rows[0]).toMatchObject({ certificate: 'ec.pem', health: 'failing', why: 'no staple' });
    expect(rows.map((r) => r.health)).toEqual(['failing', 'revoked', 'lapsing', 'healthy', 'skipped']);
  });

  it('should exit 0 for a healthy directory, and 1 once --warn-hours reaches its least validity', async () => {
    const healthy = path.join(work, 'healthy');
    await mkdir(healthy);
    await copyFile(path.join(fleet, 'good.pem'), path.join(healthy, 'good.pem'));
    await copyFile(path.join(fleet, 'good.ocsp'), path.join(healthy, 'good.ocsp'));
    const ok = await cli(['status', healthy, '--state', 'none']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toContain('1 healthy, 0 due, 0 failing;');
    const warn = await cli(['status', healthy, '--state', 'none', '--warn-hours', String(8 * 24)]);
    expect(warn.code).toBe(1);
    expect(warn.stdout).toMatch(/good\.pem: less than 8d 0h of validity left/);
  });

  it.each([
    ['no location', ['status'], /status expects 1 argument\(s\), got 0/],
    ['a bad --warn-hours', ['status', '.', '--warn-hours', 'soon'], /--warn-hours must be a number/],
    ['an unknown flag', ['status', '.', '--bogus'], /Unknown option '--bogus'/],
    [
      'another scheme',
      ['status', 'https://example.net/'],
      /status reads a directory or s3:\/\/bucket\/prefix/,
    ],
  ])('should exit 2 on %s', async (_what, args, message) => {
    const res = await cli(args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it('should exit 1 naming a location that is not a directory', async () => {
    const res = await cli(['status', path.join(work, 'nope')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`status: ${path.join(work, 'nope')} is not a directory`);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('status --html in headless Chromium', () => {
  let page: string;
  let profile: string;
  const chromium = (args: string[]) =>
    execute(CHROMIUM, [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      ...args,
    ]);
  /** `<tr …>` attributes of every row, in DOM order. */
  const rowsOf = (dom: string) =>
    [
      ...dom.matchAll(
        /<tr data-certificate="([^"]+)" data-health="([^"]+)" data-colour="([^"]+)"[^>]*?style="([^"]*)"/g,
      ),
    ].map((m) => ({ certificate: m[1], health: m[2], colour: m[3], style: m[4] }));

  beforeAll(async () => {
    page = path.join(work, 'status page.html');
    profile = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-chromium-'));
    const res = await cli(['status', fleet, '--state', stateFile, '--html', page, '--at', at]);
    expect(res.code, res.stderr).toBe(1);
  }, SLOW_MS);

  afterAll(async () => {
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it(
    'should render every row, failures first, coloured by health, after its script ran',
    async () => {
      const res = await chromium(['--dump-dom', pathToFileURL(page).href]);
      expect(res.code, res.stderr).toBe(0);
      const rows = rowsOf(res.stdout);
      expect(rows.map((r) => [r.certificate, r.health])).toEqual([
        ['ec.pem', 'failing'],
        ['revoked.pem', 'revoked'],
        ['mustStaple.pem', 'lapsing'],
        ['good.pem', 'healthy'],
        ['noOcsp.pem', 'skipped'],
      ]);
      for (const r of rows) {
        expect(r.colour).toBe(HEALTH_COLOURS[r.health as keyof typeof HEALTH_COLOURS]);
        // Set by the page's script: it ran in the browser.
        expect(r.style).toContain(`--c: ${r.colour}`);
      }
      expect(res.stdout).toMatch(/<p id="summary" data-attention="3">1 healthy, 0 due, 1 failing/);
      expect(res.stdout).toContain('<body data-overall="attention"');
      // The timeline: a bar with a now marker for each certificate with a staple window.
      expect(res.stdout.match(/class="mk now" style="left:/g)).toHaveLength(3);
      expect(res.stdout.match(/class="fill" style="width:/g)).toHaveLength(3);
    },
    SLOW_MS,
  );

  it(
    'should run under its Content-Security-Policy with no violation: style and script allowed by hash, nothing else',
    async () => {
      // Chromium logs console messages, CSP refusals included, with --enable-logging=stderr.
      const res = await chromium([
        '--enable-logging=stderr',
        '--v=0',
        '--dump-dom',
        pathToFileURL(page).href,
      ]);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';',
      );
      expect(res.stderr).not.toMatch(/Content Security Policy/);
      // The script ran (its hash was accepted): it set each row's colour variable.
      expect(res.stdout).toMatch(
        /<tr data-certificate="ec\.pem"[^>]*class="h-failing"[^>]*style="--c: #c62828;"/,
      );

      // The policy is enforced: the same page with one more inline script and a style attribute.
      const tampered = path.join(work, 'status page tampered.html');
      const html = await readFile(page, 'utf8');
      await writeFile(
        tampered,
        html.replace(
          '</body>',
          '<p id="x" style="color:red">x</p><script>document.body.dataset.injected="1"</script></body>',
        ),
      );
      const blocked = await chromium([
        '--enable-logging=stderr',
        '--v=0',
        '--dump-dom',
        pathToFileURL(tampered).href,
      ]);
      expect(blocked.stdout).not.toContain('data-injected');
      expect(blocked.stderr).toMatch(
        /Applying inline style violates the following Content Security Policy directive/,
      );
      expect(blocked.stderr).toMatch(
        /Executing inline script violates the following Content Security Policy directive/,
      );
    },
    SLOW_MS,
  );

  it(
    'should sort by a column from the URL fragment, as a header click does',
    async () => {
      const res = await chromium(['--dump-dom', `${pathToFileURL(page).href}#sort=-certificate`]);
      expect(res.code, res.stderr).toBe(0);
      expect(rowsOf(res.stdout).map((r) => r.certificate)).toEqual([
        'revoked.pem',
        'noOcsp.pem',
        'mustStaple.pem',
        'good.pem',
        'ec.pem',
      ]);
      expect(res.stdout).toMatch(/<body data-overall="attention" data-sorted="-certificate">/);
      expect(res.stdout).toMatch(/<th data-col="certificate"[^>]*aria-sort="descending"/);
    },
    SLOW_MS,
  );

  it(
    'should take a phone-sized screenshot',
    async () => {
      const png = path.join(work, 'status.png');
      const res = await chromium([`--screenshot=${png}`, '--window-size=412,900', pathToFileURL(page).href]);
      expect(res.code, res.stderr).toBe(0);
      const bytes = await readFile(png);
      expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
      // 412 px wide: the IHDR width, big-endian at offset 16.
      expect(bytes.readUInt32BE(16)).toBe(412);
      expect((await stat(png)).size).toBeGreaterThan(10_000);
    },
    SLOW_MS,
  );
});

describe('renew progress line', () => {
  const failingCerts = () => path.join(work, 'failing-certs');
  const renewArgs = (extra: string[] = []) => [
    BIN,
    'renew',
    '--certs',
    failingCerts(),
    '--staples',
    path.join(work, 'progress-staples'),
    '--state',
    'none',
    '--allow-private-responders',
    '--timeout',
    '5',
    ...extra,
  ];
  const inTerminal = async (args: string[]) => {
    const command = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return execute('script', ['-qec', command, '/dev/null'], { TERM: 'xterm' });
  };

  it(
    'should show done/total, failures and rate on a terminal, then erase it',
    async () => {
      const res = await inTerminal(renewArgs());
      expect(res.code).toBe(1);
      const ERASE = '\r\x1b[2K';
      expect(res.stdout).toContain(`${ERASE}renew 1/1 (100%) · 1 failed · `);
      expect(res.stdout).toMatch(/renew 1\/1 \(100%\) · 1 failed · [\d.]+\/s · ETA 0s/);
      // Erased before the report is printed.
      expect(res.stdout).toContain(`${ERASE}CERTIFICATE  ACTION`);
    },
    SLOW_MS,
  );

  it(
    'should show nothing when stderr is a pipe, or with --json on a terminal',
    async () => {
      const piped = await cli(renewArgs().slice(1));
      expect(piped.code).toBe(1);
      expect(piped.stderr).not.toContain('renew 1/1');
      expect(piped.stderr).not.toContain('\x1b[');
      const json = await inTerminal(renewArgs(['--json']));
      expect(json.code).toBe(1);
      expect(json.stdout).not.toContain('renew 1/1');
      expect(json.stdout).toContain('"failed": 1');
    },
    SLOW_MS,
  );
});
