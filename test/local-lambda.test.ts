/**
 * `npm run local-lambda` (test/local-lambda.ts), run as the README shows: the Lambda handler
 * against a local s3rver, over a real test PKI and a real `openssl ocsp` responder.
 */
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, REPO_ROOT, runToEnd } from './helpers/cli-process.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, openssl, type TestPki } from './helpers/pki.js';

let pki: TestPki;
let responder: OpensslResponder;
let work: string;

beforeAll(async () => {
  pki = await makeTestPki();
  responder = await startDelegatedResponder(pki);
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-local-lambda-'));
});

afterAll(async () => {
  killAll();
  await responder?.stop();
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('npm run local-lambda', () => {
  it('runs the handler over a local S3 and hands back staples openssl verifies', async () => {
    const certs = path.join(work, 'certs');
    await mkdir(path.join(certs, 'web'), { recursive: true });
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'web', 'good.pem'));
    await copyFile(pki.leaves.revoked.bundle, path.join(certs, 'revoked.pem'));
    const out = path.join(work, 'out');
    const env = { ...process.env, OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1' };
    const res = await runToEnd(
      'npm',
      ['run', '--silent', 'local-lambda', '--', '--certs', certs, '--out', out],
      {
        env,
        cwd: REPO_ROOT,
        timeoutMs: 180_000,
      },
    );
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as {
      counts: Record<string, number>;
      results: Array<{ name: string; action: string }>;
    };
    expect(report.results.map((r) => [r.name, r.action]).sort()).toEqual([
      ['revoked.pem', 'renewed'],
      ['web/good.pem', 'renewed'],
    ]);
    expect((await readdir(out, { recursive: true })).sort()).toEqual([
      'revoked.ocsp',
      'web',
      'web/good.ocsp',
    ]);
    const verified = await openssl([
      'ocsp', '-respin', path.join(out, 'web', 'good.ocsp'), '-issuer', pki.intermediate.cert,
      '-CAfile', pki.chain, '-cert', pki.leaves.good.cert,
    ]); // prettier-ignore
    expect(verified).toMatch(/good\.pem: good/);
  }, 240_000);

  it('without the guard-lifting variable, a loopback responder is refused: exit 1, the reason in the report', async () => {
    const certs = path.join(work, 'certs-guarded');
    await mkdir(certs);
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
    const env = { ...process.env };
    delete env.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
    const res = await runToEnd('npm', ['run', '--silent', 'local-lambda', '--', '--certs', certs], {
      env,
      cwd: REPO_ROOT,
      timeoutMs: 180_000,
    });
    expect(res.code, res.stderr).toBe(1);
    const report = JSON.parse(res.stdout) as { results: Array<{ action: string; reason: string }> };
    expect(report.results[0]).toMatchObject({ action: 'failed' });
    expect(report.results[0]!.reason).toMatch(/loopback|private|not allowed/i);
  }, 240_000);
});
