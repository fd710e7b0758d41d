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
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { forcedCliRun, type ForcedCliResult } from './children.js';
import { launcherNodeOptions } from './handler-bundle.js';
import { serveFleet, type ResponderProcess } from './instant-responder.js';

const argv = process.argv.slice(2);
const option = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const n = Number(option('--n') ?? 10_000);
const runs = Number(option('--runs') ?? 3);
const given = argv.flatMap((a, i) => (a === '--variant' ? [argv[i + 1] ?? ''] : []));
const variants = given.length ? given : ['', launcherNodeOptions().trim()];

const dir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-cli-memory-'));
let responder: ResponderProcess | undefined;
try {
  const served = await serveFleet(dir, n);
  responder = served.responder;

  console.log(`forced CLI run over ${n} certificates, node ${process.version}; MB are peaks\n`);
  const label = (v: string) => (v ? `NODE_OPTIONS="${v}"` : 'bare node');
  const width = Math.max(...variants.map((v) => label(v).length));
  const columns = ['heapTotal', 'newSpace', 'oldSpace', 'external'];
  console.log(
    `${'variant'.padEnd(width)}${'rate/s'.padStart(8)}${'cpu s'.padStart(7)}${'RSS'.padStart(6)}` +
      columns.map((c) => c.padStart(11)).join(''),
  );
  const results = new Map<string, ForcedCliResult[]>(variants.map((v) => [v, []]));
  for (let r = 0; r < runs; r++) {
    for (const [i, variant] of variants.entries()) {
      const dirs = {
        certs: served.certsDir,
        staples: path.join(dir, `staples-${r}-${i}`),
        state: path.join(dir, `state-${r}-${i}.json`),
      };
      mkdirSync(dirs.staples);
      const result = await forcedCliRun(`forced CLI run (${label(variant)})`, dirs, n, {
        ...process.env,
        NODE_OPTIONS: variant,
      });
      rmSync(dirs.staples, { recursive: true, force: true });
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
