/**
 * The signals cron and monitoring read from `renew`: its exit code and what `--quiet` prints.
 *
 * `renew --certs` pointed at the wrong place: a missing directory, file, bucket or prefix, or a
 * location that lists no certificate at all, is an error (exit 1, a message naming it, no state
 * written), never a green run of zero certificates. `--allow-empty` accepts an empty one on
 * purpose; a single `s3://` object works like `--certs FILE`. A published revoked staple is
 * printed on every run, even with `--quiet`. The command runs in-process (`main`) against real
 * files, s3rver and an `openssl ocsp` responder.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../lambda/cli/cli.js';
import { defaultStateFile } from '../lambda/cli/locations.js';
import {
  startDelegatedResponder,
  startOpensslResponder,
  type OpensslResponder,
} from './helpers/openssl-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import { startS3Server, type S3Server } from './helpers/s3-server.js';

const BUCKET = 'locations';
const PRIVATE = '--allow-private-responders';

let pki: TestPki;
let responder: OpensslResponder;
let s3: S3Server;
let admin: S3Client;
let work: string;
const savedEnv = { ...process.env };

interface Result {
  code: number;
  out: string;
  err: string;
}

async function renew(...args: string[]): Promise<Result> {
  let out = '';
  let err = '';
  const code = await main(['renew', ...args], {
    out: (t) => void (out += t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => void (err += t.endsWith('\n') ? t : `${t}\n`),
  });
  return { code, out, err };
}

beforeAll(async () => {
  [pki, s3, work] = await Promise.all([
    makeTestPki(),
    startS3Server({ buckets: [BUCKET] }),
    mkdtemp(path.join(tmpdir(), 'ocsp-renewer-locations-')),
  ]);
  responder = await startDelegatedResponder(pki);
  // The command's state goes under this test's own directory; S3 is s3rver.
  Object.assign(process.env, s3.env, { XDG_STATE_HOME: path.join(work, 'state') });
  delete process.env.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
  delete process.env.AWS_PROFILE;
  admin = s3.client();
  await admin.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: 'certs/a/good.pem',
      Body: await readFile(pki.leaves.good.bundle),
    }),
  );
}, 120_000);

afterAll(async () => {
  process.env = savedEnv;
  admin?.destroy();
  await Promise.all([responder?.stop(), s3?.stop()]);
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('renew --certs: a location that is missing or lists nothing', () => {
  it.for([
    ['a missing directory', 'no-such-dir'],
    ['a missing file', 'no-such-dir/www.pem'],
  ])('%s exits 1 naming it, even with --quiet, and writes no state', async ([, rel]) => {
    const certs = path.join(work, rel!);
    const res = await renew('--certs', certs, '--quiet');
    expect(res).toMatchObject({ code: 1, out: '' });
    expect(res.err).toBe(`ocsp-renewer: renew --certs ${certs}: no such file or directory\n`);
    expect(existsSync(defaultStateFile(certs))).toBe(false);
    expect(existsSync(defaultStateFile(path.dirname(certs)))).toBe(false);
  });

  it('an empty directory, or one with no certificate file, exits 1 and writes no state', async () => {
    for (const files of [[], ['README.txt', 'www.key']]) {
      const certs = await mkdtemp(path.join(work, 'empty-'));
      for (const f of files) await writeFile(path.join(certs, f), 'not a certificate\n');
      const res = await renew('--certs', certs, '--quiet');
      expect(res.code, res.err).toBe(1);
      expect(res.out).toBe('');
      expect(res.err).toMatch(/^ocsp-renewer: no certificates in .*empty-\w+ \(\.pem, \.crt, \.cert files\)/);
      expect(res.err).toContain('--allow-empty');
      expect(existsSync(defaultStateFile(certs))).toBe(false);
    }
  });

  it('--allow-empty: an empty directory on purpose exits 0', async () => {
    const certs = await mkdtemp(path.join(work, 'empty-on-purpose-'));
    const res = await renew('--certs', certs, '--allow-empty');
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^0 certificates/m);
  });

  it('--persist over an empty directory stops at once with exit 1', async () => {
    const certs = await mkdtemp(path.join(work, 'empty-daemon-'));
    const res = await renew('--certs', certs, '--persist', '--quiet');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/no certificates in .*empty-daemon-/);
    expect(existsSync(defaultStateFile(certs))).toBe(false);
  }, 60_000);

  it('a mistyped s3:// prefix exits 1 naming it and writes no state', async () => {
    const certs = `s3://${BUCKET}/typo/`;
    const res = await renew('--certs', certs, '--quiet');
    expect(res.code, res.err).toBe(1);
    expect(res.err).toMatch(/^ocsp-renewer: no certificates in s3:\/\/locations\/typo\//);
    expect(existsSync(defaultStateFile(certs))).toBe(false);
  }, 60_000);

  it('a missing bucket exits 1 naming it and writes no state', async () => {
    const certs = 's3://no-such-bucket/certs/';
    const res = await renew('--certs', certs);
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/s3:\/\/no-such-bucket\/certs\/: cannot list: .*bucket does not exist/i);
    expect(existsSync(defaultStateFile(certs))).toBe(false);
  }, 60_000);
});

describe('renew --certs s3://bucket/key: one object works like --certs FILE', () => {
  it('renews that certificate; its staple goes beside it by default', async () => {
    const res = await renew('--certs', `s3://${BUCKET}/certs/a/good.pem`, PRIVATE);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^good\.pem\s+renewed\s+good/m);
    const staple = await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'certs/a/good.ocsp' }));
    expect((await staple.Body!.transformToByteArray()).length).toBeGreaterThan(100);
  }, 60_000);

  it('and into --staples when given', async () => {
    const res = await renew(
      '--certs',
      `s3://${BUCKET}/certs/a/good.pem`,
      '--staples',
      `s3://${BUCKET}/staples/`,
      PRIVATE,
    );
    expect(res.code, res.err).toBe(0);
    await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'staples/good.ocsp' }));
  }, 60_000);

  it('a local FILE still works as before', async () => {
    const dir = await mkdtemp(path.join(work, 'file-'));
    await mkdir(dir, { recursive: true });
    await copyFile(pki.leaves.good.bundle, path.join(dir, 'www.pem'));
    const res = await renew('--certs', path.join(dir, 'www.pem'), PRIVATE);
    expect(res.code, res.err).toBe(0);
    expect(existsSync(path.join(dir, 'www.ocsp'))).toBe(true);
  }, 60_000);
});

describe('renew --quiet', () => {
  it('prints a published revoked staple on every run, not only the one that fetched it', async () => {
    const certs = await mkdtemp(path.join(work, 'quiet-'));
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
    await copyFile(pki.leaves.revoked.bundle, path.join(certs, 'revoked.pem'));
    const first = await renew('--certs', certs, '--quiet', PRIVATE);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/^revoked\.pem\s+renewed\s+revoked/m);
    for (let run = 2; run <= 3; run++) {
      const again = await renew('--certs', certs, '--quiet', PRIVATE);
      expect(again.code, again.err).toBe(0);
      // Nothing changed: the good certificate says nothing, the revoked one is still printed.
      expect(again.out).not.toContain('good.pem');
      expect(again.out).toMatch(/^revoked\.pem\s+fresh\s+revoked/m);
      expect(again.out).toContain('WARNING: 1 certificate reported REVOKED by their responder');
    }
  }, 60_000);

  it('prints nothing when all is well', async () => {
    const certs = await mkdtemp(path.join(work, 'quiet-good-'));
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
    expect((await renew('--certs', certs, '--quiet', PRIVATE)).out).toMatch(/good\.pem\s+renewed/);
    expect(await renew('--certs', certs, '--quiet', PRIVATE)).toEqual({ code: 0, out: '', err: '' });
  }, 60_000);
});

describe('renew against a responder that sends no nextUpdate (openssl ocsp without -ndays)', () => {
  let bare: TestPki;
  let noNextUpdate: OpensslResponder;
  beforeAll(async () => {
    bare = await makeTestPki();
    noNextUpdate = await startOpensslResponder({
      index: bare.index,
      ca: bare.intermediate.cert,
      rsigner: bare.signer.cert,
      rkey: bare.signer.key,
      port: bare.ocspPort,
      ndays: null,
    });
  }, 120_000);
  afterAll(async () => {
    await noNextUpdate?.stop();
    await bare?.cleanup();
  });

  it('says why a staple needs a nextUpdate, and the next run says --force retries now', async () => {
    const certs = await mkdtemp(path.join(work, 'no-next-update-'));
    await copyFile(bare.leaves.good.bundle, path.join(certs, 'good.pem'));
    const first = await renew('--certs', certs, PRIVATE);
    expect(first.code).toBe(1);
    expect(first.out).toMatch(/^good\.pem\s+failed\s.*\[validate\] .*nextUpdate is absent/m);
    expect(first.out).toContain('a staple needs a nextUpdate: it tells the server when to fetch a fresh one');
    expect(first.out).toContain('openssl ocsp: -ndays 1');
    const second = await renew('--certs', certs, PRIVATE);
    expect(second.code).toBe(1);
    expect(second.out).toMatch(/backing off after 1 failure\b.*; --force retries now/);
    // And --force does retry at once (and fails the same way: the responder is unchanged).
    const forced = await renew('--certs', certs, PRIVATE, '--force');
    expect(forced.out).toContain('nextUpdate is absent');
    expect(forced.out).not.toContain('backing off');
  }, 60_000);
});

describe('renew: a changed setting applies on the next run (through the state file)', () => {
  it('--on-revoked withhold takes a published revoked staple down at once; publish brings it back', async () => {
    const certs = await mkdtemp(path.join(work, 'on-revoked-'));
    await copyFile(pki.leaves.revoked.bundle, path.join(certs, 'revoked.pem'));
    const published = await renew('--certs', certs, PRIVATE);
    expect(published.out).toMatch(/^revoked\.pem\s+renewed\s+revoked/m);
    // Nothing is due, and the state file says so; the new setting applies all the same.
    const withheld = await renew('--certs', certs, PRIVATE, '--on-revoked', 'withhold');
    expect(withheld.code, withheld.err).toBe(0);
    expect(withheld.out).toMatch(/^revoked\.pem\s+withheld\s+revoked\s.*stored staple withheld/m);
    expect(existsSync(path.join(certs, 'revoked.ocsp'))).toBe(false);
    expect(existsSync(path.join(certs, 'revoked.ocsp.withheld'))).toBe(true);
    await new Promise((r) => setTimeout(r, 1_100)); // openssl ocsp signs a new second
    const again = await renew('--certs', certs, PRIVATE, '--on-revoked', 'publish');
    expect(again.out).toMatch(/^revoked\.pem\s+renewed\s+revoked/m);
    expect(existsSync(path.join(certs, 'revoked.ocsp'))).toBe(true);
    expect(existsSync(path.join(certs, 'revoked.ocsp.withheld'))).toBe(false);
  }, 60_000);
});
