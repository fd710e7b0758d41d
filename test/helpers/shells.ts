/** The POSIX shells the tests run shell scripts under, and a PATH lookup. */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** `name` on PATH, or undefined. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** dash (Debian's /bin/sh), bash (Amazon Linux's) and BusyBox sh (Alpine's); .ci/run installs all three. */
export const SHELLS: Array<{ name: string; argv: string[]; available: boolean }> = [
  { name: 'dash', argv: ['dash'], available: onPath('dash') !== undefined },
  { name: 'bash', argv: ['bash'], available: onPath('bash') !== undefined },
  { name: 'busybox sh', argv: ['busybox', 'sh'], available: onPath('busybox') !== undefined },
];
