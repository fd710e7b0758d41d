/**
 * Child process of `npm run bench` and `npm run bench:handler-memory`: the Lambda handler
 * (lambda/aws/handler.ts's `handler`, as the Lambda runtime imports it) invoked twice in this one
 * process, as a warm Lambda container would be: `{"mode":"force"}`, then a scheduled run (`{}`,
 * nothing due). Its environment is the Lambda's (BUCKET, the AWS_* variables of a local S3,
 * OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS); the handler's own log lines go to stdout as in Lambda.
 * With HANDLER_MODULE (a file: URL) it imports that module instead, such as the esbuild bundle the
 * stack deploys. Prints one last line `BENCH <json>`: each invocation's seconds, counts, this
 * process's peak RSS so far and its memory sampled every 10 ms during the invocation (`peakMB`:
 * the highest rss, heapUsed, heapTotal, external, arrayBuffers and the V8 young and old
 * generations' sizes, each on its own), and its peak RSS over both.
 *
 * Usage: tsx bench/handler-run.ts (no arguments; everything comes from the environment)
 */
import { peakRssMB, sampleMemory } from './sample-memory.js';

type Handler = (typeof import('../lambda/aws/handler.js'))['handler'];
const { handler } = (await import(process.env.HANDLER_MODULE ?? '../lambda/aws/handler.js')) as {
  handler: Handler;
};

async function invoke(event: unknown) {
  const stop = sampleMemory();
  const start = process.hrtime.bigint();
  const summary = await handler(event);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const peakMB = stop();
  return { seconds, counts: summary.counts, maxRssMB: peakRssMB(), peakMB };
}

const forced = await invoke({ mode: 'force' });
const quiet = await invoke({});
console.log(`BENCH ${JSON.stringify({ forced, quiet, maxRssMB: peakRssMB() })}`);
