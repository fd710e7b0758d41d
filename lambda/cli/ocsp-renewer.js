#!/usr/bin/env node
// The `ocsp-renewer` command: runs the TypeScript CLI through tsx, so a fresh clone needs no build.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
