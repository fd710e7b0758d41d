#!/bin/sh
//usr/bin/env true; NODE_OPTIONS="--max-semi-space-size=16 ${NODE_OPTIONS-}" exec node "$0" "$@"
// The `ocsp-renewer` command. Compiled to dist/cli/bin.js, it is the node process itself: no
// loader, no child, so signals sent to it (systemd, kill, npx) reach the daemon's handlers.
//
// The two lines above are read by sh, not by node: the file is a shell script whose second line
// execs node on this same file (`exec`: the same process, as with `#!/usr/bin/env node`), and to
// JavaScript that line is a comment. `//usr/bin/env true` is a path to sh (Linux and macOS read a
// leading `//` as `/`). It puts `--max-semi-space-size=16` in front of the caller's NODE_OPTIONS:
// V8 otherwise sizes the young generation from the machine's memory (64 MB semi-spaces on a 24 GB
// host), and a long forced run's peak RSS follows that cap, not the work; 16 MB keeps a forced run
// over 10 000 certificates under 200 MB at the same rate (README, Performance). A caller's own
// --max-semi-space-size in NODE_OPTIONS comes later and wins. `node dist/cli/bin.js` skips all this.
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
