import path from 'node:path';
import { FsStapleStore } from '../adapters/filesystem.js';
import { responderPolicyOf, type HttpOptions } from '../adapters/http.js';
import { fileStateBlob, StateStore } from '../adapters/state-store.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { errorMessage, fileErrorMessage } from '../core/errors.js';
import { plural } from '../core/plural.js';
import { printable } from '../core/printable.js';
import { cachedDownload } from '../renew/cached-download.js';
import type { RunReport, RunState } from '../renew/ports.js';
import type { RunDeps, RunOptions } from '../renew/run-inputs.js';
import { run } from '../renew/run.js';
import type { RunSettings } from '../renew/settings.js';
import { formatRunReport } from '../report/explain.js';
import { jsonPieces } from '../report/json-pieces.js';
import { loadIssuerDir } from './cert-files.js';
import { EXIT, stateWarning, version, type CliIo } from './command-io.js';
import { runDaemon } from './daemon.js';
import { excluding } from './exclude.js';
import { str, strs, type FlagValues } from './flags.js';
import { certificateSourceFor, defaultStateFile, locationOf, stapleStoreFor } from './locations.js';
import { terminalProgress } from './progress.js';
import { PendingReloadFile, runReload } from './reload.js';

// One renewal under the staples location's lock: one run, or the daemon (--persist).

/** What `renew` was asked to do, its flags read and checked. */
export interface RenewJob {
  values: FlagValues;
  certsAt: string;
  staplesAt: string;
  settings: RunSettings;
  http: HttpOptions;
  watchIntervalMs: number;
  reloadTimeoutMs: number;
}
/** Rows worth a line under --quiet: something changed or failed. */
const NEWS = new Set(['renewed', 'failed', 'withheld', 'due']);

/** Rows backing off after failures say how not to wait: `--force` retries at once. */
function withRetryHint(report: RunReport): RunReport {
  if (!report.results.some((r) => r.action === 'failed' && r.reason.includes('backing off after')))
    return report;
  return {
    ...report,
    results: report.results.map((r) =>
      r.action === 'failed' && r.reason.includes('backing off after')
        ? { ...r, reason: `${r.reason}; --force retries now` }
        : r,
    ),
  };
}

/**
 * The report cut to its news (--quiet), or undefined when there is none. A published revoked
 * staple is news on every run, not only the one that fetched it: it is an emergency, and cron
 * must keep mailing it until someone replaces the certificate.
 */
function newsOf(report: RunReport): RunReport | undefined {
  const results = report.results.filter((r) => NEWS.has(r.action) || r.certStatus === 'revoked');
  if (results.length === 0) return undefined;
  const counts = { ...report.counts };
  for (const action of Object.keys(counts) as Array<keyof typeof counts>) {
    counts[action] = results.filter((r) => r.action === action).length;
  }
  return {
    ...report,
    counts,
    results,
    revoked: results.filter((r) => r.certStatus === 'revoked').length,
  };
}

/** What one `renew` works with once it holds the lock: its flags, state, ports and options. */
interface Renewal {
  job: RenewJob;
  io: CliIo;
  persist: boolean;
  dryRun: boolean;
  quiet: boolean;
  reloadCommand: string | undefined;
  stateFile: string;
  stateStore: StateStore | undefined;
  pendingReload: PendingReloadFile;
  deps: RunDeps & { state: RunState };
  options: RunOptions;
}

/** One run, or the daemon, while holding the staples location's lock. */
export async function renewUnderLock(job: RenewJob, io: CliIo): Promise<number> {
  const r = await prepare(job, io);
  await sweep(r);
  return r.persist ? renewPersistently(r) : renewOnce(r);
}

