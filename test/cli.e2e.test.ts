/**
 * End to end: the real `ocsp-renewer` command (lambda/cli/ocsp-renewer.js, run by the current node)
 * against a real test PKI, a real `openssl ocsp` responder (delegated signer) and a small loopback
 * http server for AIA caIssuers downloads. Each case checks a claim the README makes about the CLI.
 */
import { defaultStateFile } from '../lambda/cli/locations.js';
import type { StapleExplanation } from '../lambda/report/explain.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  goodResponseBeforeRevocation,
  startDelegatedResponder,
  type OpensslResponder,
} from './helpers/openssl-responder.js';
import { makeTestPki, type LeafName, type TestPki } from './helpers/pki.js';
import { opensslVerify } from './helpers/openssl-verify.js';
import { VECTORS_DIR } from './helpers/vectors.js';

// --- helpers ------------------------------------------------------------------------------------------

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = 'lambda/cli/ocsp-renewer.js';
const VECTORS = VECTORS_DIR;
const ALLOW_ENV = 'OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS';
/** Longest a one-shot command may run before it is killed (and the test fails). */
const CLI_TIMEOUT_MS = 20_000;
const PRIVATE = '--allow-private-responders';

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<CliResult>;
}

/** Every child this file spawned; afterAll kills any still alive, so nothing leaks. */
const children = new Set<ChildProcess>();

/**
 * Starts `node lambda/cli/ocsp-renewer.js ...args` in the repo root. The guard-lifting variable is
 * removed from the environment unless `env` sets it, so the caller's shell cannot change results.
 */
function startCli(args: string[], env: Record<string, string> = {}): RunningCli {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: STATE_HOME };
  delete childEnv[ALLOW_ENV];
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...childEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Runs the CLI to completion; killed after CLI_TIMEOUT_MS (the result then has signal SIGKILL). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const running = startCli(args, env);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), CLI_TIMEOUT_MS);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms until it holds; fails naming `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

interface Row {
  name: string;
  action: string;
  status: string;
  nextUpdate: string;
  nextDue: string;
  reason: string;
}

/** Parses every run-report table in `text` (a daemon prints one per run), oldest first. */
function parseReports(text: string): Row[][] {
  const reports: Row[][] = [];
  let current: Row[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('CERTIFICATE ')) {
      current = [];
      reports.push(current);
    } else if (!line.trim()) {
      current = undefined;
    } else if (current) {
      const [name = '', action = '', status = '', nextUpdate = '', nextDue = '', ...reason] =
        line.split(/ {2,}/);
      current.push({ name, action, status, nextUpdate, nextDue, reason: reason.join('  ') });
    }
  }
  return reports;
}

/** The rows of the only report in `text`, by certificate name. */
function rowsOf(text: string): Map<string, Row> {
  const reports = parseReports(text);
  expect(reports, `one report in:\n${text}`).toHaveLength(1);
  return new Map(reports[0]!.map((r) => [r.name, r]));
}

function row(rows: Map<string, Row>, name: string): Row {
  const found = rows.get(name);
  if (!found) throw new Error(`no report row for ${name}; rows: ${[...rows.keys()].join(', ')}`);
  return found;
}

interface JsonReport {
  dryRun: boolean;
  counts: Record<string, number>;
  revoked: number;
  results: Array<{
    name: string;
    staple: string;
    action: string;
    reason: string;
    stage?: string;
    certStatus?: string;
  }>;
}

/** The files in a staples directory: staples only, the CLI keeps its state elsewhere. */
const listStaples = (dir: string) => readdir(dir);

/** The CLI children keep their run state here ($XDG_STATE_HOME), not in the user's home. */
const STATE_HOME = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-cli-state-'));

/** mtime (ns) and bytes of every staple in `dir`, to prove a run wrote nothing. */
async function snapshot(dir: string): Promise<Map<string, { mtimeNs: bigint; bytes: Buffer }>> {
  const out = new Map<string, { mtimeNs: bigint; bytes: Buffer }>();
  for (const name of (await listStaples(dir)).sort()) {
    const file = path.join(dir, name);
    out.set(name, { mtimeNs: (await stat(file, { bigint: true })).mtimeNs, bytes: await readFile(file) });
  }
  return out;
}

const tempFiles = async (dir: string) => (await readdir(dir)).filter((f) => /^\..*\.tmp-/.test(f));

// --- fixtures -------------------------------------------------------------------------------------------

let pki: TestPki;
let responder: OpensslResponder;
let work: string;
/** The caIssuers server: serves the intermediate (DER) while `available`, else 404; counts requests. */
let aia: Server;
const aiaState = { available: true, hits: 0 };

/** A fresh empty directory under the suite's work dir. */
async function freshDir(label: string): Promise<string> {
  return mkdtemp(path.join(work, `${label}-`));
}

/**
 * A certificate directory: `files` maps a file name to a source file (a leaf's cert or bundle, the
 * intermediate, ...), or to literal content.
 */
async function certDir(files: Record<string, string | { content: string | Buffer }>): Promise<string> {
  const dir = await freshDir('certs');
  for (const [name, from] of Object.entries(files)) {
    if (typeof from === 'string') await copyFile(from, path.join(dir, name));
    else await writeFile(path.join(dir, name), from.content);
  }
  return dir;
}

/** `<leaf>.pem` alone plus `<leaf>.issuer.pem`: the sibling-issuer layout. */
const withSibling = (leaf: LeafName, ext = '.pem') => ({
  [`${leaf}${ext}`]: pki.leaves[leaf].cert,
  [`${leaf}.issuer.pem`]: pki.intermediate.cert,
});

beforeAll(async () => {
  aia = createServer((req, res) => {
    aiaState.hits++;
    if (req.url === '/intermediate.der' && aiaState.available) {
      readFile(pki.intermediateDer).then(
        (der) => res.writeHead(200, { 'content-type': 'application/pkix-cert' }).end(der),
        () => res.writeHead(500).end(),
      );
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => aia.listen(0, '127.0.0.1', resolve));
  const address = aia.address();
  if (typeof address !== 'object' || !address) throw new Error('caIssuers server has no port');
  const aiaPort = address.port;

  pki = await makeTestPki({ caIssuersUrl: `http://127.0.0.1:${aiaPort}/intermediate.der` });
  responder = await startDelegatedResponder(pki);
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-cli-'));
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await responder?.stop();
  aia?.closeAllConnections();
  await new Promise((resolve) => (aia ? aia.close(resolve) : resolve(undefined)));
  if (work) await rm(work, { recursive: true, force: true });
  await rm(STATE_HOME, { recursive: true, force: true });
  await pki?.cleanup();
});

