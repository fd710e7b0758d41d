import { constants } from 'node:fs';
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorMessage } from '../core/errors.js';

/** Another live process holds the lock (exit 75, EX_TEMPFAIL, like the pull script). */
export class LockBusyError extends Error {
  override readonly name = 'LockBusyError';
  readonly code = 'LOCK_BUSY';
}

interface Lock {
  readonly file: string;
  release(): Promise<void>;
}

/**
 * How old an empty lock file must be to be taken over: its creator writes its pid microseconds
 * after creating it, so one still empty after this long was left by a crash in between.
 */
export const EMPTY_LOCK_STALE_MS = 5_000;

/**
 * Takes `file` as an exclusive lock (O_EXCL create, holding `pid host`), waiting up to `waitMs`
 * for another holder to let go. A lock whose holder is gone (its pid is not alive on this host) is
 * stale and taken over, and so is an empty one older than EMPTY_LOCK_STALE_MS (a crash between
 * the create and the write). The caller releases it; a crash leaves a stale lock the next run takes.
 */
export async function acquireLock(file: string, waitMs: number, pollMs = 100): Promise<Lock> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw lockError(file, `cannot create its directory ${path.dirname(file)}`, err);
  });
  const deadline = Date.now() + waitMs;
  const me = `${process.pid} ${os.hostname()}\n`;
  for (;;) {
    try {
      const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(me);
      } finally {
        await handle.close();
      }
      return {
        file,
        release: async () => {
          // Only our own lock: never one a later process took over after we were thought dead.
          if ((await readFile(file, 'utf8').catch(() => '')) === me) await unlink(file).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(file, 'cannot create it', err);
    }
    const held = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // released between our open and our read
      // A directory (or anything unreadable) where the lock goes: waiting would never end.
      throw lockError(file, 'cannot read it', err);
    });
    if (held === undefined) continue;
    const [pid, host] = held.trim().split(' ');
    if (held === '' && (await emptyAndOlderThan(file, EMPTY_LOCK_STALE_MS))) {
      await unlink(file).catch(() => {});
      continue;
    }
    if (held !== '' && host === os.hostname() && !alive(Number(pid))) {
      // Stale: remove it only if it is still the same stale content, then race for it again.
      if ((await readFile(file, 'utf8').catch(() => undefined)) === held) await unlink(file).catch(() => {});
      continue;
    }
    if (Date.now() >= deadline) {
      const holder =
        held === ''
          ? 'an empty lock: its holder has not written its pid yet'
          : `pid ${pid}${host && host !== os.hostname() ? ` on ${host}` : ''}`;
      throw new LockBusyError(
        `another ocsp-renewer run holds the lock ${file} (${holder}); giving up after ${waitMs / 1000} s`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The lock could not be taken for a reason other than another run: said with its path and a way out. */
function lockError(file: string, doing: string, err: unknown): Error {
  return new Error(
    `cannot take the lock ${file}: ${doing}: ${errorMessage(err)} (the lock lives under ` +
      '$XDG_STATE_HOME/ocsp-renewer, default ~/.local/state/ocsp-renewer)',
    { cause: err },
  );
}

/** Whether `file` is still empty and was last written more than `ms` ago. */
async function emptyAndOlderThan(file: string, ms: number): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  return info !== undefined && info.size === 0 && Date.now() - info.mtimeMs > ms;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
