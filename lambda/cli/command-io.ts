import { readFileSync } from 'node:fs';
import { printable, printableLines } from '../core/printable.js';

// What every command shares: its output, its exit codes, the package's version.

/**
 * Exit codes: 0 all good, 1 failure or invalid, 2 usage, 3 valid but revoked/unknown, 4 the
 * reload command failed (retried next run), 75 another run holds the lock (as the pull script).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, notGood: 3, reloadFailed: 4, locked: 75 } as const;

/** The package's version, from the package.json two levels up (lambda/cli/ and dist/cli/ alike). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}
/** stdout and stderr, every control character but the line feed escaped (core/printable.ts). */
export const STDIO: CliIo = {
  out: (t) => process.stdout.write(printableLines(t.endsWith('\n') ? t : `${t}\n`)),
  err: (t) => process.stderr.write(printableLines(t.endsWith('\n') ? t : `${t}\n`)),
};

/**
 * How the CLI says a StateStore's warning (state unreadable, corrupt, entries dropped): one line,
 * `ocsp-renewer: <what> (<state file>): <why>`, printable whatever the state's keys hold.
 */
export function stateWarning(io: CliIo): (event: Record<string, unknown>) => void {
  return (e) =>
    io.err(`ocsp-renewer: ${printable(`${String(e.msg)} (${String(e.state)}): ${String(e.error)}`)}`);
}