// --- renew ----------------------------------------------------------------------------------------------

describe('renew: a mixed certificate directory', () => {
  let certs: string;
  let staples: string;
  let first: CliResult;

  beforeAll(async () => {
    certs = await certDir({
      ...withSibling('good'),
      ...withSibling('mustStaple', '.crt'),
      'revoked.pem': pki.leaves.revoked.bundle, // issuer found in the bundle
      'noOcsp.pem': pki.leaves.noOcsp.bundle,
      'expired.pem': pki.leaves.expired.bundle,
      // A bundle with CRLF line endings and a private key in it.
      'ec.pem': { content: (await readFile(pki.leaves.ec.bundle, 'utf8')).replace(/\r?\n/g, '\r\n') },
      'corrupt.pem': { content: 'this is not a certificate\n' },
    });
    staples = await freshDir('staples');
    first = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
  });

  it('exits 1 because corrupt.pem failed, and still renews every other certificate', () => {
    expect(first.code, first.stderr).toBe(1);
    const rows = rowsOf(first.stdout);
    // `<name>.issuer.pem` files are issuers, never certificates to staple.
    expect([...rows.keys()].sort()).toEqual([
      'corrupt.pem',
      'ec.pem',
      'expired.pem',
      'good.pem',
      'mustStaple.crt',
      'noOcsp.pem',
      'revoked.pem',
    ]);
    for (const name of ['good.pem', 'ec.pem', 'mustStaple.crt']) {
      expect(row(rows, name)).toMatchObject({ action: 'renewed', status: 'good' });
    }
  });

  it('reports the failure, the skips and the revocation', () => {
    const rows = rowsOf(first.stdout);
    expect(row(rows, 'corrupt.pem')).toMatchObject({ action: 'failed' });
    expect(row(rows, 'corrupt.pem').reason).toMatch(/^\[parse\] .*not a certificate/);
    expect(row(rows, 'noOcsp.pem')).toMatchObject({ action: 'skipped' });
    expect(row(rows, 'noOcsp.pem').reason).toContain('no OCSP URL');
    expect(row(rows, 'expired.pem')).toMatchObject({ action: 'skipped' });
    expect(row(rows, 'expired.pem').reason).toContain('expired');
    expect(row(rows, 'revoked.pem')).toMatchObject({ action: 'renewed', status: 'revoked' });
    expect(row(rows, 'revoked.pem').reason).toContain('REVOKED');
    expect(first.stdout).toContain('7 certificates: 4 renewed, 2 skipped, 1 failed');
    expect(first.stdout).toContain('WARNING: 1 certificate reported REVOKED by their responder');
  });

  it('writes exactly the four staples, named <name>.ocsp, and never copies or prints a private key', async () => {
    expect((await listStaples(staples)).sort()).toEqual([
      'ec.ocsp',
      'good.ocsp',
      'mustStaple.ocsp',
      'revoked.ocsp',
    ]);
    for (const file of await listStaples(staples)) {
      expect((await readFile(path.join(staples, file))).includes('PRIVATE KEY')).toBe(false);
    }
    expect(first.stdout + first.stderr).not.toContain('PRIVATE KEY');
  });

  it('writes staples that openssl verifies: good → good, revoked → revoked', async () => {
    for (const leaf of ['good', 'mustStaple', 'ec'] as const) {
      const out = await opensslVerify(path.join(staples, `${leaf}.ocsp`), pki.leaves[leaf].cert, pki);
      expect(out, leaf).toContain('Response verify OK');
      expect(out, leaf).toMatch(new RegExp(`${leaf}\\.pem: good`));
    }
    const out = await opensslVerify(path.join(staples, 'revoked.ocsp'), pki.leaves.revoked.cert, pki, [
      '-resp_text', // the revocation reason
    ]);
    expect(out).toContain('Response verify OK');
    expect(out).toMatch(/revoked\.pem: revoked/);
    expect(out).toContain('keyCompromise');
  });

  it('--json prints a parseable report with counts and per-certificate actions', async () => {
    const out = await freshDir('staples-json');
    const res = await cli(['renew', '--certs', certs, '--staples', out, PRIVATE, '--json']);
    expect(res.code).toBe(1);
    const report = JSON.parse(res.stdout) as JsonReport;
    expect(report.dryRun).toBe(false);
    expect(report.counts).toMatchObject({ renewed: 4, skipped: 2, failed: 1, fresh: 0, withheld: 0, due: 0 });
    expect(report.revoked).toBe(1);
    const byName = new Map(report.results.map((r) => [r.name, r]));
    expect(byName.get('corrupt.pem')).toMatchObject({ action: 'failed', stage: 'parse' });
    expect(byName.get('good.pem')).toMatchObject({
      action: 'renewed',
      certStatus: 'good',
      staple: 'good.ocsp',
    });
    expect(byName.get('mustStaple.crt')).toMatchObject({ action: 'renewed', staple: 'mustStaple.ocsp' });
    expect(byName.get('revoked.pem')).toMatchObject({ action: 'renewed', certStatus: 'revoked' });
    expect(byName.get('noOcsp.pem')?.action).toBe('skipped');
    expect(byName.get('expired.pem')?.action).toBe('skipped');
  });

  it('a second identical run writes nothing: every OCSP row is fresh, files untouched', async () => {
    const before = await snapshot(staples);
    const again = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
    expect(again.code).toBe(1); // corrupt.pem still fails
    const rows = rowsOf(again.stdout);
    for (const name of ['good.pem', 'revoked.pem', 'mustStaple.crt', 'ec.pem']) {
      expect(row(rows, name).action, name).toBe('fresh');
    }
    expect(row(rows, 'corrupt.pem').action).toBe('failed');
    expect(await snapshot(staples)).toEqual(before);
  });
});