/** The state, the ports and the run options of one `renew`. */
async function prepare(job: RenewJob, io: CliIo): Promise<Renewal> {
  const { values, certsAt, staplesAt, settings, http } = job;
  const dryRun = values['dry-run'] === true;
  const issuerPool = typeof values.issuers === 'string' ? await loadIssuerDir(values.issuers) : undefined;

  // Backoff, max-age and outcomes survive one-shot (cron) runs in a state file; --state none: off.
  const stateFile = str(values.state) ?? defaultStateFile(staplesAt);
  const stateStore =
    stateFile === 'none' ? undefined : new StateStore(fileStateBlob(stateFile), stateWarning(io));
  const pendingReload = new PendingReloadFile(
    `${stateFile === 'none' ? defaultStateFile(staplesAt) : stateFile}.reload-pending`,
  );
  const state: RunState = (await stateStore?.load()) ?? new Map();
  const deps = {
    source: excluding(await certificateSourceFor(certsAt, settings.naming), strs(values.exclude)),
    store: await stapleStoreFor(staplesAt),
    transport: httpTransport(http),
    downloadIssuer: cachedDownload(httpIssuerDownload(http)),
    issuerPool,
    clock: () => new Date(),
    state,
    // The state is the CLI's own file, outside the staples: a certificate and a staple whose tags
    // (inode, size, mtime in ns; an ETag) are unchanged and not due are not read again.
    trustState: true,
  };
  const options: RunOptions = {
    force: values.force === true,
    dryRun,
    onRevoked: settings.onRevoked,
    hash: settings.hash,
    nonce: values.nonce === true,
    policy: settings.policy,
    naming: settings.naming,
    concurrency: settings.concurrency,
    perHostConcurrency: settings.perHostConcurrency,
    responderPolicy: responderPolicyOf(http),
  };
  return {
    job,
    io,
    persist: values.persist === true,
    dryRun,
    quiet: values.quiet === true,
    reloadCommand: str(values.reload),
    stateFile,
    stateStore,
    pendingReload,
    deps,
    options,
  };
}

/** The state is a cache: failing to save it is reported, never fatal. */
async function saveState(r: Renewal): Promise<void> {
  if (r.stateStore && !r.dryRun) {
    await r.stateStore.save(r.deps.state, new Date()).catch((err: unknown) => {
      r.io.err(`ocsp-renewer: cannot save state ${r.stateFile}: ${errorMessage(err)}`);
    });
  }
}

/** A run that found no certificate at all, unless --allow-empty says that is expected. */
function emptyRun(r: Renewal, report: RunReport): boolean {
  return (
    r.job.values['allow-empty'] !== true && report.results.length === 0 && report.notReached.length === 0
  );
}

function nothingFound(r: Renewal): string {
  return (
    `no certificates in ${r.job.certsAt} (${r.job.settings.naming.certExtensions.join(', ')} files): a mistyped ` +
    'location? Nothing was written. --allow-empty accepts an empty one.'
  );
}

/** A run killed mid-write (kill -9) leaves temp files; each run removes the stale ones first. */
async function sweep(r: Renewal): Promise<void> {
  const { store } = r.deps;
  if (r.dryRun || !(store instanceof FsStapleStore)) return;
  await store.removeStaleTempFiles(new Date()).then(
    (removed) =>
      removed.forEach((file) => r.io.err(`ocsp-renewer: removed stale temp file ${printable(file)}`)),
    (err: unknown) =>
      r.io.err(
        `ocsp-renewer: cannot remove stale temp files under ${r.job.staplesAt}: ${fileErrorMessage(err)}`,
      ),
  );
}

function printReport(r: Renewal, report: RunReport): void {
  const { values } = r.job;
  const shown = r.quiet ? newsOf(withRetryHint(report)) : withRetryHint(report);
  if (!shown) return;
  // --json: in pieces of a few rows each ending a line (see jsonPieces); the daemon's
  // one line per run stays one string.
  if (values.json && r.persist) r.io.out(JSON.stringify(shown));
  else if (values.json) for (const piece of jsonPieces(shown, 2)) r.io.out(piece);
  else r.io.out(formatRunReport(shown));
}

/**
 * After a run: if any staple changed (now or in a run whose reload failed), run --reload once.
 * A failure keeps the list for the next run. Returns whether the reload (if any) succeeded.
 */
