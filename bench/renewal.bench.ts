/**
 * `npm run bench`: what a large renewal spends its time and memory on, one row per measure, each
 * with its method in a comment and its target (issue 11's goals, 2-core machine, Node 24), printed
 * as a table. `npm run bench -- --check` exits 1 when a target is missed; without it the bench only
 * reports (several goals are not met yet). `--n <count>` sets the fleet size of the CLI rows
 * (default 1 000, so the bench stays near a minute on a loaded 2-core machine; issue 11's figures
 * are for `--n 10000`, ~2.5 minutes). The quiet run's target scales with N (1 s per 10 000).
 *
 * Rows 1-6 use the shared OCSP vectors (aws-lc/s2n test PKI: RSA-2048 CA, delegated responder),
 * the same bytes every time. The rows after them use a synthetic fleet (bench/fleet.ts: one issuer,
 * one delegated responder certificate, N distinct leaves, one distinct response per leaf, ECDSA
 * P-256), so no cache keyed by content can answer for them. No network beyond loopback.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { clearCertificateCache, parseCertificates } from '../lambda/core/certificate.js';
import { parseOcspResponse } from '../lambda/core/ocsp-response.js';
import { pickIssuer } from '../lambda/renew/issuer.js';
import type { CertificateSource, StapleStore, RunState } from '../lambda/renew/ports.js';
import { run } from '../lambda/renew/run.js';
import { ValidationCache } from '../lambda/core/responder.js';
import { validateResponse } from '../lambda/core/validate.js';
import { main } from '../lambda/cli/cli.js';
import { startS3Server, type S3Server } from '../test/helpers/s3-server.js';
import { childJson, forcedCliRun, handlerRun } from './children.js';
import { makeFleet } from './fleet.js';
import { asLambdaStartsIt, buildDeployedHandlerRun, buildHandlerBundle } from './handler-bundle.js';
import { uploadFleet } from './upload-fleet.js';
import { startStateTables } from './state-table.js';
import { serveFleet, type ResponderProcess } from './instant-responder.js';

const argv = process.argv.slice(2);
const check = argv.includes('--check');
const bigN = argv.includes('--n') ? Number(argv[argv.indexOf('--n') + 1]) : 1000;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const vectors = process.env.OCSP_VECTORS_DIR ?? path.join(root, 'test', 'fixtures', 'ocsp-vectors');
const read = (f: string) => readFileSync(path.join(vectors, 'aws-lc-s2n', f));

const leafPem = read('rsa_cert.pem');
const issuerPem = read('ca_cert.pem');
const responseDer = read('ocsp_response.der'); // delegated signer, good, nextUpdate 2031
const [leaf] = parseCertificates(leafPem);
const [issuer] = parseCertificates(issuerPem);
// Inside the response's 10-year window and before every certificate's jittered refresh point.
const now = new Date('2022-01-01T00:00:00Z');

interface Target {
  /** 'min': the value must be at least `value` (a rate); 'max': at most (a time, a size). */
  kind: 'min' | 'max';
  value: number;
}
interface Row {
  name: string;
  value: number;
  unit: string;
  target?: Target;
}
const rows: Row[] = [];
const atLeast = (value: number): Target => ({ kind: 'min', value });
const atMost = (value: number): Target => ({ kind: 'max', value });

function measure(name: string, iterations: number, fn: () => void, target?: Target) {
  for (let i = 0; i < Math.min(50, iterations); i++) fn(); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({ name, value: iterations / seconds, unit: '/s', target });
}

async function measureAsync(name: string, count: number, fn: () => Promise<void>, target?: Target) {
  const start = process.hrtime.bigint();
  await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({ name, value: count / seconds, unit: '/s', target });
}

