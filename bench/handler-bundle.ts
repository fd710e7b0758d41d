/**
 * The Lambda handler bundled as infra/renewer-function.ts bundles it (esbuild, ESM, mainFields
 * module,main, the createRequire banner, minified with a separate source map, AWS SDK included,
 * node24 target), and started as Lambda starts it: the bundle rows and the handler rows of
 * `npm run bench`.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_MEMORY_MB, DEFAULT_NODE_OPTIONS } from '../infra/renewer-function.js';
import { lambdaRuntimeNodeArgs } from '../test/helpers/lambda-runtime.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Writes the bundle of lambda/aws/handler.ts to `outfile` (and its `.map` beside it). */
export async function buildHandlerBundle(outfile: string): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(root, 'lambda', 'aws', 'handler.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    mainFields: ['module', 'main'],
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    minify: true,
    sourcemap: true,
    logLevel: 'error',
  });
}

/**
 * The bench child bench/handler-run.ts as the deployed handler runs: the bundle in `dir`
 * (bundle/index.mjs) and handler-run.ts compiled to plain JS (handler-run.mjs) that imports it
 * (HANDLER_MODULE), so no tsx in the measured process.
 */
export async function buildDeployedHandlerRun(
  dir: string,
): Promise<{ runFile: string; env: NodeJS.ProcessEnv }> {
  const { build } = await import('esbuild');
  const handlerFile = path.join(dir, 'bundle', 'index.mjs');
  await buildHandlerBundle(handlerFile);
  const runFile = path.join(dir, 'handler-run.mjs');
  await build({
    entryPoints: [path.join(root, 'bench', 'handler-run.ts')],
    outfile: runFile,
    bundle: true, // the handler is not in it: import()ed from HANDLER_MODULE
    format: 'esm',
    platform: 'node',
    logLevel: 'error',
  });
  return { runFile, env: { HANDLER_MODULE: pathToFileURL(handlerFile).href } };
}

/**
 * `node` running `script` as Lambda's Node.js runtime starts its entry script for the stack's
 * default memory size: the runtime's flags (test/helpers/lambda-runtime.ts) and the function's
 * NODE_OPTIONS.
 */
export function asLambdaStartsIt(
  node: string,
  script: string,
): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  return {
    command: node,
    args: [...lambdaRuntimeNodeArgs(DEFAULT_MEMORY_MB), script],
    env: { NODE_OPTIONS: DEFAULT_NODE_OPTIONS },
  };
}
