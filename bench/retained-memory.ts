/**
 * Child process of `npm run bench`, started with `--expose-gc`: the memory a run keeps per
 * certificate once it is over. A forced run() over N distinct leaves (bench/fleet.ts) with
 * in-memory ports that keep nothing of their own (the store drops what it is given), then, while
 * the run's report and its `RunState` map are still held, the old generation's bytes in use after
 * a full GC (V8's old space and large-object space: the report's row array and the state map's
 * table outgrow a page at large N), against the same measure taken before the run. The
 * difference divided by N is what each certificate costs a process that keeps its outcome: the
 * daemon's state between runs, the Lambda's report until it is written.
 *
 * A warm-up run over other leaves comes first (modules loaded, code compiled), and the certificate
 * parse cache is emptied before each measure: it holds at most 512 certificates whatever N is, so
 * it is no cost per certificate. The fleet's own bytes are held throughout, in both measures.
 *
 * Prints one JSON line: n, baseline and held bytes, perCertificate bytes.
 *
 * Usage: node --expose-gc --import tsx bench/retained-memory.ts <n>
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { clearCertificateCache } from '../lambda/core/certificate.js';
import { run } from '../lambda/renew/run.js';
import { makeFleet } from './fleet.js';
import type { RunState } from '../lambda/renew/ports.js';

const n = Number(process.argv[2]);
const WARM_UP = 200;
const collect = globalThis.gc;
if (!collect || !(n > 0))
  throw new Error('usage: node --expose-gc --import tsx bench/retained-memory.ts <n>');

const now = new Date();
const fleet = makeFleet(n + WARM_UP, 'http://127.0.0.1:9/', now, 3);
const bundles = fleet.leaves.map((l) => Buffer.from(l.bundle));

/** A forced run over bundles [from, from + count) with ports that keep nothing. */
async function forcedRun(from: number, count: number, state: RunState) {
  const report = await run(
    {
      source: {
        description: 'memory',
        list: async () =>
          Array.from({ length: count }, (_, i) => ({ key: `certs/hosts/leaf-${from + i}.pem`, tag: 'v1' })),
        read: async (key) => bundles[Number(/(\d+)\.pem$/.exec(key)![1])]!,
      },
      store: {
        description: 'memory',
        get: async () => undefined,
        put: async () => 't',
        delete: async () => {},
        putMarker: async () => {},
      },
      transport: async (_url, requestDer) => ({ der: fleet.responseFor(requestDer)! }),
      clock: () => now,
      state,
    },
    { force: true, concurrency: 8 },
  );
  if (report.counts.renewed !== count) throw new Error(`renewed ${JSON.stringify(report.counts)}`);
  return report;
}

/** Old-generation bytes in use after a full GC (twice: the first may leave weak references). */
function oldGeneration(): number {
  clearCertificateCache();
  collect!();
  collect!();
  return getHeapSpaceStatistics()
    .filter((s) => s.space_name === 'old_space' || s.space_name === 'large_object_space')
    .reduce((sum, s) => sum + s.space_used_size, 0);
}

await forcedRun(n, WARM_UP, new Map());
const baseline = oldGeneration();
const state: RunState = new Map();
const report = await forcedRun(0, n, state);
const held = oldGeneration();
if (report.results.length !== n || state.size !== n)
  throw new Error('the report or the state lost a certificate');
console.log(JSON.stringify({ n, baseline, held, perCertificate: (held - baseline) / n }));
