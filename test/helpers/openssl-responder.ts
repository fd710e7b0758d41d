/**
 * A real OCSP responder for tests: `openssl ocsp -index ... -port ...` (OpenSSL 3.0+).
 *
 * Quirks of the OpenSSL 3.0 responder worth knowing:
 *  - `-port` takes a number only and binds all interfaces; clients should use http://127.0.0.1:<port>/.
 *  - Without `-multi` it serves one connection at a time.
 *  - A client that connects and closes without sending a byte makes it spin at 100% CPU forever and
 *    stop answering. So readiness is NOT probed with a bare TCP connect: we send a real
 *    `GET / HTTP/1.0` (answered with an empty 200) instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { freePort, openssl } from './pki.js';
import { track } from './processes.js';

export interface StartOpensslResponderOptions {
  /** `openssl ca` index.txt database. */
  index: string;
  /** Issuer (CA) certificate of the certificates being queried, for `-CA`. */
  ca: string;
  /** Response signing certificate and key: the CA itself (CA-signed) or a delegated signer. */
  rsigner: string;
  rkey: string;
  /** Extra certificates to include in responses (`-rother`). */
  rother?: string;
  /** Fixed port; default: a free one (retried a few times if it gets taken meanwhile). */
  port?: number;
  /** nextUpdate = thisUpdate + ndays (default 1; null: no -ndays, so no nextUpdate at all) ... */
  ndays?: number | null;
  /** ... or + nmin minutes (takes precedence over ndays). */
  nmin?: number;
  /** Appended verbatim, e.g. ['-resp_no_certs'] or ['-resp_key_id']. */
  extraArgs?: string[];
}

export interface OpensslResponder {
  /** http://127.0.0.1:<port>/ */
  url: string;
  port: number;
  /** Process id of the `openssl ocsp` process. */
  pid: number;
  /** Everything the responder wrote to stderr so far (it logs each request's first line). */
  output(): string;
  /** SIGTERM, SIGKILL after 2 s; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Generous: the suite shares two cores with other work, and start-up is never assumed fast. */
const READY_TIMEOUT_MS = 60_000;
const KILL_GRACE_MS = 2_000;
const MAX_PORT_ATTEMPTS = 5;

export async function startOpensslResponder(opts: StartOpensslResponderOptions): Promise<OpensslResponder> {
  let lastErr: unknown;
  const attempts = opts.port === undefined ? MAX_PORT_ATTEMPTS : 1;
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await freePort());
    try {
      return await startOnPort(opts, port);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

async function startOnPort(opts: StartOpensslResponderOptions, port: number): Promise<OpensslResponder> {
  const args = ['ocsp', '-index', opts.index, '-port', String(port), '-CA', opts.ca];
  args.push('-rsigner', opts.rsigner, '-rkey', opts.rkey);
  if (opts.rother) args.push('-rother', opts.rother);
  if (opts.nmin !== undefined) args.push('-nmin', String(opts.nmin));
  else if (opts.ndays !== null) args.push('-ndays', String(opts.ndays ?? 1));
  // Keep serving after a malformed request; bound how long one slow client can block the queue.
  args.push('-ignore_err', '-timeout', '5', ...(opts.extraArgs ?? []));

  const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const append = (chunk: Buffer): void => {
    stderr = (stderr + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);

  const exited = new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once('exit', () => res());
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));

  track(child);

  const stop = async (): Promise<void> => {
    // pid is undefined when the spawn itself failed: nothing to kill, and no 'exit' will come.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      await exited;
      clearTimeout(timer);
    }
  };

