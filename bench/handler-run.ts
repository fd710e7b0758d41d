/**
 * Child process of `npm run bench`: the Lambda handler
 * (lambda/aws/handler.ts's `handler`, as the Lambda runtime imports it) invoked twice in this one
 * process, as a warm Lambda container would be: `{"mode":"force"}`, then a scheduled run (`{}`,
 * nothing due). Its environment is the Lambda's (BUCKET, the AWS_* variables of a local S3,
 * OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS); the handler's own log lines go to stdout as in Lambda.
 * With HANDLER_MODULE (a file: URL) it imports that module instead, such as the esbuild bundle the
 * stack deploys. Prints one last line `BENCH <json>`: each invocation's seconds and counts.
 *
 * Usage: tsx bench/handler-run.ts (no arguments; everything comes from the environment)
 */
type Handler = (typeof import('../lambda/aws/handler.js'))['handler'];
const { handler } = (await import(process.env.HANDLER_MODULE ?? '../lambda/aws/handler.js')) as {
  handler: Handler;
};

async function invoke(event: unknown) {
  const start = process.hrtime.bigint();
  const summary = await handler(event);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { seconds, counts: summary.counts };
}

const forced = await invoke({ mode: 'force' });
const quiet = await invoke({});
console.log(`BENCH ${JSON.stringify({ forced, quiet })}`);