describe('renew: outcomes and options', () => {
  /** good + revoked (issuers in the bundles): a directory that renews cleanly. */
  const cleanCerts = () =>
    certDir({ 'good.pem': pki.leaves.good.bundle, 'revoked.pem': pki.leaves.revoked.bundle });

  it('exits 0 when nothing failed (a DER .cert certificate with a sibling issuer too)', async () => {
    const certs = await certDir({
      'revoked.pem': pki.leaves.revoked.bundle,
      'der.cert': pki.goodDer,
      'der.issuer.pem': pki.intermediate.cert,
    });
    const staples = await freshDir('staples');
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const rows = rowsOf(res.stdout);
    expect(row(rows, 'der.cert')).toMatchObject({ action: 'renewed', status: 'good' });
    expect(await opensslVerify(path.join(staples, 'der.ocsp'), pki.leaves.good.cert, pki)).toMatch(
      /good\.pem: good/,
    );
  });

  it('without --staples, walks subdirectories and writes each staple next to its certificate', async () => {
    const certs = await certDir({});
    await mkdir(path.join(certs, 'mail', 'eu'), { recursive: true });
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'mail', 'eu', 'good.pem'));
    const res = await cli(['renew', '--certs', certs, PRIVATE]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(row(rowsOf(res.stdout), 'mail/eu/good.pem').action).toBe('renewed');
    expect((await readdir(path.join(certs, 'mail', 'eu'))).sort()).toEqual(['good.ocsp', 'good.pem']);
  });

  it('--force renews fresh staples and rewrites the files', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    expect((await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE])).code).toBe(0);
    const before = await snapshot(staples);
    await sleep(1_100); // producedAt has 1 s resolution: make the new responses differ
    const requestsBefore = responder.output();
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--force']);
    expect(res.code).toBe(0);
    expect(responder.output()).not.toBe(requestsBefore); // it really asked (see --dry-run below)
    const rows = rowsOf(res.stdout);
    expect(row(rows, 'good.pem').action).toBe('renewed');
    expect(row(rows, 'revoked.pem')).toMatchObject({ action: 'renewed', status: 'revoked' });
    const after = await snapshot(staples);
    for (const name of ['good.ocsp', 'revoked.ocsp']) {
      expect(after.get(name)!.bytes.equals(before.get(name)!.bytes), name).toBe(false);
      expect(after.get(name)!.mtimeNs, name).toBeGreaterThan(before.get(name)!.mtimeNs);
    }
  });

  it('--force writes staples 0644 whatever mode the old one had (never a copied mode) and leaves no temp files', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    expect((await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE])).code).toBe(0);
    const good = path.join(staples, 'good.ocsp');
    await chmod(good, 0o4750);
    const before = await readFile(good);
    await sleep(1_100);
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--force']);
    expect(row(rowsOf(res.stdout), 'good.pem').action).toBe('renewed');
    expect((await readFile(good)).equals(before)).toBe(false); // really rewritten
    expect((await stat(good)).mode & 0o7777).toBe(0o644);
    expect((await stat(path.join(staples, 'revoked.ocsp'))).mode & 0o777).toBe(0o644);
    expect(await tempFiles(staples)).toEqual([]);
  });

  it('removes the stale temp files a killed run left (and nothing else) before it renews', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const anHourAgo = new Date(Date.now() - 3_600_000);
    const files = {
      stale: '.good.ocsp.tmp-0123456789ab', // what `kill -9` between create and rename leaves
      fresh: '.revoked.ocsp.tmp-0123456789ab', // as if another write were in flight
      foreign: '.good.ocsp.tmp-keep-me', // a look-alike someone else wrote
    };
    for (const [what, name] of Object.entries(files)) {
      await writeFile(path.join(staples, name), 'partial');
      if (what !== 'fresh') await utimes(path.join(staples, name), anHourAgo, anHourAgo);
    }
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stderr).toContain(`removed stale temp file ${path.join(staples, files.stale)}`);
    expect((await tempFiles(staples)).sort()).toEqual([files.foreign, files.fresh].sort());
    expect((await listStaples(staples)).filter((f) => !f.startsWith('.')).sort()).toEqual([
      'good.ocsp',
      'revoked.ocsp',
    ]);
  });

  it('--dry-run reports "due" and fetches and writes nothing', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const requestsBefore = responder.output(); // openssl logs one line per request
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--dry-run']);
    expect(res.code).toBe(0);
    const rows = rowsOf(res.stdout);
    for (const name of ['good.pem', 'revoked.pem']) expect(row(rows, name).action, name).toBe('due');
    expect(res.stdout).toContain('dry run: nothing was fetched or written');
    expect(await listStaples(staples)).toEqual([]);
    expect(responder.output()).toBe(requestsBefore);
  });

  it('--on-revoked withhold: the revoked row is "withheld", no revoked staple is written, only its marker', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const res = await cli([
      'renew',
      '--certs',
      certs,
      '--staples',
      staples,
      PRIVATE,
      '--on-revoked',
      'withhold',
    ]);
    expect(res.code).toBe(0);
    const rows = rowsOf(res.stdout);
    expect(row(rows, 'revoked.pem')).toMatchObject({ action: 'withheld', status: 'revoked' });
    expect(row(rows, 'good.pem').action).toBe('renewed');
    expect((await listStaples(staples)).sort()).toEqual(['good.ocsp', 'revoked.ocsp.withheld']);
    expect(res.stdout).toContain('WARNING: 1 certificate reported REVOKED');
  });

  it('--on-revoked withhold after a good staple: the staple goes, a .withheld marker says why, exit 0; publishing later removes the marker', async () => {
    const certs = await certDir({ 'revoked.pem': pki.leaves.revoked.bundle });
    const staples = await freshDir('staples');
    const staple = path.join(staples, 'revoked.ocsp');
    // The staple a server holds from before the CA revoked the certificate: "good".
    await writeFile(staple, await goodResponseBeforeRevocation(pki, pki.leaves.revoked.cert, work));
    expect(await opensslVerify(staple, pki.leaves.revoked.cert, pki)).toMatch(/revoked\.pem: good/);
    const withhold = ['renew', '--certs', certs, '--staples', staples, PRIVATE, '--on-revoked', 'withhold'];

    const res = await cli([...withhold, '--force']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(row(rowsOf(res.stdout), 'revoked.pem')).toMatchObject({ action: 'withheld', status: 'revoked' });
    expect(res.stdout).toContain('WARNING: 1 certificate reported REVOKED');
    expect(await listStaples(staples)).toEqual(['revoked.ocsp.withheld']);
    expect(await readFile(`${staple}.withheld`, 'utf8')).toMatch(
      /^withheld: certificate revoked \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\)\n$/,
    );

    // The next plain run asks nobody and changes nothing: still withheld, still no staple.
    const requestsBefore = responder.output();
    const again = await cli(withhold);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(row(rowsOf(again.stdout), 'revoked.pem')).toMatchObject({ action: 'withheld', status: 'revoked' });
    expect(responder.output()).toBe(requestsBefore);
    expect(await listStaples(staples)).toEqual(['revoked.ocsp.withheld']);

    // Back to the default (publish): the revoked staple is written and the marker goes.
    const published = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE, '--force']);
    expect(row(rowsOf(published.stdout), 'revoked.pem')).toMatchObject({
      action: 'renewed',
      status: 'revoked',
    });
    expect(await listStaples(staples)).toEqual(['revoked.ocsp']);
    expect(await opensslVerify(staple, pki.leaves.revoked.cert, pki)).toMatch(/revoked\.pem: revoked/);
  });

  it('refuses the loopback responder without --allow-private-responders', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const res = await cli(['renew', '--certs', certs, '--staples', staples]);
    expect(res.code).toBe(1);
    const rows = rowsOf(res.stdout);
    for (const name of ['good.pem', 'revoked.pem']) {
      expect(row(rows, name).action, name).toBe('failed');
      expect(row(rows, name).reason, name).toMatch(/^\[fetch\] .*refusing 127\.0\.0\.1/);
    }
    expect(await listStaples(staples)).toEqual([]);
  });

  it('remembers failures across one-shot runs (state file): the next cron run backs off, --force retries', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const first = await cli(['renew', '--certs', certs, '--staples', staples]);
    expect(row(rowsOf(first.stdout), 'good.pem').reason).toMatch(/^\[fetch\] /);
    const second = await cli(['renew', '--certs', certs, '--staples', staples]);
    expect(second.code).toBe(1);
    const backingOff = row(rowsOf(second.stdout), 'good.pem');
    expect(backingOff.action).toBe('failed');
    expect(backingOff.reason).toMatch(/backing off after 1 failure: fetch good\.pem: .*refusing/);
    expect(await listStaples(staples)).toEqual([]);
    const stateFile = defaultStateFile(staples, { XDG_STATE_HOME: STATE_HOME });
    expect(JSON.parse(await readFile(stateFile, 'utf8')).certs['good.pem']).toMatchObject({
      failures: 1,
      action: 'failed',
    });
    const forced = await cli(['renew', '--certs', certs, '--staples', staples, '--force']);
    expect(forced.code, forced.stdout).toBe(1);
    expect(row(rowsOf(forced.stdout), 'good.pem').reason).toMatch(/^\[fetch\] .*refusing/);
  });

  it('refused by the SSRF guard, then run with the flag: the changed settings clear the backoff, exit 0', async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const refused = await cli(['renew', '--certs', certs, '--staples', staples]);
    expect(refused.code).toBe(1);
    expect(row(rowsOf(refused.stdout), 'good.pem').reason).toMatch(/^\[fetch\] .*refusing 127\.0\.0\.1/);
    const allowed = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
    expect(allowed.code, allowed.stdout + allowed.stderr).toBe(0);
    expect(row(rowsOf(allowed.stdout), 'good.pem').action).toBe('renewed');
    expect((await listStaples(staples)).sort()).toEqual(['good.ocsp', 'revoked.ocsp']);
    const stateFile = defaultStateFile(staples, { XDG_STATE_HOME: STATE_HOME });
    expect(JSON.parse(await readFile(stateFile, 'utf8')).certs['good.pem']).toMatchObject({ failures: 0 });
  });

  it('responder down during --force: exit 1 then; the next plain run reports the valid staple fresh, exit 0', async () => {
    const certs = await certDir({ 'good.pem': pki.leaves.good.bundle });
    const staples = await freshDir('staples');
    const args = ['renew', '--certs', certs, '--staples', staples, PRIVATE];
    expect((await cli(args)).code).toBe(0);
    const before = await readFile(path.join(staples, 'good.ocsp'));
    await responder.stop();
    try {
      const forced = await cli([...args, '--force']);
      expect(forced.code, forced.stdout).toBe(1);
      expect(row(rowsOf(forced.stdout), 'good.pem')).toMatchObject({ action: 'failed' });
      expect(row(rowsOf(forced.stdout), 'good.pem').reason).toMatch(/^\[fetch\] .*ECONNREFUSED/);

      const plain = await cli(args);
      expect(plain.code, plain.stdout + plain.stderr).toBe(0);
      const fresh = row(rowsOf(plain.stdout), 'good.pem');
      expect(fresh.action).toBe('fresh');
      expect(fresh.reason).toMatch(/^fresh \(last attempt failed: fetch good\.pem: .*ECONNREFUSED/);
      expect((await readFile(path.join(staples, 'good.ocsp'))).equals(before)).toBe(true);
    } finally {
      responder = await startDelegatedResponder(pki);
    }
  });

  it(`${ALLOW_ENV}=1 lifts the guard like the flag`, async () => {
    const certs = await cleanCerts();
    const staples = await freshDir('staples');
    const res = await cli(['renew', '--certs', certs, '--staples', staples], { [ALLOW_ENV]: '1' });
    expect(res.code, res.stdout).toBe(0);
    expect(row(rowsOf(res.stdout), 'good.pem').action).toBe('renewed');
    expect((await listStaples(staples)).filter((f) => !f.startsWith('.')).sort()).toEqual([
      'good.ocsp',
      'revoked.ocsp',
    ]);
  });

  it('--cert-extensions .crt --extension .der: only .crt files, staples named <name>.der', async () => {
    const certs = await certDir({
      ...withSibling('good', '.crt'),
      'mustStaple.pem': pki.leaves.mustStaple.bundle, // not a .crt: ignored
    });
    const staples = await freshDir('staples');
    const res = await cli([
      'renew', '--certs', certs, '--staples', staples, PRIVATE, '--cert-extensions', '.crt', '--extension', '.der',
    ]); // prettier-ignore
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect([...rowsOf(res.stdout).keys()]).toEqual(['good.crt']);
    expect(await listStaples(staples)).toEqual(['good.der']);
    expect(await opensslVerify(path.join(staples, 'good.der'), pki.leaves.good.cert, pki)).toContain(
      'Response verify OK',
    );
  });

  it('usage errors exit 2', async () => {
    const noCerts = await cli(['renew']);
    expect(noCerts.code).toBe(2);
    expect(noCerts.stderr).toContain('--certs');
    const certs = await cleanCerts();
    const badPolicy = await cli(['renew', '--certs', certs, '--on-revoked', 'ignore']);
    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toContain('--on-revoked');
  });
});

