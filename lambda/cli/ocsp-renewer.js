#!/usr/bin/env node
// Development launcher: runs the TypeScript sources through tsx (a devDependency), so a fresh
// clone needs no build. The published command is the compiled dist/cli/bin.js.
import { register } from 'tsx/esm/api';

register();
await import('./bin.ts');
