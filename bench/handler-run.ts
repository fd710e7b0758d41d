/**
 * Child process of `npm run bench`: the Lambda handler
 * (lambda/aws/handler.ts's `handler`, as the Lambda runtime imports it) invoked twice in this one
 * process, as a warm Lambda container would be: a forced run over the `leaf-` prefix (in the
 * function: INLINE_MAX_KEYS is set above N; `{"mode":"force"}` alone would start the state
 * machine), then two scheduled runs (`{}`: the first seeds the table, the second is the quiet one
 * reported, nothing due). Its environment is the Lambda's (BUCKET, STATE_TABLE, the AWS_*
 * variables of a local S3 and DynamoDB, OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS); the handler's own
 * log lines go to stdout as in Lambda.
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
  return { seconds, counts: summary.counts, due: summary.due };
}

const forced = await invoke({ mode: 'force', prefix: 'leaf-' });
await invoke({});
const quiet = await invoke({});
console.log(`BENCH ${JSON.stringify({ forced, quiet })}`);
