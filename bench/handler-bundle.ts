/**
 * The Lambda handler bundled as infra/renewer-function.ts bundles it (esbuild, ESM, mainFields
 * module,main, the createRequire banner, minified with a separate source map, AWS SDK included,
 * node24 target), and started as Lambda starts it: the bundle rows and the handler rows of
 * `npm run bench`, and `npm run bench:handler-memory --bundle`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_MEMORY_MB, DEFAULT_NODE_OPTIONS, EXEC_WRAPPER } from '../infra/renewer-function.js';
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
    bundle: true, // bench/sample-memory.ts with it; the handler is import()ed from HANDLER_MODULE
    format: 'esm',
    platform: 'node',
    logLevel: 'error',
  });
  return { runFile, env: { HANDLER_MODULE: pathToFileURL(handlerFile).href } };
}

/**
 * `node` running `script` as Lambda's Node.js runtime starts its entry script for the stack's
 * default memory size: the runtime's flags (test/helpers/lambda-runtime.ts), the function's
 * NODE_OPTIONS, and (unless `wrapper` is false) through the exec wrapper the stack ships, which
 * adds its flag after the runtime's. `wrapper: false` is the same start without the wrapper.
 */
export function asLambdaStartsIt(
  node: string,
  script: string,
  { wrapper = true }: { wrapper?: boolean } = {},
): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const runtime = [...lambdaRuntimeNodeArgs(DEFAULT_MEMORY_MB), script];
  return wrapper
    ? {
        command: path.join(root, EXEC_WRAPPER.source),
        args: [node, ...runtime],
        env: { NODE_OPTIONS: DEFAULT_NODE_OPTIONS },
      }
    : { command: node, args: runtime, env: { NODE_OPTIONS: DEFAULT_NODE_OPTIONS } };
}

/**
 * NODE_OPTIONS as the `ocsp-renewer` command's launcher (the first two lines of lambda/cli/bin.ts
 * in the checkout at `dir`, default this one) sets it before it execs node: its own flags, then
 * the caller's. A checkout from before the launcher (bench:side-by-side --compare) gets the
 * caller's alone.
 */
export function launcherNodeOptions(callers = '', dir = root): string {
  const line = readFileSync(path.join(dir, 'lambda', 'cli', 'bin.ts'), 'utf8').split('\n')[1] ?? '';
  const flags = /NODE_OPTIONS="([^"$]*)\$\{NODE_OPTIONS-\}"/.exec(line)?.[1];
  if (flags === undefined && dir === root) {
    throw new Error(`lambda/cli/bin.ts: no launcher line setting NODE_OPTIONS: ${line}`);
  }
  return `${flags ?? ''}${callers}`;
}
