#!/usr/bin/env node
// The `ocsp-renewer` command. Compiled to dist/cli/bin.js, it is the node process itself: no
// loader, no child, so signals sent to it (systemd, kill, npx) reach the daemon's handlers. Node
// flags go in NODE_OPTIONS (host/examples/ocsp-renewer.service shows one).
import { main } from './cli.js';

// A reader that goes away (`… | head`) is not a failure of the run: like other Unix tools, stop
// writing to that stream and finish the work (the staples and the state are written either way)
// rather than die with a stack trace on EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
