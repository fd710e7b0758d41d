/**
 * What the command says, in the user's terms: usage errors that name the likely fix, failures
 * said once, counts in the right number, no placeholder dates, one duration format and times that
 * carry their zone. The command runs in-process (`main`) against an `openssl ocsp` responder.
 */
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../lambda/core/status.js';
import { runMain, startInProcessCli, type InProcessCli } from './helpers/in-process-cli.js';
import type { TestPki } from './helpers/pki.js';

let fixture: InProcessCli | undefined;
let pki: TestPki;
let work: string;

function cli(...args: string[]) {
  return runMain(args);
}

/** A directory holding the named leaves' bundles, renewed once. */
async function renewed(...leaves: Array<keyof TestPki['leaves']>): Promise<string> {
  const dir = await mkdtemp(path.join(work, 'certs-'));
  for (const leaf of leaves) await copyFile(pki.leaves[leaf].bundle, path.join(dir, `${leaf}.pem`));
  const res = await cli('renew', '--certs', dir, '--allow-private-responders');
  expect(res.code, res.out + res.err).toBe(0);
  return dir;
}

beforeAll(async () => {
  fixture = await startInProcessCli('ocsp-renewer-messages-');
  ({ pki, work } = fixture);
}, 120_000);

afterAll(() => fixture?.stop());

describe('usage errors name the fix', () => {
  it.for([
    [['renew', '--certz', 'x'], "ocsp-renewer: unknown option '--certz'; did you mean '--certs'?"],
    [
      ['inspect', 'x.ocsp', '--isuer', 'i.pem'],
      "ocsp-renewer: unknown option '--isuer'; did you mean '--issuer'?",
    ],
    [['status', '.', '--bogus'], "ocsp-renewer: unknown option '--bogus'"],
    [['renew', '-x'], "ocsp-renewer: unknown option '-x'"],
    [
      ['renew', './certs'],
      'ocsp-renewer: renew takes no arguments: use --certs ./certs for the certificates',
    ],
    [
      ['renew', '--certs', '.', '--timeout', '-1'],
      'ocsp-renewer: --timeout must be a number of seconds ≥ 1, got "-1"',
    ],
    [
      ['renew', '--certs', '.', '--timeout', '0.5'],
      'ocsp-renewer: --timeout must be a number of seconds ≥ 1, got "0.5"',
    ],
  ] as const)('%j', async ([args, message], { expect }) => {
    const res = await cli(...args);
    expect(res.code).toBe(2);
    const first = res.err.split('\n')[0]!;
    expect(first).toBe(message);
    // Quotes come in pairs.
    expect((first.match(/'/g) ?? []).length % 2).toBe(0);
    expect((first.match(/"/g) ?? []).length % 2).toBe(0);
  });
});

describe('renew says each thing once, in the right number, without placeholders', () => {
  it('a file that is not a certificate: "not a certificate" once; "1 certificate"', async () => {
    const dir = await mkdtemp(path.join(work, 'junk-'));
    await writeFile(path.join(dir, 'junk.pem'), 'junk');
    const res = await cli('renew', '--certs', dir);
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/\[parse\] parse junk\.pem: not a certificate: (?!not a certificate)/);
    expect(res.out).toContain('\n1 certificate: 1 failed');
  });

  it('a skipped certificate never shows the 9999-12-31 "never" date, in the table or the JSON', async () => {
    const dir = await renewed('noOcsp', 'good');
    for (const json of [false, true]) {
      const res = await cli('renew', '--certs', dir, ...(json ? ['--json'] : []));
      expect(res.code, res.err).toBe(0);
      expect(res.out).not.toContain('9999-12-31');
      expect(res.out).toMatch(json ? /"action": "skipped"/ : /^noOcsp\.pem\s+skipped\s/m);
    }
    expect((await cli('renew', '--certs', dir)).out).toContain('\n2 certificates: 1 fresh, 1 skipped');
  });
});

describe('inspect', () => {
  it('given a certificate, says it is one and how to call inspect', async () => {
    const res = await cli('inspect', pki.leaves.good.cert);
    expect(res.code).toBe(1);
    expect(res.err).toBe(
      `parse ${pki.leaves.good.cert}: this is a certificate, not an OCSP response; give a ` +
        `staple (and this file as --cert): ocsp-renewer inspect <staple> --cert ${pki.leaves.good.cert}\n`,
    );
  });

  it('without an issuer: "signature not checked (no issuer)", never "valid: NO" for that alone', async () => {
    const dir = await renewed('good');
    const res = await cli('inspect', path.join(dir, 'good.ocsp'));
    expect(res.out).toMatch(/^valid: +signature not checked \(no issuer\)$/m);
    expect(res.out).toMatch(/^signature: +NOT CHECKED: no issuer/m);
    expect(res.out).not.toMatch(/^valid: +NO/m);
    expect(res.out).not.toContain('issuer-missing');
    // With the issuer it is checked and valid.
    const checked = await cli('inspect', path.join(dir, 'good.ocsp'), '--cert', path.join(dir, 'good.pem'));
    expect(checked.code).toBe(0);
    expect(checked.out).toMatch(/^valid: +yes$/m);
  });
});

describe('status', () => {
  it('the summary and the rows say the same validity; table times carry their zone', async () => {
    const dir = await renewed('good');
    const res = await cli('status', dir);
    expect(res.code, res.err).toBe(0);
    const json = JSON.parse((await cli('status', dir, '--json')).out) as StatusReport;
    const left = json.rows[0]!.validityLeft;
    expect(res.out).toMatch(
      new RegExp(
        `^good\\.pem\\s+healthy\\s+good\\s+\\S+ \\d\\d:\\d\\dZ\\s+\\S+ \\d\\d:\\d\\dZ\\s+${left}\\s`,
        'm',
      ),
    );
    expect(res.out.trimEnd().split('\n').at(-1)).toContain(`least validity ${left} (good.pem)`);
  });
});
