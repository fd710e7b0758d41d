/**
 * The CLI loads the AWS SDK only for AWS locations (docs/ARCHITECTURE.md): a run over a directory
 * loads no module of @aws-sdk/ or @smithy/ (about 30 MB of RSS and part of the start-up). The
 * real command runs in a child with helpers/record-modules.mjs preloaded, which writes down every
 * module the child loads; an s3:// run shows that the record does see the SDK when it is loaded.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_BIN, killAll, REPO_ROOT, runToEnd, type ProcessResult } from './helpers/cli-process.js';
import { startDelegatedResponder, type OpensslResponder } from './helpers/openssl-responder.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';
import type { RunReport } from '../lambda/renew/ports.js';

const RECORDER = path.join(REPO_ROOT, 'test/helpers/record-modules.mjs');
const CLI_MODULE = pathToFileURL(path.join(REPO_ROOT, 'lambda/cli/cli.ts')).href;
const AWS_SDK = /\/node_modules\/@(aws-sdk|smithy)\//;

let pki: TestPki;
let responder: OpensslResponder;
let work: string;
let runs = 0;

beforeAll(async () => {
  [pki, work] = await Promise.all([makeTestPki(), mkdtemp(path.join(tmpdir(), 'ocsp-renewer-lazy-sdk-'))]);
  responder = await startDelegatedResponder(pki);
});

afterAll(async () => {
  killAll();
  await responder?.stop();
  await pki?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Runs `ocsp-renewer ...args` with the recorder; returns its result and every module URL it loaded. */
async function recordedCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ProcessResult & { modules: string[] }> {
  const record = path.join(work, `modules-${++runs}.txt`);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_STATE_HOME: path.join(work, 'xdg'),
    RECORD_MODULES_TO: record,
    ...env,
  };
  delete childEnv.OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS;
  delete childEnv.AWS_PROFILE;
  const result = await runToEnd(process.execPath, ['--import', RECORDER, DEV_BIN, ...args], {
    env: childEnv,
  });
  const modules = (await readFile(record, 'utf8')).split('\n').filter(Boolean);
  return { ...result, modules };
}

describe('ocsp-renewer over a directory', () => {
  it('should renew and report status without loading the AWS SDK', async () => {
    const certs = path.join(work, 'certs');
    await mkdir(certs);
    await copyFile(pki.leaves.good.bundle, path.join(certs, 'good.pem'));
    await copyFile(pki.leaves.ec.bundle, path.join(certs, 'ec.pem'));
    const state = path.join(work, 'state.json');

    const renew = await recordedCli([
      'renew',
      '--certs',
      certs,
      '--state',
      state,
      '--allow-private-responders',
      '--json',
    ]);
    expect(renew.code, renew.stderr).toBe(0);
    expect((JSON.parse(renew.stdout) as RunReport).counts).toMatchObject({ renewed: 2, failed: 0 });
    expect((await stat(path.join(certs, 'good.ocsp'))).size).toBeGreaterThan(0);
    expect((await stat(state)).size).toBeGreaterThan(0);
    // The record holds this run's own modules, so an empty SDK list is not an empty record.
    expect(renew.modules).toContain(CLI_MODULE);
    expect(renew.modules.filter((url) => AWS_SDK.test(url))).toEqual([]);

    const status = await recordedCli(['status', certs, '--state', state]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('good.pem');
    expect(status.modules).toContain(CLI_MODULE);
    expect(status.modules.filter((url) => AWS_SDK.test(url))).toEqual([]);
  });
});

describe('ocsp-renewer over an AWS location', () => {
  /** An endpoint that hangs up on every request: enough for the SDK to be loaded and to fail. */
  let endpoint: Server;
  let aws: NodeJS.ProcessEnv;
  beforeAll(async () => {
    endpoint = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    const { port } = endpoint.address() as { port: number };
    aws = {
      AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
    };
  });
  afterAll(() => new Promise<void>((resolve) => (endpoint ? endpoint.close(() => resolve()) : resolve())));

  it.each([
    ['s3://bucket/certs/', '@aws-sdk/client-s3'],
    ['secretsmanager://tls/', '@aws-sdk/client-secrets-manager'],
  ])('should load the AWS SDK for --certs %s (what the check above looks for)', async (certs, client) => {
    const staples = path.join(work, 'staples');
    const res = await recordedCli(['renew', '--certs', certs, '--staples', staples, '--dry-run'], aws);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`ocsp-renewer: source ${certs}: cannot list:`);
    const sdk = res.modules.filter((url) => AWS_SDK.test(url));
    expect(sdk.some((url) => url.includes(`/node_modules/${client}/`))).toBe(true);
    expect(sdk.some((url) => url.includes('/node_modules/@smithy/'))).toBe(true);
  });
});
