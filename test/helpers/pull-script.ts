/**
 * Running host/pull-staples.sh for real in tests, and making staples for it offline.
 *
 * `runPull` starts the script under a given shell in its own process group, so a timeout kills the
 * aws CLI and openssl children with it. `makeStaple` signs a response with `openssl ocsp -index`
 * (no responder, no network), which is how special responses are made: short validity, no
 * nextUpdate, revoked, or from another PKI.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openssl, type TestPki } from './pki.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PULL_SCRIPT = path.join(repoRoot, 'host', 'pull-staples.sh');
/** Debian's aws CLI v2 (package awscli). */
export const AWS_V2 = '/usr/bin/aws';

export interface PullResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunPullOptions {
  /** The shell and its arguments before the script, e.g. ['dash'] or ['busybox', 'sh']. */
  shell?: string[];
  env: NodeJS.ProcessEnv;
  /** Kill the whole process group after this long (default 30 s). */
  timeoutMs?: number;
  /** Commands put before the shell, e.g. ['setpriv', '--reuid=65534', …] to run as another user. */
  prefix?: string[];
  /** Another copy of the script (default host/pull-staples.sh). */
  script?: string;
}

/** Runs the pull script with `args`; resolves with its exit code and output, never rejects on exit. */
export function runPull(args: string[], opts: RunPullOptions): Promise<PullResult> {
  const argv = [...(opts.prefix ?? []), ...(opts.shell ?? ['sh']), opts.script ?? PULL_SCRIPT, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: a timeout kills aws/openssl/reload children too
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => killGroup(child.pid), opts.timeoutMs ?? 30_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export interface StapleOptions {
  /** nextUpdate = now + ndays (default 1) … */
  ndays?: number;
  /** … or now + nmin minutes … */
  nmin?: number;
  /** … or no nextUpdate at all. */
  noNextUpdate?: boolean;
}

/**
 * Signs an OCSP response for `cert` offline, as the PKI's delegated signer would from its index:
 * good, or revoked for a certificate the index lists as revoked. Returns the DER.
 */
export async function makeStaple(
  pki: TestPki,
  cert: string,
  out: string,
  opts: StapleOptions = {},
): Promise<Buffer> {
  const req = `${out}.req`;
  await openssl(['ocsp', '-issuer', pki.intermediate.cert, '-cert', cert, '-no_nonce', '-reqout', req]);
  const validity = opts.noNextUpdate
    ? []
    : opts.nmin !== undefined
      ? ['-nmin', String(opts.nmin)]
      : ['-ndays', String(opts.ndays ?? 1)];
  await openssl([
    'ocsp',
    '-index',
    pki.index,
    '-rsigner',
    pki.signer.cert,
    '-rkey',
    pki.signer.key,
    '-CA',
    pki.intermediate.cert,
    '-reqin',
    req,
    '-respout',
    out,
    ...validity,
  ]);
  return readFile(out);
}

/**
 * A copy of `der` with every GeneralizedTime (producedAt, thisUpdate, nextUpdate) moved `years`
 * (default one year back: an expired staple; +1 gives one from the future). The signature no longer matches, so only the time check may judge it.
 */
export async function backdateStaple(der: Buffer, out: string, years = -1): Promise<Buffer> {
  const copy = Buffer.from(der);
  for (let i = 0; i + 17 <= copy.length; i++) {
    // GeneralizedTime, 15 bytes: YYYYMMDDHHMMSSZ
    if (copy[i] !== 0x18 || copy[i + 1] !== 0x0f || copy[i + 16] !== 0x5a) continue;
    const year = copy.toString('latin1', i + 2, i + 6);
    if (!/^\d{4}$/.test(year)) continue;
    copy.write(String(Number(year) + years), i + 2, 'latin1');
  }
  await writeFile(out, copy);
  return copy;
}

/** The response's `Produced At` line as openssl prints it, or undefined. */
export function producedAt(opensslText: string): string | undefined {
  return /Produced At: ([^\n]+)/.exec(opensslText)?.[1]?.trim();
}
