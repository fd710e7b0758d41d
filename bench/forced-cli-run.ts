/**
 * Child process of `npm run bench`: one forced `ocsp-renewer renew` (the CLI's main(), in this
 * process) over a directory of certificates, so the parent can read this process's own CPU time.
 * The responder the certificates name lives in another process (bench/instant-responder-process.ts,
 * started by the parent): nothing here but the CLI. Prints one JSON line: seconds, counts and the
 * main thread's CPU seconds (Linux).
 *
 * Usage: tsx bench/forced-cli-run.ts <certs dir> <staples dir> <state file>
 */
import { readFileSync } from 'node:fs';
import { main } from '../lambda/cli/cli.js';

const [certs, staples, state] = process.argv.slice(2) as [string, string, string];
// The report's head only (its counts come before its rows): a real run writes the rest to stdout
// and keeps none of it, so the bench keeps none either, and parses nothing big after the run.
let head = '';
const start = process.hrtime.bigint();
const code = await main(
  [
    'renew',
    '--certs',
    certs,
    '--staples',
    staples,
    '--state',
    state,
    '--force',
    '--json',
    '--allow-private-responders',
  ],
  { out: (t) => (head = head.length < 4096 ? head + t.slice(0, 4096) : head), err: () => {} },
);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;

/**
 * CPU seconds of this process's main thread (the event loop) so far, from Linux's
 * /proc/self/task/<pid>/stat (utime + stime, in clock ticks of 1/100 s); undefined elsewhere.
 * Steadier than the wall time on a shared machine, and what the thread pool takes off.
 */
function mainThreadCpuSeconds(): number | undefined {
  try {
    const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
const counts = JSON.parse(/"counts": (\{[^}]*\})/.exec(head)?.[1] ?? 'null') as Record<string, number> | null;
console.log(
  JSON.stringify({
    code,
    seconds,
    mainThreadCpuS: mainThreadCpuSeconds(),
    counts,
  }),
);