async function reloadAfter(r: Renewal, report: RunReport, log: (line: string) => void): Promise<boolean> {
  const { reloadCommand, pendingReload } = r;
  const { staplesAt, reloadTimeoutMs } = r.job;
  if (!reloadCommand || r.dryRun) return true;
  const renewed = report.results.filter((row) => row.action === 'renewed').map((row) => row.staple);
  const pending = await pendingReload.load();
  const staples = [...new Set([...(pending?.staples ?? []), ...renewed])].sort();
  if (staples.length === 0) return true;
  if (pending) {
    log(printable(`reload pending since ${pending.since} (${pending.lastError ?? 'failed'}): retrying`));
  }
  const result = await runReload(
    reloadCommand,
    {
      OCSP_CHANGED: staples.map((s) => locationOf(staplesAt, s)).join('\n'),
      // One name a line, as the pull script sets it: no staple key holds a newline (run() refuses them).
      OCSP_INSTALLED: staples.join('\n'),
      OCSP_DEST: staplesAt.includes('://') ? staplesAt : path.resolve(staplesAt),
    },
    reloadTimeoutMs,
  );
  if (result.ok) {
    await pendingReload.clear();
    if (!r.quiet) log(`reloaded: ${reloadCommand} (${plural(staples.length, 'staple')} changed)`);
    return true;
  }
  log(`reload command failed (${result.reason}): ${reloadCommand}; will retry on the next run`);
  await pendingReload
    .save({ staples, since: pending?.since ?? new Date().toISOString(), lastError: result.reason })
    .catch((err: unknown) =>
      log(`cannot record the pending reload in ${pendingReload.file}: ${errorMessage(err)}`),
    );
  return false;
}

/** --persist: the daemon, until a signal, its npm launcher going, or no certificates at start. */
async function renewPersistently(r: Renewal): Promise<number> {
  const { certsAt, staplesAt, watchIntervalMs } = r.job;
  const log = (line: string) => r.io.err(`${new Date().toISOString()} ${line}`);
  log(
    `ocsp-renewer ${version()} pid ${process.pid}: renewing ${certsAt} into ${staplesAt}${r.reloadCommand ? `, reload: ${r.reloadCommand}` : ''}`,
  );
  const stop = new AbortController();
  const watch = followParentUnderNpm(() => {
    log('the npm/npx process that started us is gone: stopping');
    stop.abort();
  });
  let emptyAtStart = false;
  let first = true;
  await runDaemon(r.deps, r.options, {
    watchIntervalMs,
    signal: stop.signal,
    onReport: async (report) => {
      const wasFirst = first;
      first = false;
      if (emptyRun(r, report)) {
        // At start, a mistyped location: stop (exit 1). Later, the certificates went away: the
        // state is kept as it is until they are back.
        log(nothingFound(r));
        if (wasFirst) {
          emptyAtStart = true;
          stop.abort();
        }
        return;
      }
      printReport(r, report);
      await saveState(r);
      await reloadAfter(r, report, log);
      await sweep(r); // for the next run
    },
    log: (line) => {
      if (!(r.quiet && line.startsWith('next check'))) log(line);
    },
  }).finally(() => clearInterval(watch));
  // The last line says it is over, so a log read later does not end mid-story.
  log(`ocsp-renewer pid ${process.pid}: stopped${emptyAtStart ? ' (exit 1: no certificates)' : ''}`);
  return emptyAtStart ? EXIT.failed : EXIT.ok;
}

/** One run: report, save the state, reload; the exit code says how it went. */
async function renewOnce(r: Renewal): Promise<number> {
  // A progress line on a terminal only: never in cron, pipes or --json.
  const progress = r.job.values.json ? undefined : terminalProgress(process.stderr);
  const report = await run(r.deps, { ...r.options, onResult: progress?.onResult });
  progress?.finish();
  if (emptyRun(r, report)) {
    r.io.err(`ocsp-renewer: ${nothingFound(r)}`);
    return EXIT.failed;
  }
  await saveState(r);
  printReport(r, report);
  const reloaded = await reloadAfter(r, report, (line) => r.io.err(`ocsp-renewer: ${line}`));
  if (!reloaded) return EXIT.reloadFailed;
  return report.counts.failed > 0 ? EXIT.failed : EXIT.ok;
}

/**
 * Under `npx`/`npm exec` the daemon runs below npm and a `sh -c`: a SIGTERM to npm reaches the
 * shell, which dies without passing it on, and the daemon would run on as an orphan. So when npm
 * started us (npm_command is set), a changed parent pid means our launcher is gone: call
 * `onGone`. Run directly (systemd, a shell), this watches nothing.
 */
function followParentUnderNpm(onGone: () => void): NodeJS.Timeout | undefined {
  if (!process.env.npm_command) return undefined;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onGone();
    }
  }, 500);
  timer.unref();
  return timer;
}
