/**
 * The stack synthesized WITH bundling, as `npx cdk synth` does: esbuild runs locally (no Docker)
 * and the asset must be one self-contained ES module that loads and runs.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DEFAULT_MEMORY_MB } from '../infra/renewer-function.js';
import { OcspRenewerStack } from '../infra/stack.js';
import { lambdaRuntimeNodeArgs } from './helpers/lambda-runtime.js';
import { startDelegatedResponder } from './helpers/openssl-responder.js';
import { makeTestPki } from './helpers/pki.js';
import { startS3Server } from './helpers/s3-server.js';
import { startDynalite } from './helpers/dynalite.js';
import { stateTableDefinition } from '../lambda/adapters/dynamo-state.js';

const run = promisify(execFile);
const CDK_JSON = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};

describe('OcspRenewerStack bundling', () => {
  let outdir: string;
  let bundlePath: string;
  let bundle: string;
  let environment: Record<string, string>;

  beforeAll(async () => {
    outdir = await mkdtemp(join(tmpdir(), 'ocsp-renewer-cdk-'));
    const app = new App({ outdir, context: CDK_JSON.context });
    const stack = new OcspRenewerStack(app, 'OcspRenewer');
    const template = Template.fromStack(stack);
    const fn = template.findResources('AWS::Lambda::Function', {
      Properties: Match.objectLike({ Runtime: 'nodejs24.x' }),
    });
    const props = Object.values(fn)[0]!.Properties as {
      Code: { S3Key: string };
      Environment: { Variables: Record<string, string> };
    };
    const code = props.Code;
    environment = props.Environment.Variables;
    const hash = code.S3Key.replace(/\.zip$/, '');
    bundlePath = join(outdir, `asset.${hash}`, 'index.mjs');
    bundle = readFileSync(bundlePath, 'utf8');
  }, 60_000);

  afterAll(async () => {
    if (outdir) await rm(outdir, { recursive: true, force: true });
  });

  it('should emit index.mjs with its source map and the createRequire banner', () => {
    expect(existsSync(`${bundlePath}.map`)).toBe(true);
    expect(bundle.startsWith("import { createRequire } from 'node:module';")).toBe(true);
    expect(bundle).toContain('run report');
  });

  it('should start node with source maps, through no exec wrapper', () => {
    expect(environment.NODE_OPTIONS).toBe('--enable-source-maps');
    expect(environment).not.toHaveProperty('AWS_LAMBDA_EXEC_WRAPPER');
  });

  it('should bundle every dependency, pkijs and the AWS SDK included: only node: builtins stay imports', () => {
    const specifiers = [
      ...bundle.matchAll(/\bfrom\s*"([^"]+)"/g),
      ...bundle.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
      // (not the SDK's error text that reads `[require("@aws-sdk/signature-v4-crt");]`)
      ...bundle.matchAll(/(?<!\[)\brequire\(\s*"([^"]+)"\s*\)/g),
    ].map((m) => m[1]!);
    expect(specifiers.length).toBeGreaterThan(0);
    expect(specifiers.filter((s) => !s.startsWith('node:') && s !== 'module')).toEqual([]);
    expect(bundle).not.toContain('node_modules/pkijs');
    // The SDK's own package.json is inlined: the version that runs is the lockfile's.
    const sdk = JSON.parse(
      readFileSync(new URL('../node_modules/@aws-sdk/client-s3/package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    expect(bundle).toContain(`name:"@aws-sdk/client-s3",version:"${sdk.version}"`);
  });

  it('should load and run in plain Node: the handler refuses to start without BUCKET', async () => {
    // A child process, not vitest's import pipeline: what Lambda's runtime does with index.mjs.
    const script = [
      `const m = await import(${JSON.stringify(pathToFileURL(bundlePath).href)});`,
      'console.log(typeof m.handler);',
      "await m.createHandler({ env: {} })({ mode: 'scheduled' }).catch((e) => console.log(e.message));",
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout.trim().split('\n')).toEqual(['function', 'BUCKET is not set']);
  });

  it('should renew for real from the bundle: a scheduled run over S3 writes staples openssl verifies', async () => {
    // The artefact Lambda runs, not the sources: pkijs, asn1js and the SDK as esbuild bundled them.
    const [pki, s3, dynamo] = await Promise.all([
      makeTestPki(),
      startS3Server({ buckets: ['bundle'] }),
      startDynalite(),
    ]);
    await dynamo.createTable(stateTableDefinition('bundle-state'));
    const responder = await startDelegatedResponder(pki);
    try {
      const admin = s3.client();
      const pem = await readFile(pki.leaves.good.bundle);
      await admin.send(new PutObjectCommand({ Bucket: 'bundle', Key: 'certs/web/good.pem', Body: pem }));
      // Started as Lambda starts it: the runtime's node command line for the stack's memory size,
      // the entry script last.
      const entry = join(outdir, 'runtime-entry.mjs');
      await writeFile(
        entry,
        [
          `const { handler } = await import(${JSON.stringify(pathToFileURL(bundlePath).href)});`,
          "const report = await handler({ mode: 'scheduled' });",
          "console.error(JSON.stringify(report.counts), process.execArgv.join(' '));",
        ].join('\n'),
      );
      const runtimeArgs = lambdaRuntimeNodeArgs(DEFAULT_MEMORY_MB);
      const { stderr } = await run(process.execPath, [...runtimeArgs, entry], {
        env: {
          ...process.env,
          ...s3.env,
          NODE_OPTIONS: environment.NODE_OPTIONS,
          BUCKET: 'bundle',
          STATE_TABLE: 'bundle-state',
          // The SDK's own service-specific endpoint variable: the bundled client finds dynalite.
          AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
          OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
        },
      });
      const [counts, execArgv] = stderr
        .trim()
        .split('\n')
        .pop()!
        .split(/(?<=\}) /);
      expect(execArgv).toBe(runtimeArgs.join(' '));
      expect(JSON.parse(counts!)).toMatchObject({ renewed: 1, failed: 0 });
      const staple = await admin.send(
        new GetObjectCommand({ Bucket: 'bundle', Key: 'staples/web/good.ocsp' }),
      );
      const file = join(outdir, 'good.ocsp');
      await writeFile(file, Buffer.from(await staple.Body!.transformToByteArray()));
      const { stdout, stderr: verify } = await run('openssl', [
        'ocsp', '-respin', file, '-issuer', pki.intermediate.cert, '-cert', pki.leaves.good.cert,
        '-CAfile', pki.chain,
      ]); // prettier-ignore
      expect(verify).toContain('Response verify OK');
      expect(stdout).toMatch(/good\.pem: good/);
    } finally {
      await Promise.all([responder.stop(), s3.stop(), dynamo.stop()]);
      await pki.cleanup();
    }
  }, 60_000);
});
