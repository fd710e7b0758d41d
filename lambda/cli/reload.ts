import { spawn } from 'node:child_process';
import { readFile, unlink } from 'node:fs/promises';
import { writeFileAtomic } from '../adapters/filesystem.js';
import { errorMessage } from '../core/errors.js';

/** Staples changed since the reload command last succeeded: a failed reload is retried. */
interface PendingReload {
  /** Staple keys, relative to the staples location. */
  staples: string[];
  since: string;
  lastError?: string;
}

/**
 * The pending-reload record, a small JSON file kept with the CLI's state. Unreadable or absent
 * means nothing is pending.
 */
export class PendingReloadFile {
  constructor(readonly file: string) {}

  async load(): Promise<PendingReload | undefined> {
    try {
      const doc = JSON.parse(await readFile(this.file, 'utf8')) as PendingReload;
      return Array.isArray(doc.staples) ? doc : undefined;
    } catch {
      return undefined;
    }
  }

  async save(pending: PendingReload): Promise<void> {
    await writeFileAtomic(this.file, Buffer.from(`${JSON.stringify(pending)}\n`));
  }

  async clear(): Promise<void> {
    await unlink(this.file).catch(() => undefined);
  }
}

interface ReloadResult {
  ok: boolean;
  /** Why it failed: exit code, signal or timeout. */
  reason?: string;
}

/**
 * Runs `command` with `sh -c` in its own process group, stdout and stderr going to our stderr
 * (so `--json` output stays clean). On timeout the whole group gets SIGTERM, then SIGKILL 5 s
 * later. `env` is added to ours (OCSP_CHANGED, OCSP_INSTALLED, OCSP_DEST).
 */
export function runReload(
  command: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<ReloadResult> {
  return new Promise((resolve) => {
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 2, 2],
      detached: true,
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), 5_000);
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: errorMessage(err) });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      if (timedOut) resolve({ ok: false, reason: `timed out after ${timeoutMs / 1000} s` });
      else if (code === 0) resolve({ ok: true });
      else resolve({ ok: false, reason: signal ? `killed by ${signal}` : `exit code ${code}` });
    });
  });
}
