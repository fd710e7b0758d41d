/**
 * The Lambda handler bundled as infra/renewer-function.ts bundles it (esbuild, ESM, mainFields
 * module,main, the createRequire banner, minified with a separate source map, AWS SDK included,
 * node24 target): the bundle rows of `npm run bench` and `npm run bench:handler-memory --bundle`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
