/**
 * `npm run local-s3` (test/local-s3.ts), used as docs/hosts.md shows: it starts a local S3 and
 * keeps it running, the variables it prints are all host/pull-staples.sh and the aws CLI need to
 * pull a staple from it, and Ctrl-C (SIGINT to its process group, as a terminal sends it) stops it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runToEnd } from './helpers/cli-process.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { AWS_V2, makeStaple, runPull } from './helpers/pull-script.js';

let pki: TestPki;
let work: string;

beforeAll(async () => {
  pki = await makeTestPki();
  work = await mkdtemp(path.join(tmpdir(), 'ocsp-local-s3-'));
}, 120_000);

afterAll(async () => {
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' }, () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
  });

describe.skipIf(!existsSync(AWS_V2))('npm run local-s3', () => {
  it('serves the staples it was given to the pull script and the aws CLI, until Ctrl-C', async () => {
    const staples = path.join(work, 'staples');
    await mkdir(path.join(staples, 'web'), { recursive: true });
    const der = await makeStaple(pki, pki.leaves.good.cert, path.join(staples, 'web', 'good.ocsp'));

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/local-s3.ts', '--staples', staples], {
      cwd: REPO_ROOT,
      detached: true, // its own process group, as a shell job is
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    try {
      const deadline = Date.now() + 90_000;
      while (!out.includes('export AWS_ENDPOINT_URL=')) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`local-s3 did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toContain('uploaded s3://ocsp-local/staples/web/good.ocsp');
      // Exactly the exported variables: nothing from this test's own environment.
      const exported = Object.fromEntries(
        [...out.matchAll(/^export (.+)$/gm)].flatMap((m) =>
          m[1]!.split(' ').map((pair) => pair.split('=', 2) as [string, string]),
        ),
      );
      expect(Object.keys(exported).sort()).toEqual([
        'AWS_ACCESS_KEY_ID', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_REGION',
        'AWS_SECRET_ACCESS_KEY', 'OCSP_BUCKET', 'OCSP_ENDPOINT_URL',
      ]); // prettier-ignore
      const env = { PATH: process.env.PATH, HOME: work, AWS_EC2_METADATA_DISABLED: 'true', ...exported };

      const dest = path.join(work, 'pulled');
      const pulled = await runPull(['--dest', dest, '--aws-cli', AWS_V2, '--issuer', pki.intermediate.cert], {
        env,
      });
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(await readFile(path.join(dest, 'web', 'good.ocsp'))).toEqual(der);

      const endpoint = exported.AWS_ENDPOINT_URL!;
      const listed = await runToEnd(
        AWS_V2,
        ['--endpoint-url', endpoint, 's3', 'ls', 's3://ocsp-local/', '--recursive'],
        { env },
      );
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('staples/web/good.ocsp');

      // Still running: a second pull finds it (and nothing new).
      expect((await runPull(['--dest', dest, '--aws-cli', AWS_V2], { env })).code).toBe(0);

      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('SIGINT: stopping the local S3');
      expect(await accepts(Number(new URL(endpoint).port))).toBe(false);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 180_000);
});