measure('parse OCSP response (strict DER, once per response)', 2000, () => {
  parseOcspResponse(responseDer);
});
const parsed = parseOcspResponse(responseDer);
const cache = new ValidationCache();
measure(
  'validate a parsed response (node:crypto, cached responder check)',
  20000,
  () => {
    if (!validateResponse(parsed, { cert: leaf, issuer, now, cache }).valid) throw new Error('invalid');
  },
  atLeast(5000),
);
// What worthThreadPool (lambda/core/signature.ts) decides on: one signature verification inline,
// against the event loop's share of handing it to the thread pool (issuing crypto.verify with a
// callback; the verification itself then runs on a pool thread), in µs, over a 1.2 KB message.
{
  const message = Buffer.alloc(1200, 3);
  const keys: Array<[string, 'ec' | 'ed25519' | 'rsa', object, string | null]> = [
    ['ECDSA P-256', 'ec', { namedCurve: 'prime256v1' }, 'sha256'],
    ['Ed25519', 'ed25519', {}, null],
    ['RSA-2048', 'rsa', { modulusLength: 2048 }, 'sha256'],
    ['RSA-4096', 'rsa', { modulusLength: 4096 }, 'sha256'],
  ];
  for (const [label, type, options, hash] of keys) {
    const { publicKey, privateKey } = generateKeyPairSync(type as 'ec', options as { namedCurve: string });
    const signature = sign(hash, message, privateKey);
    const count = 2000;
    let start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) verify(hash, message, publicKey, signature);
    const inline = Number(process.hrtime.bigint() - start) / 1e3 / count;
    const done: Array<Promise<boolean>> = [];
    start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      done.push(
        new Promise((resolve) => verify(hash, message, publicKey, signature, (_e, ok) => resolve(ok))),
      );
    }
    const handOver = Number(process.hrtime.bigint() - start) / 1e3 / count;
    await Promise.all(done);
    rows.push({ name: `${label} signature verification, inline (event loop)`, value: inline, unit: 'µs' });
    rows.push({
      name: `${label} signature verification, handed to the thread pool (event loop's share)`,
      value: handOver,
      unit: 'µs',
    });
  }
}

// Same bytes every time: a cache keyed by the response's content would answer this row.
measure('parse + validate, cold cache each time (same bytes)', 1000, () => {
  validateResponse(parseOcspResponse(responseDer), { cert: leaf, issuer, now, cache: new ValidationCache() });
});

// For comparison: pkijs's own verify over WebCrypto, the naive path.
const basicDer = (() => {
  const outer = new pkijs.OCSPResponse({ schema: asn1js.fromBER(new Uint8Array(responseDer)).result });
  return outer.responseBytes!.response.valueBlock.valueHexView;
})();
const issuerAsn = issuer!.asn;
{
  const iterations = 200;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const basic = pkijs.BasicOCSPResponse.fromBER(basicDer);
    await basic.verify({ trustedCerts: [issuerAsn] });
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({
    name: 'naive pkijs fromBER + verify({trustedCerts}) (comparison)',
    value: iterations / seconds,
    unit: '/s',
  });
}

// Whole runs over an in-memory source and store with an instant responder.
const N = 2000;
const bundle = Buffer.concat([leafPem, issuerPem]);
const source: CertificateSource = {
  description: 'memory',
  list: async () => Array.from({ length: N }, (_, i) => ({ key: `c${i}.pem`, tag: 'v1' })),
  // Every certificate here has the same bytes; clearing the parse cache on each read makes every
  // leaf (and its intermediate) cost a real parse, as distinct certificates would.
  read: async () => {
    clearCertificateCache();
    return bundle;
  },
};
const staples = new Map<string, Buffer>();
const store: StapleStore = {
  description: 'memory',
  get: async (key) => {
    const der = staples.get(key);
    return der && { der, tag: 't' };
  },
  put: async (key, der) => {
    staples.set(key, der);
    return 't';
  },
  list: async () => new Map([...staples.keys()].map((k) => [k, 't'])),
  delete: async (key) => void staples.delete(key),
  putMarker: async (key, text) => void staples.set(key, Buffer.from(text)),
};
const state: RunState = new Map();
const deps = {
  source,
  store,
  transport: async () => ({ der: responseDer }),
  clock: () => now,
  state,
  trustState: true,
};
await measureAsync(
  `forced renewal of ${N} certificates, same bytes re-parsed, instant responder (concurrency 8)`,
  N,
  async () => {
    const report = await run(deps, { force: true, concurrency: 8 });
    if (report.counts.renewed !== N) throw new Error(`renewed ${report.counts.renewed}`);
  },
  atLeast(300),
);
await measureAsync(
  `quiet run over ${N} certificates (state trusted, nothing due)`,
  N,
  async () => {
    const report = await run(deps, { concurrency: 8 });
    if (report.counts.fresh !== N) throw new Error(`fresh ${report.counts.fresh}`);
  },
  atLeast(20000),
);

