/**
 * `openssl ocsp -respin` over a staple, against the test PKI: the judge of what a TLS client
 * accepts. Its stdout and stderr together, e.g. `<cert>: good` and `Response verify OK`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestPki } from './pki.js';

/**
 * Verifies `staple` (a file, or DER bytes written to a file in the PKI's directory) for `cert`,
 * issued by the PKI's intermediate; `extraArgs` such as `-resp_text` go last.
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
  const args = [
    'ocsp',
    '-respin',
    file,
    '-issuer',
    pki.intermediate.cert,
    '-CAfile',
    pki.chain,
    '-cert',
    cert,
  ];
  return new Promise((resolve) => {
    execFile('openssl', [...args, ...extraArgs], { timeout: 15_000 }, (_err, stdout, stderr) =>
      resolve(`${stdout}\n${stderr}`),
    );
  });
}
