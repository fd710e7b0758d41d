/**
 * The lock of a staples location (lambda/cli/lock.ts): a crash between creating the lock file and
 * writing its pid left an empty file that every later run waited on and gave up (exit 75, "pid ()")
 * (issue 20). An empty lock older than a few seconds is taken over; a young one is waited for.
 */
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, EMPTY_LOCK_STALE_MS, LockBusyError } from '../lambda/cli/lock.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ocsp-renewer-lock-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('acquireLock', () => {
  it('takes over an empty lock file older than EMPTY_LOCK_STALE_MS at once', async () => {
    const file = path.join(dir, 'old-empty.lock');
    await writeFile(file, '');
    const old = new Date(Date.now() - EMPTY_LOCK_STALE_MS - 2_000);
    await utimes(file, old, old);
    const lock = await acquireLock(file, 0);
    expect(await readFile(file, 'utf8')).toBe(`${process.pid} ${hostname()}\n`);
    await lock.release();
  });

  it('waits for an empty lock file just created (its holder is writing its pid), saying so', async () => {
    const file = path.join(dir, 'young-empty.lock');
    await writeFile(file, '');
    const attempt = acquireLock(file, 300, 50);
    await expect(attempt).rejects.toBeInstanceOf(LockBusyError);
    await expect(attempt).rejects.toThrow(
      `another ocsp-renewer run holds the lock ${file} (an empty lock: its holder has not written its pid yet); giving up after 0.3 s`,
    );
    expect(await readFile(file, 'utf8')).toBe(''); // not taken
  });

  it('waits for a live holder, whatever the age of its lock', async () => {
    const file = path.join(dir, 'live.lock');
    await writeFile(file, `${process.pid} ${hostname()}\n`);
    const old = new Date(Date.now() - 3_600_000);
    await utimes(file, old, old);
    await expect(acquireLock(file, 200, 50)).rejects.toThrow(`(pid ${process.pid})`);
  });
});
