/**
 * `npm run bench:handler-memory`: where the Lambda handler's memory goes, run after run, without
 * redoing the set-up each time. Once: a synthetic fleet of N leaves (bench/fleet.ts), its instant
 * responder in a process of its own (bench/instant-responder-process.ts), s3rver in another
 * (test/helpers/s3-server.ts) and the N bundles uploaded under `certs/`. Then `--runs` times, each
 * in a fresh child process: bench/handler-run.ts, a forced invocation then a scheduled one, as in
 * `npm run bench`. Each run has its own STAPLES_PREFIX, STATE_PREFIX and REPORTS_PREFIX
 * (`run-<i>/…`), so each forced run starts with no staple, state or report, as the bench's does.
 *
 * Per run it prints the forced invocation's rate, the scheduled one's wall time, the child's peak
 * RSS, and the peaks (each on its own, sampled every 10 ms) of what RSS is made of: V8's heap
 * (used: live objects and garbage not yet collected; total: what V8 holds) with its young ("new")
 * and old generations, and memory outside the heap (external, of which ArrayBuffers: Buffers).
 * Peak RSS minus heap total minus external is node, the modules' code and native allocations.
 *
 * Options: `--n <count>` (default 10 000), `--runs <count>` (default 3), `--node <binary>` (the
 * node that runs the handler; default this one: for Node 24, `--node "$(npx -y -p node@24 -- node
 * -e 'process.stdout.write(process.execPath)')"`), `--node-flags "<flags>"` (any node flags, such
 * as `--max-semi-space-size=8`),
 * `--bundle` (the handler as deployed: the esbuild bundle of infra/renewer-function.ts's options,
 * imported by a plain node, no tsx, so the RSS is the Lambda's own), `--lambda` (the bundle started
 * as Lambda starts it: the runtime's flags for the stack's 1024 MB, the function's NODE_OPTIONS, and
 * the exec wrapper lambda/aws/exec-wrapper.sh; `--no-wrapper` leaves the wrapper out; any
 * `--node-flags` go after the runtime's flags, and the wrapper's flag after them).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startS3Server, type S3Server } from '../test/helpers/s3-server.js';
import { childOutput, handlerRun } from './children.js';
import { asLambdaStartsIt, buildDeployedHandlerRun } from './handler-bundle.js';
import { uploadFleet } from './upload-fleet.js';
import { startStateTables, type StateTables } from './state-table.js';
import { serveFleet, type ResponderProcess } from './instant-responder.js';

const argv = process.argv.slice(2);
const option = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const n = Number(option('--n') ?? 10_000);
const runs = Number(option('--runs') ?? 3);
const nodeBinary = option('--node') ?? process.execPath;
const nodeFlags = (option('--node-flags') ?? '').split(/\s+/).filter(Boolean);
const bundle = argv.includes('--bundle');
const lambda = argv.includes('--lambda');
const wrapper = !argv.includes('--no-wrapper');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUCKET = 'ocsp-renewer-bench';

const dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-handler-memory-'));
let responder: ResponderProcess | undefined;
let s3: S3Server | undefined;
let tables: StateTables | undefined;
try {
  tables = await startStateTables();
  const served = await serveFleet(dir, n, { certs: false });
  responder = served.responder;
  s3 = await startS3Server({ buckets: [BUCKET] });
  await uploadFleet(s3, BUCKET, served.fleet, n);

  // The child: handler-run.ts under tsx, or (--bundle, --lambda) compiled to plain JS importing
  // the bundle; with --lambda started as Lambda starts it (bench/handler-bundle.ts).
  let command = nodeBinary;
  let childArgs = [...nodeFlags, '--import', 'tsx', path.join(root, 'bench', 'handler-run.ts')];
  let env: NodeJS.ProcessEnv = {
    ...process.env,
    ...s3.env,
    BUCKET,
    OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS: '1',
    INLINE_MAX_KEYS: String(n + 1),
  };
  if (bundle || lambda) {
    const deployed = await buildDeployedHandlerRun(dir);
    env = { ...env, ...deployed.env };
    childArgs = [...nodeFlags, deployed.runFile];
    if (lambda) {
      const start = asLambdaStartsIt(nodeBinary, deployed.runFile, { wrapper });
      command = start.command;
      childArgs = [...start.args.slice(0, -1), ...nodeFlags, deployed.runFile];
      env = { ...env, ...start.env };
    }
  }

  const version = await childOutput('node --version', nodeBinary, ['--version'], env);
  const started = lambda
    ? `the esbuild bundle started as Lambda starts it (${wrapper ? 'through' : 'without'} the exec wrapper): ${command === nodeBinary ? '' : `${path.relative(root, command)} `}node ${childArgs.slice(command === nodeBinary ? 0 : 1, -1).join(' ')}, NODE_OPTIONS=${env.NODE_OPTIONS}`
    : `${bundle ? 'the esbuild bundle (as deployed)' : 'the TypeScript sources under tsx'}${nodeFlags.length ? `, node ${nodeFlags.join(' ')}` : ''}`;
  console.log(`handler over s3rver, N = ${n}, node ${version.trim()}, ${started}; MB are peaks\n`);
  const columns = ['rss', 'heapUsed', 'heapTotal', 'newSpace', 'oldSpace', 'external', 'arrayBuffers'];
  console.log(
    `${'run'.padEnd(4)}${'forced/s'.padStart(9)}${'quiet s'.padStart(8)}${'peak RSS'.padStart(9)}  ` +
      `${'invocation'.padEnd(11)}${columns.map((c) => c.padStart(13)).join('')}`,
  );
  const peaks: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const result = await handlerRun(`run ${i}`, command, childArgs, n, {
      ...env,
      ...(await tables.table(`run-${i}`)),
      STAPLES_PREFIX: `run-${i}/staples/`,
      STATE_PREFIX: `run-${i}/state/`,
      REPORTS_PREFIX: `run-${i}/reports/`,
    });
    peaks.push(result.maxRssMB);
    for (const [name, inv] of [
      ['forced', result.forced],
      ['scheduled', result.quiet],
    ] as const) {
      const head =
        name === 'forced'
          ? `${String(i).padEnd(4)}${(n / result.forced.seconds).toFixed(0).padStart(9)}` +
            `${result.quiet.seconds.toFixed(2).padStart(8)}${result.maxRssMB.toFixed(0).padStart(9)}  `
          : ' '.repeat(30);
      console.log(
        `${head}${name.padEnd(11)}${columns.map((c) => (inv.peakMB[c] ?? 0).toFixed(1).padStart(13)).join('')}`,
      );
    }
  }
  peaks.sort((a, b) => a - b);
  console.log(`\npeak RSS over ${runs} runs: median ${peaks[peaks.length >> 1]!.toFixed(0)} MB`);
} finally {
  await s3?.stop();
  await tables?.stop();
  await responder?.stop();
  rmSync(dir, { recursive: true, force: true });
}
