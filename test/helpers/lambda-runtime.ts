/**
 * The node command line AWS Lambda's Node.js runtime starts: its bootstrap (/var/runtime/bootstrap
 * in the public base images) derives the V8 limits from the function's memory, a tenth of it for
 * the young generation (two semi-spaces) and the rest for the old one, and puts its entry script
 * (/var/runtime/index.mjs) last. Used to run the deployed bundle here the way Lambda does.
 */
export function lambdaRuntimeNodeArgs(memoryMB: number): string[] {
  const newSpace = Math.floor(memoryMB / 10);
  return [
    '--expose-gc',
    '--max-http-header-size',
    '81920',
    `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
    `--max-old-space-size=${memoryMB - newSpace}`,
  ];
}