describe('renew: issuer lookup', () => {
  it('downloads the issuer from the AIA caIssuers URL, once per run', async () => {
    aiaState.available = true;
    const hitsBefore = aiaState.hits;
    const certs = await certDir({
      'good.pem': pki.leaves.good.cert,
      'mustStaple.pem': pki.leaves.mustStaple.cert,
    });
    const staples = await freshDir('staples');
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const rows = rowsOf(res.stdout);
    expect(row(rows, 'good.pem').action).toBe('renewed');
    expect(row(rows, 'mustStaple.pem').action).toBe('renewed');
    expect(aiaState.hits - hitsBefore).toBe(1);
    expect(await opensslVerify(path.join(staples, 'good.ocsp'), pki.leaves.good.cert, pki)).toMatch(
      /good\.pem: good/,
    );
  });

  it('takes the issuer from --issuers DIR', async () => {
    aiaState.available = false;
    try {
      const certs = await certDir({ 'good.pem': pki.leaves.good.cert });
      const issuers = await certDir({ 'int.crt': pki.intermediate.cert, 'root.pem': pki.root.cert });
      const staples = await freshDir('staples');
      const res = await cli(['renew', '--certs', certs, '--staples', staples, '--issuers', issuers, PRIVATE]);
      expect(res.code, res.stdout + res.stderr).toBe(0);
      expect(row(rowsOf(res.stdout), 'good.pem').action).toBe('renewed');
      expect(existsSync(path.join(staples, 'good.ocsp'))).toBe(true);
    } finally {
      aiaState.available = true;
    }
  });

  it('fails at stage issuer, saying what it tried, when no issuer is anywhere', async () => {
    aiaState.available = false;
    try {
      const certs = await certDir({ 'good.pem': pki.leaves.good.cert });
      const staples = await freshDir('staples');
      const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
      expect(res.code).toBe(1);
      const good = row(rowsOf(res.stdout), 'good.pem');
      expect(good.action).toBe('failed');
      expect(good.reason).toMatch(/^\[issuer\] .*no issuer certificate/);
      expect(good.reason).toContain('.issuer.pem');
      expect(good.reason).toContain('404');
      expect(await listStaples(staples)).toEqual([]);
    } finally {
      aiaState.available = true;
    }
  });
});

