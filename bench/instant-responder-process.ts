/**
 * Child process of the benchmarks: the instant loopback OCSP responder (./instant-responder.ts) in
 * a process of its own, so its CPU and memory do not count against the process being measured.
 * Answers with `<responses dir>/<serial hex>.der` for the request's serial (./fleet.ts
 * responderFor). Prints `listening <port>` once it listens; on SIGTERM prints `requests <count>`
 * and exits; exits too when its stdin closes (the parent went away, however it went).
 *
 * Usage: tsx bench/instant-responder-process.ts <responses dir> <port, 0 = any> [delay ms]
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { responderFor } from './fleet.js';
import { startInstantResponder } from './instant-responder.js';

const [responsesDir, port, delayMs] = process.argv.slice(2) as [string, string, string | undefined];
const bySerial = new Map<string, Buffer>();
for (const file of await readdir(responsesDir)) {
  if (file.endsWith('.der'))
    bySerial.set(path.basename(file, '.der'), await readFile(path.join(responsesDir, file)));
}
const responder = await startInstantResponder(responderFor(bySerial), Number(port), Number(delayMs ?? 0));
const stop = () => {
  process.stdout.write(`requests ${responder.requests()}\n`, () => process.exit(0));
};
process.once('SIGTERM', stop);
process.stdin.on('end', stop).on('error', stop).resume();
process.stdout.write(`listening ${new URL(responder.url).port}\n`);