// --- issue 11's measures, on a synthetic fleet of distinct certificates and responses -------------
const fleetNow = new Date();

// Parse + validate, cold, per core: 3 000 distinct responses (one per leaf) under one responder
// certificate, each parsed and validated once with a fresh ValidationCache, on this one thread.
// The leaves are parsed, and their issuer found (pickIssuer: the leaf's signature verified, which
// validateResponse then needs not verify again), before the clock starts, as a renewal does; the
// responder certificate inside every response has the same bytes (as in a real fleet), so a cache
// of certificates by content may answer it.
{
  const fleet = makeFleet(3000, 'http://127.0.0.1:9/', fleetNow, 1);
  const [fleetIssuer] = parseCertificates(Buffer.from(fleet.issuerPem));
  const leaves = fleet.leaves.map((l) => parseCertificates(l.der)[0]!);
  for (const leaf of leaves) {
    if ((await pickIssuer(leaf, [fleetIssuer!])) !== fleetIssuer) throw new Error('fleet issuer not found');
  }
  const once = (i: number) => {
    const verdict = validateResponse(parseOcspResponse(fleet.responses[i]!), {
      cert: leaves[i]!,
      issuer: fleetIssuer!,
      now: fleetNow,
      cache: new ValidationCache(),
    });
    if (!verdict.valid) throw new Error(`fleet response ${i} invalid`);
  };
  for (let i = 0; i < 100; i++) once(i); // warm up (those 100 are not timed again)
  const start = process.hrtime.bigint();
  for (let i = 100; i < fleet.responses.length; i++) once(i);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rows.push({
    name: 'parse + validate, cold, per core (3 000 distinct responses, one responder certificate)',
    value: (fleet.responses.length - 100) / seconds,
    unit: '/s',
    target: atLeast(3000),
  });
}

// Forced renewal, distinct leaves: run() with in-memory ports over a fleet of 2 000 distinct
// leaves (each a leaf + issuer bundle) under one issuer and one responder certificate; the
// transport answers at once with that leaf's pre-signed response. The certificate cache is
// cleared once before the run, never per read: a real fleet's leaves differ, its issuer does not.
{
  const fleetN = 2000;
  const fleet = makeFleet(fleetN, 'http://127.0.0.1:9/', fleetNow, 2);
  const bundles = fleet.leaves.map((l) => Buffer.from(l.bundle));
  const fleetStaples = new Map<string, Buffer>();
  clearCertificateCache();
  await measureAsync(
    `forced renewal of ${fleetN} distinct leaves, run() in memory, instant responder (concurrency 8)`,
    fleetN,
    async () => {
      const report = await run(
        {
          source: {
            description: 'memory',
            list: async () => bundles.map((_, i) => ({ key: `leaf-${i}.pem`, tag: 'v1' })),
            read: async (key) => bundles[Number(key.slice(5, -4))]!,
          },
          store: {
            description: 'memory',
            get: async (key) => {
              const der = fleetStaples.get(key);
              return der && { der, tag: 't' };
            },
            put: async (key, der) => {
              fleetStaples.set(key, der);
              return 't';
            },
            delete: async (key) => void fleetStaples.delete(key),
            putMarker: async (key, text) => void fleetStaples.set(key, Buffer.from(text)),
          },
          transport: async (_url, requestDer) => {
            const der = fleet.responseFor(requestDer);
            if (!der) throw new Error('unknown serial');
            return { der };
          },
          clock: () => fleetNow,
          state: new Map(),
        },
        { force: true, concurrency: 8 },
      );
      if (report.counts.renewed !== fleetN) throw new Error(`renewed ${JSON.stringify(report.counts)}`);
    },
    atLeast(1000),
  );
}