describe('renew --persist', () => {
  it('renews, notices a new certificate, forces on SIGUSR2 and exits 0 on SIGTERM', async () => {
    const certs = await certDir({ 'good.pem': pki.leaves.good.bundle });
    const staples = await freshDir('staples');
    const daemon = startCli([
      'renew', '--persist', '--watch-interval', '1', '--certs', certs, '--staples', staples, PRIVATE,
    ]); // prettier-ignore
    let exit: CliResult | undefined;
    void daemon.exited.then((r) => (exit = r));
    const alive = () => {
      if (exit) throw new Error(`daemon exited early (${exit.code}): ${exit.stderr}`);
      return true;
    };
    try {
      await waitFor('good.ocsp', () => alive() && existsSync(path.join(staples, 'good.ocsp')));
      await waitFor('the first "next check"', () => alive() && daemon.stderr().includes('next check'));

      // A new certificate, appearing atomically (dotfiles are not listed), and no signal.
      await copyFile(pki.leaves.mustStaple.bundle, path.join(certs, '.incoming'));
      await rename(path.join(certs, '.incoming'), path.join(certs, 'mustStaple.pem'));
      await waitFor(
        'mustStaple.ocsp',
        () => alive() && existsSync(path.join(staples, 'mustStaple.ocsp')),
        5_000,
      );
      expect(daemon.stderr()).toContain('certificate listing changed');

      await sleep(1_100); // let the forced responses differ from the stored ones
      const reportsBefore = parseReports(daemon.stdout()).length;
      const goodBefore = await readFile(path.join(staples, 'good.ocsp'));
      daemon.child.kill('SIGUSR2');
      await waitFor(
        'a forced run',
        () => alive() && parseReports(daemon.stdout()).length > reportsBefore,
        5_000,
      );
      expect(daemon.stderr()).toContain('SIGUSR2');
      const forced = parseReports(daemon.stdout()).at(-1)!;
      expect(forced.map((r) => [r.name, r.action])).toEqual([
        ['good.pem', 'renewed'],
        ['mustStaple.pem', 'renewed'],
      ]);
      expect((await readFile(path.join(staples, 'good.ocsp'))).equals(goodBefore)).toBe(false);

      daemon.child.kill('SIGTERM');
      await waitFor('exit after SIGTERM', () => exit !== undefined, 5_000);
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(daemon.stderr()).toContain('SIGTERM');
      expect(await tempFiles(staples)).toEqual([]);
      expect(children.has(daemon.child)).toBe(false);
    } finally {
      if (!exit) daemon.child.kill('SIGKILL');
    }
  }, 180_000); // its waits allow each step 60 s on a loaded machine
});

