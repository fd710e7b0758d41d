/**
 * Preloaded into a child with `node --import <this file>`: records, one URL a line, every module
 * the process loads, in the file named by $RECORD_MODULES_TO. Two records, because neither alone
 * sees everything: a `load` hook (module.register, on the loader's own thread) sees each ES module
 * and each CommonJS module that an ES module imports (the AWS SDK's entry points), and at exit
 * require's cache lists every CommonJS module, those that CommonJS modules required included.
 * A plain .mjs file: it runs before tsx is registered.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { isMainThread } from 'node:worker_threads';

let out;

if (isMainThread) {
  out = process.env.RECORD_MODULES_TO;
  if (!out) throw new Error('record-modules.mjs: set RECORD_MODULES_TO to the file to write');
  register(import.meta.url, { data: out });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    appendFileSync(
      out,
      Object.keys(cache)
        .map((file) => `${pathToFileURL(file).href}\n`)
        .join(''),
    );
  });
}

/** On the loader's thread: where to write. */
export function initialize(data) {
  out = data;
}

export async function load(url, context, nextLoad) {
  appendFileSync(out, `${url}\n`);
  return nextLoad(url, context);
}
