#!/usr/bin/env node
// The `ocsp-renewer` command. Compiled to dist/cli/bin.js, it is the node process itself: no
// loader, no child, so signals sent to it (systemd, kill, npx) reach the daemon's handlers.
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2));
