/**
 * Child process of `npm run bench`: the Lambda handler (lambda/aws/handler.ts's `handler`, as the
 * Lambda runtime imports it) invoked twice in this one process, as a warm Lambda container would
 * be: `{"mode":"force"}`, then a scheduled run (`{}`, nothing due). Its environment is the
 * Lambda's (BUCKET, the AWS_* variables of a local S3, OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS); the
 * handler's own log lines go to stdout as in Lambda. Prints one last line `BENCH <json>`: each
 * invocation's seconds, counts and this process's peak RSS so far, and its peak RSS over both.
 *
 * Usage: tsx bench/handler-run.ts (no arguments; everything comes from the environment)
 */
import { handler } from '../lambda/aws/handler.js';

async function invoke(event: unknown) {
  const start = process.hrtime.bigint();
  const summary = await handler(event);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { seconds, counts: summary.counts, maxRssMB: process.resourceUsage().maxRSS / 1024 };
}

const forced = await invoke({ mode: 'force' });
const quiet = await invoke({});
console.log(`BENCH ${JSON.stringify({ forced, quiet, maxRssMB: process.resourceUsage().maxRSS / 1024 })}`);