// Retained memory per certificate: what a process keeps for each certificate once a run is over
// (its report row and its RunState entry), as old-generation bytes after a full GC, per
// certificate, at N = bigN. A child started with --expose-gc (bench/retained-memory.ts: a forced
// run() over N distinct leaves with in-memory ports that keep nothing; see there for the method).
{
  const retained = await childJson<{ perCertificate: number }>(
    'retained memory',
    process.execPath,
    ['--expose-gc', '--import', 'tsx', path.join(root, 'bench', 'retained-memory.ts'), String(bigN)],
    process.env,
  );
  rows.push({
    name: `retained memory per certificate, N = ${bigN} (old generation after a full GC, the run's report and state held, per certificate)`,
    value: retained.perCertificate,
    unit: 'B',
    target: atMost(2048),
  });
}

// The CLI and the Lambda handler at N = bigN (`--n`, default 1 000; issue 11's goals are for
// 10 000): one synthetic fleet of bigN leaf bundles, their OCSP URL an instant loopback HTTP
// responder in a process of its own (bench/instant-responder-process.ts: it holds the N pre-signed
// responses and answers each request with a map lookup), so none of its CPU or memory counts
// against the process measured, nor does it compete for that process's thread.
//  1. Forced CLI run, wall time: a child process (bench/forced-cli-run.ts) runs the CLI's main()
//     with --force over a temp directory of the bundles (its own staples directory and state
//     file), then reports its wall time (around main()) and its main thread's CPU time.
//  2. Quiet CLI run, wall time: main() in this process, the state file and staples the forced run
//     wrote, nothing due; timed from the call to its return (listing, reading, deciding, saving
//     the state).
//  3. The Lambda handler over S3, N = min(bigN, HANDLER_N_CAP): s3rver in its own process
//     (test/helpers/s3-server.ts), the bundles uploaded under certs/ before the clock starts; a child
//     process (bench/handler-run.ts, compiled to plain JS) imports the handler as deployed (the
//     esbuild bundle of infra/renewer-function.ts's options) with the Lambda's environment and
//     invokes it with {"mode":"force"}, then with a scheduled event (nothing due), as one warm
//     container would. The child is started as Lambda starts it for the stack's 1024 MB: the Node.js
//     runtime's flags (test/helpers/lambda-runtime.ts) and NODE_OPTIONS=--enable-source-maps.
//     Rows: the forced invocation's rate, the scheduled one's wall time. s3rver's own latency (a
//     Node process writing each object to disk) is in those times, so they bound the handler's own
//     cost from above.
const HANDLER_N_CAP = 10_000;
{
  const dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-bench-'));
  let responder: ResponderProcess | undefined;
  let s3: S3Server | undefined;
  try {
    const served = await serveFleet(dir, bigN);
    responder = served.responder;
    const { fleet, certsDir } = served;
    const dirs = { certs: certsDir, staples: path.join(dir, 'staples'), state: path.join(dir, 'state.json') };
    mkdirSync(dirs.staples);
    const forced = await forcedCliRun('forced CLI run', dirs, bigN, process.env);
    rows.push({
      name: `forced renewal, CLI over a directory, N = ${bigN}, instant loopback HTTP responder in another process`,
      value: bigN / forced.seconds,
      unit: '/s',
      target: atLeast(1000),
    });
    if (forced.mainThreadCpuS !== undefined) {
      rows.push({
        name: `forced CLI run, N = ${bigN}: CPU time of its main thread (Linux /proc; steadier than the rate on a busy machine)`,
        value: forced.mainThreadCpuS,
        unit: 's',
      });
    }

    let output = '';
    const start = process.hrtime.bigint();
    await main(['renew', '--certs', certsDir, '--staples', dirs.staples, '--state', dirs.state, '--json'], {
      out: (t) => (output += t),
      err: () => {},
    });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const quiet = JSON.parse(output) as { counts: Record<string, number> };
    if (quiet.counts.fresh !== bigN) throw new Error(`quiet CLI run: ${JSON.stringify(quiet.counts)}`);
    rows.push({
      name: `quiet run, CLI over a directory, N = ${bigN} (state file, nothing due), wall time`,
      value: seconds,
      unit: 's',
      target: atMost(bigN / 10_000), // ≤ 1 s at N = 10 000
    });

    // The Lambda handler over S3.
    const handlerN = Math.min(bigN, HANDLER_N_CAP);
    const bucket = 'ocsp-renewer-bench';
    s3 = await startS3Server({ buckets: [bucket] });
    await uploadFleet(s3, bucket, fleet, handlerN);
    const tables = await startStateTables();
    // The handler as deployed (the esbuild bundle, no tsx), started as Lambda starts it for the
    // stack's 1024 MB.
    const deployed = await buildDeployedHandlerRun(dir);
    const started = asLambdaStartsIt(process.execPath, deployed.runFile);
    const lambda = await handlerRun('handler run', started.command, started.args, handlerN, {
      ...process.env,
      ...s3.env,
      ...deployed.env,
      ...started.env,
      BUCKET: bucket,
      OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
      INLINE_MAX_KEYS: String(handlerN + 1),
      ...(await tables.table('handler')),
    }).finally(() => tables.stop());
    const capped = handlerN < bigN ? `, capped from ${bigN}` : '';
    rows.push({
      name: `forced renewal, Lambda handler over S3, N = ${handlerN}${capped}, as deployed (bundle, runtime flags for 1024 MB; s3rver's latency included; responder in another process)`,
      value: handlerN / lambda.forced.seconds,
      unit: '/s',
    });
    rows.push({
      name: `quiet run, Lambda handler over S3, N = ${handlerN}${capped} (scheduled, nothing due; s3rver's latency included), wall time`,
      value: lambda.quiet.seconds,
      unit: 's',
    });
  } finally {
    await s3?.stop();
    await responder?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// Lambda bundle: esbuild lambda/aws/handler.ts with the options of infra/renewer-function.ts
// (ESM, mainFields module,main, the createRequire banner, minified, AWS SDK bundled, node24
// target); the size is index.mjs's (the source map is separate and not loaded unless
// NODE_OPTIONS=--enable-source-maps reads it). Cold import: a fresh `node` child imports the bundle
// and reports performance.now() around the import() (node's own start-up excluded), median of 5.
{
  const dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-bundle-'));
  try {
    const outfile = path.join(dir, 'index.mjs');
    await buildHandlerBundle(outfile);
    rows.push({
      name: 'Lambda bundle, minified (esbuild as infra/renewer-function.ts)',
      value: statSync(outfile).size / 1024 / 1024,
      unit: 'MB',
      target: atMost(1.5),
    });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const child = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const t = performance.now(); await import(${JSON.stringify(`file://${outfile}`)}); console.log(performance.now() - t);`,
        ],
        { encoding: 'utf8' },
      );
      if (child.status !== 0) throw new Error(`importing the bundle failed: ${child.stderr}`);
      times.push(Number(child.stdout.trim()));
    }
    times.sort((a, b) => a - b);
    rows.push({
      name: 'Lambda bundle, cold import in a fresh node (median of 5)',
      value: times[2]!,
      unit: 'ms',
      target: atMost(250),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let missed = 0;
const format = (v: number, unit: string) =>
  unit === '/s'
    ? `${v.toFixed(0)}/s`
    : unit === 'MB'
      ? `${v.toFixed(1)} MB`
      : `${v.toFixed(unit === 's' ? 2 : unit === 'µs' ? 1 : 0)} ${unit}`;
console.log(`Node ${process.version}, ${new Date().toISOString()}, N = ${bigN}${check ? ', --check' : ''}\n`);
console.log(`${'measured'.padStart(12)}  ${'target'.padEnd(12)}  verdict  what`);
for (const row of rows) {
  const met =
    row.target === undefined
      ? undefined
      : row.target.kind === 'min'
        ? row.value >= row.target.value
        : row.value <= row.target.value;
  if (met === false) missed++;
  const target = row.target
    ? `${row.target.kind === 'min' ? '≥' : '≤'} ${format(row.target.value, row.unit)}`
    : '';
  const verdict = met === undefined ? '' : met ? 'ok' : 'MISSED';
  console.log(
    `${format(row.value, row.unit).padStart(12)}  ${target.padEnd(12)}  ${verdict.padEnd(7)}  ${row.name}`,
  );
}
if (missed) console.log(`\n${missed} target(s) missed${check ? '' : ' (report only; --check exits 1)'}`);
process.exitCode = check && missed ? 1 : 0;
