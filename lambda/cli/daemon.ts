import type { RunDeps, RunOptions } from '../renew/run-inputs.js';
import { run } from '../renew/run.js';
import { errorMessage } from '../core/errors.js';
import { printable } from '../core/printable.js';
import type { RunReport } from '../renew/ports.js';

interface DaemonOptions {
  /** How often to list the certificate source for new or replaced certificates. */
  watchIntervalMs: number;
  /** Longest sleep between two checks, whatever the timers say. */
  maxSleepMs?: number;
  /** Shortest sleep between two runs, even when a next-due time has already passed (default 10 s). */
  minSleepMs?: number;
  /** Awaited before the daemon sleeps (print, save state, run the reload command). */
  onReport: (report: RunReport) => void | Promise<void>;
  log: (line: string) => void;
  /** Stops the daemon (tests); SIGTERM/SIGINT do the same. */
  signal?: AbortSignal;
  /** Install the SIGUSR1/SIGHUP/SIGUSR2/SIGTERM/SIGINT handlers (default true). */
  handleSignals?: boolean;
}

const MIN_SLEEP_MS = 10_000;

/**
 * When the daemon runs next: the earliest next-due time in the report, at most `maxSleepMs` away
 * and at least `minSleepMs`, so a next-due time already past can never make it spin.
 */
export function nextWake(report: RunReport, now: number, maxSleepMs: number, minSleepMs: number): number {
  const dues = report.results
    .map((r) => (r.nextDue ? Date.parse(r.nextDue) : NaN))
    .filter((t) => Number.isFinite(t));
  const earliest = Math.min(now + maxSleepMs, ...dues);
  return Math.max(earliest, now + Math.min(minSleepMs, maxSleepMs));
}

/**
 * `renew --persist`: run, then sleep until the earliest next-due time in the report. Wakes early
 * when the certificate listing changes (a new or replaced file), on SIGUSR1/SIGHUP (check per
 * timers) and on SIGUSR2 (force all). SIGTERM/SIGINT let the current run finish (so no temp file is
 * left behind) and return.
 */
export async function runDaemon(deps: RunDeps, options: RunOptions, daemon: DaemonOptions): Promise<void> {
  const maxSleep = daemon.maxSleepMs ?? 3_600_000;
  const state: DaemonState = {
    stopping: false,
    forceNext: options.force === true,
    wake: undefined,
    listing: '',
  };
  const unlisten = listenForSignals(daemon, state);
  try {
    while (!state.stopping) {
      try {
        state.listing = await listingSnapshot(deps);
        // Take the force flag before the run: a SIGUSR2 during the run asks for another one.
        const force = state.forceNext;
        state.forceNext = false;
        const report = await run(deps, { ...options, force }).catch((err: unknown) => {
          state.forceNext ||= force;
          throw err;
        });
        await daemon.onReport(report);
        const until = nextWake(report, deps.clock().getTime(), maxSleep, daemon.minSleepMs ?? MIN_SLEEP_MS);
        daemon.log(`next check ${new Date(until).toISOString()}`);
        await sleepUntil(until, state, deps, daemon);
      } catch (err) {
        daemon.log(`run failed: ${printable(errorMessage(err))}; retrying in ${daemon.watchIntervalMs} ms`);
        await sleepUntil(deps.clock().getTime() + daemon.watchIntervalMs, state, deps, daemon);
      }
    }
  } finally {
    unlisten();
  }
}

/** What the loop, its sleep and the signal handlers share. */
interface DaemonState {
  stopping: boolean;
  forceNext: boolean;
  /** Ends the current sleep early, while one is under way. */
  wake: (() => void) | undefined;
  /** The certificate listing as last seen, to notice a change while asleep. */
  listing: string;
}

/**
 * Installs the signal handlers (unless `handleSignals` is false) and the abort listener; returns
 * what removes them.
 */
function listenForSignals(daemon: DaemonOptions, state: DaemonState): () => void {
  const wakeUp = () => state.wake?.();
  const handlers: Array<[NodeJS.Signals, () => void]> = [
    ['SIGUSR1', () => (daemon.log('SIGUSR1: checking now'), wakeUp())],
    ['SIGHUP', () => (daemon.log('SIGHUP: checking now'), wakeUp())],
    ['SIGUSR2', () => (daemon.log('SIGUSR2: forcing all'), (state.forceNext = true), wakeUp())],
    ['SIGTERM', () => (daemon.log('SIGTERM: stopping'), (state.stopping = true), wakeUp())],
    ['SIGINT', () => (daemon.log('SIGINT: stopping'), (state.stopping = true), wakeUp())],
  ];
  if (daemon.handleSignals !== false) for (const [sig, fn] of handlers) process.on(sig, fn);
  const onAbort = () => ((state.stopping = true), wakeUp());
  daemon.signal?.addEventListener('abort', onAbort);
  return () => {
    if (daemon.handleSignals !== false) for (const [sig, fn] of handlers) process.off(sig, fn);
    daemon.signal?.removeEventListener('abort', onAbort);
  };
}

/** The certificate listing as one string (keys and tags), to compare two listings. */
async function listingSnapshot(deps: RunDeps): Promise<string> {
  return (await deps.source.list())
    .map((o) => `${o.key}\0${o.tag ?? ''}`)
    .sort()
    .join('\n');
}

/** Sleeps until `until`, a signal, or a change in the certificate listing. */
async function sleepUntil(
  until: number,
  state: DaemonState,
  deps: RunDeps,
  daemon: DaemonOptions,
): Promise<void> {
  while (!state.stopping && !state.forceNext) {
    const left = until - deps.clock().getTime();
    if (left <= 0) return;
    const woken = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.min(left, daemon.watchIntervalMs));
      state.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    state.wake = undefined;
    if (woken || state.stopping) return;
    const current = await listingSnapshot(deps).catch(() => state.listing);
    if (current !== state.listing) {
      daemon.log('certificate listing changed: checking now');
      return;
    }
  }
}