  try {
    await waitReady(
      child,
      port,
      () => spawnError,
      () => stderr,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}/`, port, pid: child.pid as number, output: () => stderr, stop };
}

/** Polls with `GET / HTTP/1.0` until the responder answers with an HTTP status line. */
async function waitReady(
  child: ChildProcess,
  port: number,
  spawnError: () => Error | undefined,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const err = spawnError();
    if (err) throw new Error(`could not run openssl ocsp: ${err.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `openssl ocsp exited early (code ${child.exitCode}, signal ${child.signalCode}): ${stderr().trim()}`,
      );
    }
    // Only probe once it says it is listening: avoids connection-refused noise and, more
    // importantly, never hands it a half-finished connection.
    if (stderr().includes('waiting for OCSP client connections') && (await probe(port))) return;
    if (Date.now() > deadline) {
      throw new Error(
        `openssl ocsp not ready on port ${port} after ${READY_TIMEOUT_MS} ms: ${stderr().trim()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

function probe(port: number): Promise<boolean> {
  return new Promise((res) => {
    let data = '';
    let settled = false;
    const done = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      res(ok);
    };
    const sock = connect({ host: '127.0.0.1', port }, () => sock.write('GET / HTTP/1.0\r\n\r\n'));
    // Long enough that a loaded responder answers: an abandoned half-read probe can leave a
    // `-multi` child spinning.
    sock.setTimeout(10_000, () => done(false));
    // Let the responder finish and close the connection itself (HTTP/1.0), then judge.
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('error', () => done(false));
    sock.on('close', () => done(/^HTTP\/1\.[01] \d{3}/.test(data)));
  });
}

/** The usual test responder: `openssl ocsp` for a test PKI, signing with its delegated signer on its OCSP port. */
export function startDelegatedResponder(pki: {
  index: string;
  intermediate: { cert: string };
  signer: { cert: string; key: string };
  ocspPort: number | undefined;
}): Promise<OpensslResponder> {
  return startOpensslResponder({
    index: pki.index,
    ca: pki.intermediate.cert,
    rsigner: pki.signer.cert,
    rkey: pki.signer.key,
    port: pki.ocspPort,
  });
}

/**
 * `openssl ocsp` for a test PKI signing with the intermediate itself (CA-signed responses) on its
 * OCSP port, each response valid for `ndays` (so it carries a nextUpdate).
 */
export function startCaSignedResponder(
  pki: { index: string; intermediate: { cert: string; key: string }; ocspPort: number | undefined },
  ndays: number,
): Promise<OpensslResponder> {
  return startOpensslResponder({
    index: pki.index,
    ca: pki.intermediate.cert,
    rsigner: pki.intermediate.cert,
    rkey: pki.intermediate.key,
    port: pki.ocspPort,
    ndays,
  });
}

/**
 * What `openssl ocsp` (delegated signer) answered for `leafCert` before the CA revoked it: the
 * request is answered offline (`-reqin`/`-respout`) from a copy of the index in which every
 * revoked entry is still valid. Returns the DER response: a "good" staple for a revoked
 * certificate, as a renewer holds it when the responder starts saying revoked.
 */
export async function goodResponseBeforeRevocation(
  pki: { index: string; intermediate: { cert: string }; signer: { cert: string; key: string } },
  leafCert: string,
  workDir: string,
): Promise<Buffer> {
  const dir = await mkdtemp(path.join(workDir, 'before-revocation-'));
  const index = path.join(dir, 'index.txt');
  const entries = await readFile(pki.index, 'utf8');
  // R <expiry> <revocation date,reason> <serial> ... → V <expiry> <empty> <serial> ...
  await writeFile(index, entries.replace(/^R\t([^\t]*)\t[^\t]*\t/gm, 'V\t$1\t\t'));
  await writeFile(`${index}.attr`, 'unique_subject = no\n');
  const request = path.join(dir, 'request.der');
  const response = path.join(dir, 'response.der');
  await openssl([
    'ocsp',
    '-issuer',
    pki.intermediate.cert,
    '-cert',
    leafCert,
    '-no_nonce',
    '-reqout',
    request,
  ]);
  await openssl([
    'ocsp', '-index', index, '-CA', pki.intermediate.cert, '-rsigner', pki.signer.cert, '-rkey', pki.signer.key,
    '-reqin', request, '-respout', response, '-ndays', '1',
  ]); // prettier-ignore
  return readFile(response);
}
