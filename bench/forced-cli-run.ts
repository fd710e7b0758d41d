/**
 * Child process of `npm run bench`: one forced `ocsp-renewer renew` (the CLI's main(), in this
 * process) over a directory of certificates, against the instant responder on a given port, so the
 * parent can read this process's own peak RSS. Prints one JSON line: seconds, counts, maxRssMB.
 *
 * Usage: tsx bench/forced-cli-run.ts <certs dir> <staples dir> <state file> <responses dir> <port>
 * (responses dir: one `<serial hex>.der` per certificate, what the responder answers).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { main } from '../lambda/cli/cli.js';
import { responderFor } from './fleet.js';
import { startInstantResponder } from './instant-responder.js';

const [certs, staples, state, responsesDir, port] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const bySerial = new Map<string, Buffer>();
for (const file of await readdir(responsesDir)) {
  bySerial.set(path.basename(file, '.der'), await readFile(path.join(responsesDir, file)));
}
const responder = await startInstantResponder(responderFor(bySerial), Number(port));
let output = '';
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
  { out: (t) => (output += t), err: () => {} },
);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
responder.server.close();
const report = JSON.parse(output) as { counts: Record<string, number> };
console.log(
  JSON.stringify({
    code,
    seconds,
    counts: report.counts,
    requests: responder.requests(),
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  }),
);
