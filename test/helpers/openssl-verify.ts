/**
 * `openssl ocsp -respin` over a staple, against the test PKI: the judge of what a TLS client
 * accepts. Its stdout and stderr together, e.g. `<cert>: good` and `Response verify OK`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestPki } from './pki.js';

/** Runs `openssl` with `args`; its stdout and stderr together, whatever its exit code. */
function openssl(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('openssl', args, { timeout: 15_000 }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
  });
}

/**
 * Verifies `staple` (a file, or DER bytes written to a file in the PKI's directory) for `cert`,
 * issued by the PKI's intermediate; `extraArgs` such as `-resp_text` go last.
 *
 * Two runs: first as a client judges, WITHOUT `-issuer` (which would trust the issuer outright
 * when the signature fails to verify); only if that prints `Response verify OK` does the second
 * run, with `-issuer` and `-cert`, give the `<cert>: <status>` line. Otherwise the first run's
 * output is returned, so a caller's `Response verify OK` and status assertions both fail.
 */
export async function opensslVerify(
  staple: string | Uint8Array,
  cert: string,
  pki: TestPki,
  extraArgs: string[] = [],
): Promise<string> {
  let file = staple;
  if (typeof file !== 'string') {
    file = join(pki.dir, `staple-${randomBytes(6).toString('hex')}.der`);
    await writeFile(file, staple);
  }
  const asClient = await openssl([
    'ocsp',
    '-respin',
    file,
    '-verify_other',
    pki.intermediate.cert,
    '-CAfile',
    pki.chain,
  ]);
  if (!/Response verify OK/.test(asClient)) return `client-style verification failed:\n${asClient}`;
  return openssl([
    'ocsp',
    '-respin',
    file,
    '-issuer',
    pki.intermediate.cert,
    '-CAfile',
    pki.chain,
    '-cert',
    cert,
    ...extraArgs,
  ]);
}
