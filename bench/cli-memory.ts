/**
 * `npm run bench:cli-memory`: the forced CLI run of `npm run bench` (bench/forced-cli-run.ts: the
 * CLI's main() with --force over a directory of N distinct leaves, against the instant responder
 * in a process of its own), repeated under several NODE_OPTIONS, alternated run after run so each
 * variant sees the same machine load, over one set-up. Per run it prints the rate, the main
 * thread's CPU time, the peak RSS and the peaks of what memory is made of (V8's young and old
 * generations, heap total, external memory); then each variant's medians.
 *
 * Options: `--n <count>` (default 10 000), `--runs <count>` (per variant, default 3),
 * `--variant "<NODE_OPTIONS>"` (repeatable; default: a bare node, then NODE_OPTIONS as the
 * `ocsp-renewer` command's launcher sets it, read from lambda/cli/bin.ts). The node is this one:
 * for Node 24, run it with `npx -y -p node@24 -- node --import tsx bench/cli-memory.ts …`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/pki.js';
import { makeFleet, writeFleetFiles } from './fleet.js';
import { launcherNodeOptions } from './handler-bundle.js';
import { spawnInstantResponder, type ResponderProcess } from './instant-responder.js';

const argv = process.argv.slice(2);
const option = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const n = Number(option('--n') ?? 10_000);
const runs = Number(option('--runs') ?? 3);
const given = argv.flatMap((a, i) => (a === '--variant' ? [argv[i + 1] ?? ''] : []));
const variants = given.length ? given : ['', launcherNodeOptions().trim()];
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Forced {
  seconds: number;
  counts: Record<string, number>;
  mainThreadCpuS?: number;
  maxRssMB: number;
  peakMB: Record<string, number>;
}

const dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-cli-memory-'));
let responder: ResponderProcess | undefined;
try {
  const certs = path.join(dir, 'certs');
  const responses = path.join(dir, 'responses');
  mkdirSync(certs);
  mkdirSync(responses);
  const port = await freePort();
  writeFleetFiles(makeFleet(n, `http://127.0.0.1:${port}/`, new Date(), 3), { certs, responses });
  responder = await spawnInstantResponder(responses, port);

  console.log(`forced CLI run over ${n} certificates, node ${process.version}; MB are peaks\n`);
  const label = (v: string) => (v ? `NODE_OPTIONS="${v}"` : 'bare node');
  const width = Math.max(...variants.map((v) => label(v).length));
  const columns = ['heapTotal', 'newSpace', 'oldSpace', 'external'];
  console.log(
    `${'variant'.padEnd(width)}${'rate/s'.padStart(8)}${'cpu s'.padStart(7)}${'RSS'.padStart(6)}` +
      columns.map((c) => c.padStart(11)).join(''),
  );
  const results = new Map<string, Forced[]>(variants.map((v) => [v, []]));
  for (let r = 0; r < runs; r++) {
    for (const [i, variant] of variants.entries()) {
      const staples = path.join(dir, `staples-${r}-${i}`);
      mkdirSync(staples);
      const result = await forcedRun(certs, staples, path.join(dir, `state-${r}-${i}.json`), variant);
      rmSync(staples, { recursive: true, force: true });
      if (result.counts.renewed !== n) throw new Error(`forced CLI run: ${JSON.stringify(result.counts)}`);
      results.get(variant)!.push(result);
      console.log(
        `${label(variant).padEnd(width)}${(n / result.seconds).toFixed(0).padStart(8)}` +
          `${(result.mainThreadCpuS ?? NaN).toFixed(2).padStart(7)}${result.maxRssMB.toFixed(0).padStart(6)}` +
          columns.map((c) => (result.peakMB[c] ?? 0).toFixed(1).padStart(11)).join(''),
      );
    }
  }
  console.log('\nmedians');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const [variant, rs] of results) {
    console.log(
      `${label(variant).padEnd(width)}${median(rs.map((x) => n / x.seconds))
        .toFixed(0)
        .padStart(8)}` +
        `${median(rs.map((x) => x.mainThreadCpuS ?? NaN))
          .toFixed(2)
          .padStart(7)}${median(rs.map((x) => x.maxRssMB))
          .toFixed(0)
          .padStart(6)}`,
    );
  }
} finally {
  await responder?.stop();
  rmSync(dir, { recursive: true, force: true });
}

/** One forced CLI run in a child (bench/forced-cli-run.ts under tsx) with this NODE_OPTIONS. */
async function forcedRun(
  certs: string,
  staples: string,
  state: string,
  nodeOptions: string,
): Promise<Forced> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'bench', 'forced-cli-run.ts'), certs, staples, state],
    { cwd: root, env: { ...process.env, NODE_OPTIONS: nodeOptions }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-64 * 1024)));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`forced CLI run (${nodeOptions}) exited ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as Forced;
}