// --- inspect --------------------------------------------------------------------------------------------

/** The documented `inspect --json` shape, as the product declares it. */
type Explanation = StapleExplanation;

describe.concurrent('inspect', () => {
  let staples: string;

  beforeAll(async () => {
    const certs = await certDir({
      'good.pem': pki.leaves.good.bundle,
      'revoked.pem': pki.leaves.revoked.bundle,
    });
    staples = await freshDir('staples');
    const res = await cli(['renew', '--certs', certs, '--staples', staples, PRIVATE]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  const inspect = (staple: string, ...args: string[]) =>
    cli(['inspect', path.join(staples, staple), ...args]);

  it('a good staple: exit 0 and the documented JSON', async ({ expect }) => {
    const res = await inspect(
      'good.ocsp',
      '--cert',
      pki.leaves.good.cert,
      '--issuer',
      pki.intermediate.cert,
      '--json',
    );
    expect(res.code, res.stderr).toBe(0);
    const e = JSON.parse(res.stdout) as Explanation;
    expect(e.responseStatus).toBe('successful');
    expect(Number.isNaN(Date.parse(e.producedAt ?? ''))).toBe(false);
    expect(e.responderId).toMatchObject({ type: 'byName', name: expect.stringContaining('OCSP Signer') });
    expect(e.responses).toHaveLength(1);
    expect(e.responses[0]).toMatchObject({
      serialNumber: pki.leaves.good.serialHex,
      certStatus: 'good',
      revocationTime: null,
      revocationReason: null,
    });
    expect(e.signature).toMatchObject({ valid: true, signer: 'delegated' });
    expect(e.valid).toBe(true);
    expect(e.errors).toEqual([]);
  });

  it('finds the issuer in the --cert bundle when --issuer is absent', async ({ expect }) => {
    const res = await inspect('good.ocsp', '--cert', pki.leaves.good.bundle);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/valid:\s+yes/);
  });

  it('finds the issuer beside --cert as <name>.issuer.pem, and says so when there is none', async ({
    expect,
  }) => {
    const dir = await certDir(withSibling('good'));
    const res = await inspect('good.ocsp', '--cert', path.join(dir, 'good.pem'));
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const alone = await certDir({ 'good.pem': pki.leaves.good.cert });
    const without = await inspect('good.ocsp', '--cert', path.join(alone, 'good.pem'), '--json');
    expect(without.code).toBe(1);
    expect((JSON.parse(without.stdout) as Explanation).errors).toContain(
      'issuer certificate not given: cannot authorise the signer',
    );
  });

  it('a revoked staple: exit 3 with revocationTime and reason keyCompromise', async ({ expect }) => {
    const res = await inspect(
      'revoked.ocsp',
      '--cert',
      pki.leaves.revoked.cert,
      '--issuer',
      pki.intermediate.cert,
      '--json',
    );
    expect(res.code).toBe(3);
    const e = JSON.parse(res.stdout) as Explanation;
    expect(e.valid).toBe(true);
    expect(e.responses[0]).toMatchObject({ certStatus: 'revoked', revocationReason: 'keyCompromise' });
    expect(Number.isNaN(Date.parse(e.responses[0]!.revocationTime ?? ''))).toBe(false);
  });

  it('--at after nextUpdate: exit 1 with an "expired" error', async ({ expect }) => {
    const args = ['--cert', pki.leaves.good.cert, '--issuer', pki.intermediate.cert, '--json'];
    const now = JSON.parse((await inspect('good.ocsp', ...args)).stdout) as Explanation;
    const after = new Date(Date.parse(now.responses[0]!.nextUpdate!) + 60_000).toISOString();
    const res = await inspect('good.ocsp', ...args, '--at', after);
    expect(res.code).toBe(1);
    const e = JSON.parse(res.stdout) as Explanation;
    expect(e.valid).toBe(false);
    expect(
      e.errors.some((m) => m.includes('expired')),
      e.errors.join('; '),
    ).toBe(true);
    expect(e.code).toBe('stale');
  });

  it('a file that is not an OCSP response: exit 1', async ({ expect }) => {
    const garbage = path.join(await freshDir('garbage'), 'garbage.ocsp');
    await writeFile(garbage, 'definitely not DER');
    const res = await cli(['inspect', garbage]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('not an OCSP response');
    // --json still prints the documented document, with a verdict and its code.
    const json = await cli(['inspect', garbage, '--json']);
    expect(json.code).toBe(1);
    const e = JSON.parse(json.stdout) as Explanation;
    expect(e).toMatchObject({ valid: false, code: 'not-der', responseStatus: 'unparseable', responses: [] });
    expect(e.errors[0]).toBe(
      `parse ${garbage}: not an OCSP response: not DER: OCSPResponse at byte 0 is not a DER element: length at byte 1 (101) runs past the end of its enclosing element (16 bytes left)`,
    );
  });

  it('a staple one byte from a valid one (RSASSA-PSS with NULL parameters): a JSON verdict, exit 1', async ({
    expect,
  }) => {
    const dir = path.join(VECTORS, 'openssl-ocsp-tests');
    // ND1 is signed sha1WithRSAEncryption (…1.1.5, NULL parameters): …1.1.10 makes it RSASSA-PSS.
    const der = await readFile(path.join(dir, 'ND1.der'));
    const sha1WithRsa = Buffer.from('06092a864886f70d0101050500', 'hex');
    const at = der.indexOf(sha1WithRsa);
    expect(at).toBeGreaterThan(-1);
    der[at + 10] = 0x0a;
    const mutated = path.join(await freshDir('mutated'), 'pss-null.ocsp');
    await writeFile(mutated, der);
    const res = await cli([
      'inspect', mutated, '--issuer', path.join(dir, 'ND1_Issuer_ICA.pem'), '--at', '2012-10-11T08:41:13Z', '--json',
    ]); // prettier-ignore
    expect(res.code, res.stderr).toBe(1);
    const e = JSON.parse(res.stdout) as Explanation;
    expect(e.valid).toBe(false);
    expect(e.code).toBe('signature-algorithm');
    expect(e.errors).toEqual(['signature: RSASSA-PSS parameters do not parse']);
  });

  it('usage errors exit 2: missing argument, unknown flag', async ({ expect }) => {
    const missing = await cli(['inspect']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('argument');
    const unknown = await inspect('good.ocsp', '--no-such-flag');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--no-such-flag');
  });

  it('a shared vector (openssl ND1, issuer-signed, 2012) is valid at its producedAt', async ({ expect }) => {
    const dir = path.join(VECTORS, 'openssl-ocsp-tests');
    const res = await cli([
      'inspect', path.join(dir, 'ND1.der'), '--issuer', path.join(dir, 'ND1_Issuer_ICA.pem'),
      '--at', '2012-10-11T08:41:13Z', '--json',
    ]); // prettier-ignore
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const e = JSON.parse(res.stdout) as Explanation;
    expect(e.signature).toMatchObject({ valid: true, signer: 'issuer' });
    expect(e.responderId?.type).toBe('byKey');
    expect(e.responses[0]).toMatchObject({
      certStatus: 'good',
      serialNumber: '22E1332220A048DF29B2BF9A31C29B07',
    });
  });
});

// --- fetch ----------------------------------------------------------------------------------------------

describe.concurrent('fetch', () => {
  const fetchArgs = (leaf: LeafName, ...rest: string[]) => [
    'fetch', pki.leaves[leaf].cert, '--issuer', pki.intermediate.cert, PRIVATE, ...rest,
  ]; // prettier-ignore

  it('good: exit 0 and --out writes a staple openssl verifies', async ({ expect }) => {
    const out = path.join(await freshDir('fetch'), 'good.ocsp');
    const res = await cli(fetchArgs('good', '--out', out));
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/valid:\s+yes/);
    const verified = await opensslVerify(out, pki.leaves.good.cert, pki);
    expect(verified).toContain('Response verify OK');
    expect(verified).toMatch(/good\.pem: good/);
    expect(await tempFiles(path.dirname(out))).toEqual([]);
  });

  it('revoked: exit 3', async ({ expect }) => {
    const res = await cli(fetchArgs('revoked'));
    expect(res.code, res.stderr).toBe(3);
    expect(res.stdout).toContain('REVOKED');
  });

  it('unknown to the CA: exit 3 (valid but unknown)', async ({ expect }) => {
    const res = await cli(fetchArgs('unknownToCa', '--json'));
    expect(res.code, res.stderr).toBe(3);
    const e = JSON.parse(res.stdout) as Explanation & { url: string };
    expect(e.url).toBe(pki.ocspUrl);
    expect(e.valid).toBe(true);
    expect(e.responses[0]?.certStatus).toBe('unknown');
  });

  it('no OCSP URL: exit 1', async ({ expect }) => {
    const res = await cli(['fetch', pki.leaves.noOcsp.cert, PRIVATE]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no OCSP URL');
  });
});

// --- help -----------------------------------------------------------------------------------------------

describe.concurrent('help and unknown commands', () => {
  it('--help exits 0 and describes renew, inspect and fetch', async ({ expect }) => {
    const res = await cli(['--help']);
    expect(res.code).toBe(0);
    for (const command of ['renew', 'inspect', 'fetch'])
      expect(res.stdout).toContain(`ocsp-renewer ${command}`);
  });

  it('an unknown command exits 2', async ({ expect }) => {
    const res = await cli(['renwe']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('unknown command "renwe"');
  });
});
