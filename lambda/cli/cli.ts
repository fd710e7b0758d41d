import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readBoundedFile } from '../adapters/bounded-file.js';
import {
  filesUnder,
  FsCertificateSource,
  FsStapleStore,
  readIssuerSiblingFile,
  writeFileAtomic,
} from '../adapters/filesystem.js';
import { fileStateBlob, StateStore } from '../adapters/state-store.js';
import { DEFAULT_HTTP, responderPolicyOf, type HttpOptions } from '../adapters/http.js';
import { privateRespondersAllowed } from '../adapters/ssrf-guard.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { parseCertificates, type Certificate } from '../core/certificate.js';
import { errorMessage } from '../core/errors.js';
import { explainStaple, formatExplanation, formatRunReport } from '../report/explain.js';
import { jsonPieces } from '../report/json-pieces.js';
import { printableLines } from '../core/printable.js';
import { judgeStaple } from '../core/validate.js';
import { resolveIssuer } from '../renew/issuer.js';
import { MAX_OCSP_URLS, queryResponders } from '../renew/ocsp-query.js';
import type { CertificateSource, NamingOptions, StapleStore, RunReport } from '../renew/ports.js';
import { cachedDownload } from '../renew/cached-download.js';
import { run, type RunDeps, type RunOptions } from '../renew/run.js';
import {
  flagSource,
  readSetting,
  readSettings,
  SettingError,
  SETTINGS,
  type RunSettings,
  type SettingSpec,
} from '../renew/settings.js';
import { runDaemon } from './daemon.js';
import {
  commandHelp,
  parseCommand,
  settingFlag,
  str,
  strs,
  UsageError,
  type Command,
  type Flag,
  type FlagValues,
} from './flags.js';
import { excluding } from './exclude.js';
import { acquireLock, LockBusyError } from './lock.js';
import { PendingReloadFile, runReload } from './reload.js';
import { terminalProgress } from './progress.js';
import { statusCommand } from './status.js';
import { plural } from '../core/plural.js';

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

/** $XDG_STATE_HOME/ocsp-renewer (default ~/.local/state/ocsp-renewer): the CLI's state and locks. */
function stateDir(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state'), 'ocsp-renewer');
}

/** A short id of a staples location (a directory made absolute, or a URL). */
function locationId(staplesAt: string): string {
  const where = staplesAt.includes('://') ? staplesAt : path.resolve(staplesAt);
  return createHash('sha256').update(where).digest('hex').slice(0, 16);
}

/**
 * Where the CLI keeps its run state unless --state says otherwise: one file per staples location
 * under $XDG_STATE_HOME (default ~/.local/state), never among the staples a server reads.
 */
export function defaultStateFile(staplesAt: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), `state-${locationId(staplesAt)}.json`);
}

/** The lock of one staples location, beside the state files (never inside the staples directory). */
export function lockFileFor(staplesAt: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), `lock-${locationId(staplesAt)}`);
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}
/** stdout and stderr, every control character but the line feed escaped (core/printable.ts). */
const STDIO: CliIo = {
  out: (t) => process.stdout.write(printableLines(t.endsWith('\n') ? t : `${t}\n`)),
  err: (t) => process.stderr.write(printableLines(t.endsWith('\n') ? t : `${t}\n`)),
};

// --- flags --------------------------------------------------------------------------------------------

const JSON_FLAG: Flag = { name: 'json', type: 'boolean', help: 'print JSON' };
/** The flags of every command that asks a responder. */
const QUERY_FLAGS: Flag[] = [
  {
    name: 'allow-private-responders',
    type: 'boolean',
    help: 'allow responder/caIssuers URLs on loopback or link-local addresses (also OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS=1)',
  },
  settingFlag(SETTINGS.hash),
  { name: 'nonce', type: 'boolean', help: 'send a nonce (off by default; most CAs ignore it)' },
  settingFlag(SETTINGS.timeoutSeconds),
];

function setting<N extends keyof typeof SETTINGS>(name: N, values: FlagValues) {
  const spec = SETTINGS[name] as SettingSpec<unknown>;
  const raw = values[spec.flag];
  return readSetting(name, typeof raw === 'string' ? raw : undefined, flagSource(spec));
}

function httpOptions(values: FlagValues): HttpOptions {
  return {
    ...DEFAULT_HTTP,
    timeoutMs: setting('timeoutSeconds', values) * 1000,
    allowPrivate: privateRespondersAllowed(values['allow-private-responders'] === true),
    maxSocketsPerHost: setting('perHostConcurrency', values),
  };
}

/** A number of seconds: positive, or with `zeroOk` also 0 (`--lock-wait 0`: do not wait). */
function seconds(value: FlagValues[string], name: string, fallback: number, zeroOk = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (
    typeof value !== 'string' ||
    value.trim() === '' ||
    !Number.isFinite(n) ||
    n < 0 ||
    (n === 0 && !zeroOk)
  ) {
    throw new UsageError(
      `--${name} must be a ${zeroOk ? 'non-negative' : 'positive'} number of seconds, got "${String(value)}"`,
    );
  }
  return n;
}

function positiveInt(value: FlagValues[string], name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer`);
  return n;
}

// --- commands -----------------------------------------------------------------------------------------

function renewCommand(io: CliIo): Command {
  return {
    name: 'renew',
    synopsis:
      '--certs <dir|file|s3://bucket/prefix|secretsmanager://prefix> [--staples <dir|s3://bucket/prefix>] [options]',
    summary: 'renew the staple of every certificate that is due (once, or --persist)',
    description: `For every certificate under --certs (.pem .crt .cert; <name>.issuer.pem files are
issuers, not certificates), renew the staple <name>.ocsp under --staples when it is due.
Exit 0 ok, 1 a renewal failed or --certs is missing or empty, 2 usage, 4 the --reload
command failed (retried next run), 75 another run on the same staples holds the lock.
--persist signals: SIGUSR1/SIGHUP check now, SIGUSR2 force all, SIGTERM/SIGINT exit cleanly.`,
    positionals: 0,
    flags: [
      { name: 'certs', type: 'string', arg: 'dir|file|url', help: 'the certificates (required)' },
      {
        name: 'staples',
        type: 'string',
        arg: 'dir|url',
        help: "where staples go (default: the --certs directory, or a file's directory)",
      },
      {
        name: 'issuers',
        type: 'string',
        arg: 'dir',
        help: 'directory of issuer certificates (matched by key id, then name)',
      },
      {
        name: 'exclude',
        type: 'string',
        arg: 'glob',
        multiple: true,
        help: 'leave out certificates matching this (a name, or a path with /; repeatable)',
      },
      { name: 'force', type: 'boolean', help: 'renew every staple now, whatever the policy says' },
      { name: 'dry-run', type: 'boolean', help: 'decide and report; fetch and write nothing' },
      { ...JSON_FLAG, help: 'print the run report as JSON (--persist: one line per run)' },
      {
        name: 'quiet',
        type: 'boolean',
        help: 'print only changes, failures and revoked certificates; nothing when all is well (cron)',
      },
      settingFlag(SETTINGS.onRevoked),
      settingFlag(SETTINGS.refreshAt),
      settingFlag(SETTINGS.certExtensions),
      settingFlag(SETTINGS.stapleExtension),
      settingFlag(SETTINGS.concurrency),
      settingFlag(SETTINGS.perHostConcurrency),
      ...QUERY_FLAGS,
      {
        name: 'state',
        type: 'string',
        arg: 'file|none',
        help: 'run state (failures, backoff, max-age); default $XDG_STATE_HOME/ocsp-renewer/state-<staples location hash>.json',
      },
      {
        name: 'reload',
        type: 'string',
        arg: 'command',
        help: 'run this (sh -c) after a run that changed a staple; env OCSP_CHANGED, OCSP_INSTALLED, OCSP_DEST',
      },
      {
        name: 'reload-timeout',
        type: 'string',
        arg: 'seconds',
        help: 'kill the reload command after this long (default 60)',
      },
      {
        name: 'lock-wait',
        type: 'string',
        arg: 'seconds',
        help: 'wait this long for another run on the same staples, then exit 75 (default 5)',
      },
      {
        name: 'allow-empty',
        type: 'boolean',
        help: 'exit 0 when --certs holds no certificate (default: exit 1, a mistyped location)',
      },
      { name: 'persist', type: 'boolean', help: "stay running; renew by the policy's timers" },
      {
        name: 'watch-interval',
        type: 'string',
        arg: 'seconds',
        help: '--persist: how often to look for new certificates (default 30)',
      },
    ],
    run: (values) => renew(values, io),
  };
}

function inspectCommand(io: CliIo): Command {
  return {
    name: 'inspect',
    synopsis: '<staple.der> [--cert <pem>] [--issuer <pem>] [--at <ISO-8601>] [--json]',
    summary: 'parse, validate and explain a staple (offline)',
    description: `Parse, validate and explain a staple, offline. The signature is checked only with an
issuer (--issuer, the --cert bundle, or <name>.issuer.pem beside --cert).
Exit 0 valid and good, 3 valid but revoked or unknown, 1 invalid or unparseable, 2 usage.`,
    positionals: 1,
    flags: [
      { name: 'cert', type: 'string', arg: 'pem', help: 'the certificate (bundle) the staple is for' },
      { name: 'issuer', type: 'string', arg: 'pem', help: "the certificate's issuer" },
      { name: 'at', type: 'string', arg: 'ISO-8601', help: 'validate at this instant (default now)' },
      JSON_FLAG,
    ],
    run: (values, [file]) => inspect(file!, values, io),
  };
}

function fetchCommand(io: CliIo): Command {
  return {
    name: 'fetch',
    synopsis: '<cert.pem> [--issuer <pem>] [--out <file>] [options]',
    summary: "ask the certificate's responder once and explain the answer",
    description: `Ask the certificate's OCSP responder(s) and explain every answer; --out writes the valid
one (its directory must exist). Exit 0 good, 3 revoked or unknown, 1 no valid answer, 2 usage.`,
    positionals: 1,
    flags: [
      { name: 'issuer', type: 'string', arg: 'pem', help: "the certificate's issuer" },
      { name: 'out', type: 'string', arg: 'file', help: 'write the valid staple here' },
      JSON_FLAG,
      ...QUERY_FLAGS,
    ],
    run: (values, [file]) => fetchOnce(file!, values, io),
  };
}

/** The commands, in help order. A new command is one more entry. */
function commands(io: CliIo): Command[] {
  return [
    renewCommand(io),
    inspectCommand(io),
    fetchCommand(io),
    statusCommand(io, (at) => defaultStateFile(at)),
  ];
}

function overview(list: Command[]): string {
  const width = Math.max(...list.map((c) => c.name.length)) + 2;
  return [
    `ocsp-renewer ${version()} — keep OCSP staples fresh`,
    '',
    'Usage:',
    ...list.map((c) => `  ocsp-renewer ${c.name} ${c.synopsis}`),
    '  ocsp-renewer <command> --help     the options of one command',
    '  ocsp-renewer --version',
    '',
    'Commands:',
    ...list.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo = STDIO): Promise<number> {
  const [name, ...rest] = argv;
  const list = commands(io);
  try {
    if (name === undefined) {
      io.err(overview(list));
      return EXIT.usage;
    }
    if (name === '--version' || name === '-V') {
      io.out(version());
      return EXIT.ok;
    }
    if (name === 'help' || name === '--help' || name === '-h') {
      const about = list.find((c) => c.name === rest[0]);
      io.out(about ? commandHelp(about) : overview(list));
      return EXIT.ok;
    }
    const command = list.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command "${name}"`);
    const { values, positionals, help } = parseCommand(command, rest);
    if (help) {
      io.out(commandHelp(command));
      return EXIT.ok;
    }
    return await command.run(values, positionals);
  } catch (err) {
    if (
      err instanceof UsageError ||
      err instanceof SettingError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const helpFor = list.some((c) => c.name === name)
        ? `ocsp-renewer ${name} --help`
        : 'ocsp-renewer --help';
      io.err(`ocsp-renewer: ${errorMessage(err)}\nRun "${helpFor}" for usage.`);
      return EXIT.usage;
    }
    if (err instanceof LockBusyError) {
      io.err(`ocsp-renewer: ${errorMessage(err)}`);
      return EXIT.locked;
    }
    io.err(`ocsp-renewer: ${errorMessage(err)}`);
    return EXIT.failed;
  }
}

// --- renew --------------------------------------------------------------------------------------------

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

async function renew(values: FlagValues, io: CliIo): Promise<number> {
  const certsAt = str(values.certs);
  if (certsAt === undefined) throw new UsageError('renew needs --certs <dir>');
  const settings = readSettings((spec) => str(values[spec.flag]), flagSource);
  const persist = values.persist === true;
  const dryRun = values['dry-run'] === true;
  const reloadTimeoutMs = seconds(values['reload-timeout'], 'reload-timeout', 60) * 1000;
  const lockWaitMs = seconds(values['lock-wait'], 'lock-wait', 5, true) * 1000;
  const watchIntervalMs = positiveInt(values['watch-interval'], '--watch-interval', 30) * 1000;
  const http = httpOptions(values);

  // --certs FILE (or one s3:// object): that one certificate; its staple goes beside it unless
  // --staples says otherwise.
  const certsFile = await isLocalFile(certsAt);
  const certsObject = certsFile ? undefined : await s3CertificateObject(certsAt);
  const staplesAt =
    str(values.staples) ?? (certsFile ? path.dirname(certsAt) : (certsObject?.directory ?? certsAt));
  if (persist) {
    // A daemon would retry a missing directory forever: say so now instead.
    for (const [what, where] of [
      ['certificates', certsAt],
      ['staples directory', staplesAt],
    ] as const) {
      if (!where.includes('://') && !(await stat(where).catch(() => undefined))) {
        throw new Error(`renew --persist: the ${what} ${where} does not exist`);
      }
    }
  }
  // A mistyped location must not pass for an empty one: say so and exit 1, before any state.
  if (!/^[a-z0-9]+:\/\//i.test(certsAt) && !(await stat(certsAt).catch(() => undefined))) {
    throw new Error(`renew --certs ${certsAt}: no such file or directory`);
  }
  // Two runs on the same staples never interleave: the second waits --lock-wait, then exits 75.
  // Taken before the state is read, so the second run sees what the first one saved.
  const lock = dryRun ? undefined : await acquireLock(lockFileFor(staplesAt), lockWaitMs);
  try {
    return await renewUnderLock(
      { values, certsAt, staplesAt, settings, http, watchIntervalMs, reloadTimeoutMs },
      io,
    );
  } finally {
    await lock?.release();
  }
}

/** What `renew` was asked to do, its flags read and checked. */
interface RenewJob {
  values: FlagValues;
  certsAt: string;
  staplesAt: string;
  settings: RunSettings;
  http: HttpOptions;
  watchIntervalMs: number;
  reloadTimeoutMs: number;
}

/** One run, or the daemon, while holding the staples location's lock. */
async function renewUnderLock(job: RenewJob, io: CliIo): Promise<number> {
  const { values, certsAt, staplesAt, settings, http, watchIntervalMs, reloadTimeoutMs } = job;
  const persist = values.persist === true;
  const dryRun = values['dry-run'] === true;
  const quiet = values.quiet === true;
  const reloadCommand = str(values.reload);
  const issuerPool = typeof values.issuers === 'string' ? await loadIssuerDir(values.issuers) : undefined;

  // Backoff, max-age and outcomes survive one-shot (cron) runs in a state file; --state none: off.
  const stateFile = str(values.state) ?? defaultStateFile(staplesAt);
  const stateStore =
    stateFile === 'none'
      ? undefined
      : new StateStore(fileStateBlob(stateFile), (e) => io.err(JSON.stringify(e)));
  const pendingReload = new PendingReloadFile(
    `${stateFile === 'none' ? defaultStateFile(staplesAt) : stateFile}.reload-pending`,
  );
  const state = (await stateStore?.load()) ?? new Map();
  // The state is a cache: failing to save it is reported, never fatal.
  const saveState = async () => {
    if (stateStore && !dryRun) {
      await stateStore.save(state, new Date()).catch((err: unknown) => {
        io.err(`ocsp-renewer: cannot save state ${stateFile}: ${errorMessage(err)}`);
      });
    }
  };
  const allowEmpty = values['allow-empty'] === true;
  /** A run that found no certificate at all, unless --allow-empty says that is expected. */
  const emptyRun = (report: RunReport) =>
    !allowEmpty && report.results.length === 0 && report.notReached.length === 0;
  const nothingFound = () =>
    `no certificates in ${certsAt} (${settings.naming.certExtensions.join(', ')} files): a mistyped ` +
    'location? Nothing was written. --allow-empty accepts an empty one.';
  const deps: RunDeps = {
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
  // A run killed mid-write (kill -9) leaves temp files; each run removes the stale ones first.
  const sweep = async () => {
    if (dryRun || !(deps.store instanceof FsStapleStore)) return;
    await deps.store.removeStaleTempFiles(new Date()).then(
      (removed) => removed.forEach((file) => io.err(`ocsp-renewer: removed stale temp file ${file}`)),
      (err: unknown) => io.err(`ocsp-renewer: cannot remove stale temp files: ${errorMessage(err)}`),
    );
  };
  await sweep();

  const print = (report: RunReport) => {
    const shown = quiet ? newsOf(withRetryHint(report)) : withRetryHint(report);
    if (!shown) return;
    // --json: in pieces of a few rows each ending a line (see jsonPieces); the daemon's
    // one line per run stays one string.
    if (values.json && persist) io.out(JSON.stringify(shown));
    else if (values.json) for (const piece of jsonPieces(shown, 2)) io.out(piece);
    else io.out(formatRunReport(shown));
  };

  /**
   * After a run: if any staple changed (now or in a run whose reload failed), run --reload once.
   * A failure keeps the list for the next run. Returns whether the reload (if any) succeeded.
   */
  const reloadAfter = async (report: RunReport, log: (line: string) => void): Promise<boolean> => {
    if (!reloadCommand || dryRun) return true;
    const renewed = report.results.filter((r) => r.action === 'renewed').map((r) => r.staple);
    const pending = await pendingReload.load();
    const staples = [...new Set([...(pending?.staples ?? []), ...renewed])].sort();
    if (staples.length === 0) return true;
    if (pending) log(`reload pending since ${pending.since} (${pending.lastError ?? 'failed'}): retrying`);
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
      if (!quiet) log(`reloaded: ${reloadCommand} (${plural(staples.length, 'staple')} changed)`);
      return true;
    }
    log(`reload command failed (${result.reason}): ${reloadCommand}; will retry on the next run`);
    await pendingReload
      .save({ staples, since: pending?.since ?? new Date().toISOString(), lastError: result.reason })
      .catch((err: unknown) => log(`cannot record the pending reload: ${errorMessage(err)}`));
    return false;
  };

  if (persist) {
    const log = (line: string) => io.err(`${new Date().toISOString()} ${line}`);
    log(
      `ocsp-renewer ${version()} pid ${process.pid}: renewing ${certsAt} into ${staplesAt}${reloadCommand ? `, reload: ${reloadCommand}` : ''}`,
    );
    const stop = new AbortController();
    const watch = followParentUnderNpm(() => {
      log('the npm/npx process that started us is gone: stopping');
      stop.abort();
    });
    let emptyAtStart = false;
    let first = true;
    await runDaemon(deps, options, {
      watchIntervalMs,
      signal: stop.signal,
      onReport: async (report) => {
        const wasFirst = first;
        first = false;
        if (emptyRun(report)) {
          // At start, a mistyped location: stop (exit 1). Later, the certificates went away: the
          // state is kept as it is until they are back.
          log(nothingFound());
          if (wasFirst) {
            emptyAtStart = true;
            stop.abort();
          }
          return;
        }
        print(report);
        await saveState();
        await reloadAfter(report, log);
        await sweep(); // for the next run
      },
      log: (line) => {
        if (!(quiet && line.startsWith('next check'))) log(line);
      },
    }).finally(() => clearInterval(watch));
    // The last line says it is over, so a log read later does not end mid-story.
    log(`ocsp-renewer pid ${process.pid}: stopped${emptyAtStart ? ' (exit 1: no certificates)' : ''}`);
    return emptyAtStart ? EXIT.failed : EXIT.ok;
  }
  // A progress line on a terminal only: never in cron, pipes or --json.
  const progress = values.json ? undefined : terminalProgress(process.stderr);
  const report = await run(deps, { ...options, onResult: progress?.onResult });
  progress?.finish();
  if (emptyRun(report)) {
    io.err(`ocsp-renewer: ${nothingFound()}`);
    return EXIT.failed;
  }
  await saveState();
  print(report);
  const reloaded = await reloadAfter(report, (line) => io.err(`ocsp-renewer: ${line}`));
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

/** A staple's full location: a path under a staples directory, or a URL under a prefix. */
function locationOf(staplesAt: string, key: string): string {
  return staplesAt.includes('://') ? `${staplesAt.replace(/\/*$/, '')}/${key}` : path.resolve(staplesAt, key);
}

async function isLocalFile(location: string): Promise<boolean> {
  if (/^[a-z0-9]+:\/\//i.test(location)) return false;
  return (await stat(location).catch(() => undefined))?.isFile() === true;
}

/**
 * `s3://bucket/dir/www.pem` naming one existing object (no trailing slash): its bucket, its
 * directory's prefix (`dir/`), its name and ETag, and the directory as a URL (where its staple goes
 * by default, as for --certs FILE). Undefined for anything else, a prefix included.
 */
async function s3CertificateObject(
  location: string,
): Promise<{ bucket: string; prefix: string; name: string; tag: string; directory: string } | undefined> {
  if (!location.startsWith('s3://') || location.endsWith('/')) return undefined;
  const { headObjectTag, makeS3Client, parseS3Object } = await import('../adapters/s3.js');
  const object = parseS3Object(location);
  if (!object) return undefined;
  const s3 = makeS3Client();
  try {
    const tag = await headObjectTag(s3, object.bucket, object.key);
    if (tag === undefined) return undefined;
    const cut = object.key.lastIndexOf('/') + 1;
    const prefix = object.key.slice(0, cut);
    return {
      bucket: object.bucket,
      prefix,
      name: object.key.slice(cut),
      tag,
      directory: `s3://${object.bucket}/${prefix}`,
    };
  } finally {
    s3.destroy();
  }
}

/**
 * `--certs`: a directory, a single file, `s3://bucket/prefix`, one `s3://bucket/key` object or
 * `secretsmanager://name-prefix`.
 */
export async function certificateSourceFor(
  location: string,
  naming: NamingOptions,
): Promise<CertificateSource> {
  // The AWS SDK is loaded here, for an AWS location only: a run over a directory never pays for it.
  if (location.startsWith('s3://')) {
    const { makeS3Client, parseS3Url, S3CertificateSource, S3KeyedCertificateSource } =
      await import('../adapters/s3.js');
    const object = await s3CertificateObject(location);
    if (object) {
      return new S3KeyedCertificateSource(
        makeS3Client(),
        object.bucket,
        object.prefix,
        [{ key: object.name, tag: object.tag }],
        naming,
      );
    }
    const { bucket, prefix } = parseS3Url(location);
    return new S3CertificateSource(makeS3Client(), bucket, prefix, naming);
  }
  if (location.startsWith('secretsmanager://')) {
    const [{ SecretsManagerClient }, { SecretsManagerCertificateSource }] = await Promise.all([
      import('@aws-sdk/client-secrets-manager'),
      import('../adapters/secrets-manager.js'),
    ]);
    return new SecretsManagerCertificateSource(
      new SecretsManagerClient({}),
      location.slice('secretsmanager://'.length),
    );
  }
  if (/^[a-z0-9]+:\/\//i.test(location)) throw new UsageError(`unsupported location ${location}`);
  if (await isLocalFile(location)) {
    return new FsCertificateSource(path.dirname(location), naming, path.basename(location));
  }
  return new FsCertificateSource(location, naming);
}

/** `--staples`: a directory or `s3://bucket/prefix` (the AWS SDK loaded for that one only). */
export async function stapleStoreFor(location: string): Promise<StapleStore> {
  if (location.startsWith('s3://')) {
    const { makeS3Client, parseS3Url, S3StapleStore } = await import('../adapters/s3.js');
    const { bucket, prefix } = parseS3Url(location);
    return new S3StapleStore(makeS3Client(), bucket, prefix);
  }
  if (/^[a-z0-9]+:\/\//i.test(location)) throw new UsageError(`staples cannot go to ${location}`);
  return new FsStapleStore(location);
}

/** Every certificate in an issuers directory (any depth; .pem .crt .cer .der, bundles too). */
async function loadIssuerDir(dir: string): Promise<Certificate[]> {
  if (!(await stat(dir).catch(() => undefined))?.isDirectory())
    throw new Error(`issuers directory: ${dir} is not a directory`);
  // filesUnder: regular files only, never into a symlinked directory (links to `.` would loop).
  const files = (await filesUnder(dir)).filter((f) => /\.(pem|crt|cer|der)$/i.test(f)).sort();
  const certs: Certificate[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    try {
      certs.push(...parseCertificates(await readCapped(full)));
    } catch (err) {
      throw new Error(`issuers directory: ${full}: ${errorMessage(err)}`);
    }
  }
  return certs;
}

/** Reads a certificate or staple file: a regular file of at most 1 MiB (readBoundedFile). */
function readCapped(file: string): Promise<Buffer> {
  return Promise.resolve().then(() => readBoundedFile(file, 'a certificate or staple').data);
}

/** Reads `<name>.issuer.pem` beside a certificate file, if there is one. */
function siblingReader(certFile: string): () => Promise<Buffer | undefined> {
  return () => readIssuerSiblingFile(certFile);
}

async function loadCerts(file: string, what: string): Promise<Certificate[]> {
  try {
    return parseCertificates(await readCapped(file));
  } catch (err) {
    throw new Error(`parse ${what} ${file}: ${errorMessage(err)}`);
  }
}

// --- inspect ------------------------------------------------------------------------------------------

async function inspect(file: string, values: FlagValues, io: CliIo): Promise<number> {
  const now = values.at === undefined ? new Date() : new Date(String(values.at));
  if (Number.isNaN(now.getTime())) throw new UsageError(`--at: not an ISO-8601 instant: ${values.at}`);
  const certFile = str(values.cert);
  const bundle = certFile ? await loadCerts(certFile, 'certificate') : [];
  const cert = bundle[0];
  // The issuer: --issuer, else the --cert bundle, else <name>.issuer.pem beside --cert (offline).
  const issuerFile = str(values.issuer);
  const issuer = issuerFile
    ? (await loadCerts(issuerFile, 'issuer'))[0]
    : cert && certFile
      ? await resolveIssuer(cert, bundle.slice(1), { sibling: siblingReader(certFile) }).then(
          (found) => found.issuer,
          () => undefined,
        )
      : undefined;
  let der: Buffer;
  try {
    der = await readCapped(file);
  } catch (err) {
    throw new Error(`read ${file}: ${errorMessage(err)}`);
  }
  // Judged as renew judges a staple: the same function, the same checks.
  const { parsed, verdict, parseError } = judgeStaple(der, { cert, issuer, now });
  if (!parsed) {
    // A certificate given where the staple goes: say so, and how to call it.
    const isCertificate = (() => {
      try {
        return parseCertificates(der).length > 0;
      } catch {
        return false;
      }
    })();
    const message = isCertificate
      ? `parse ${file}: this is a certificate, not an OCSP response; give a staple (and this file ` +
        `as --cert): ocsp-renewer inspect <staple> --cert ${file}`
      : `parse ${file}: not an OCSP response: ${parseError}`;
    const unparsed = explainStaple(undefined, { ...verdict, errors: [message] });
    if (values.json) io.out(JSON.stringify(unparsed, null, 2));
    else io.err(message);
    return EXIT.failed;
  }
  const explanation = explainStaple(parsed, verdict);
  // Without an issuer nothing could check the signature: say that, not "NOT valid".
  const checked = issuer !== undefined;
  if (values.json) {
    io.out(JSON.stringify({ ...explanation, signature: { ...explanation.signature, checked } }, null, 2));
  } else {
    let text = formatExplanation(explanation);
    if (!checked) {
      // Without an issuer the signature is unknown, not bad: say "not checked", never "valid: NO"
      // for that alone (other errors still show).
      const onlyNoIssuer = verdict.code === 'issuer-missing' && verdict.errors.length === 1;
      text = text
        .replace(
          /^signature: {7}NOT valid.*$/m,
          'signature:       NOT CHECKED: no issuer (pass --cert <bundle> or --issuer <pem>)',
        )
        .replace(
          /^valid: {11}NO$/m,
          `valid:           ${onlyNoIssuer ? 'signature not checked (no issuer)' : 'NO'}`,
        );
      if (onlyNoIssuer) text = text.replace(/^code: {12}issuer-missing\n?|^error: {11}.*\n?/gm, '').trimEnd();
    }
    io.out(text);
  }
  if (!verdict.valid) return EXIT.failed;
  return verdict.certStatus === 'good' ? EXIT.ok : EXIT.notGood;
}

// --- fetch --------------------------------------------------------------------------------------------

async function fetchOnce(file: string, values: FlagValues, io: CliIo): Promise<number> {
  const out = str(values.out);
  // Checked before asking anyone: a typo in --out must not cost a request, nor create directories.
  if (
    out !== undefined &&
    !(await stat(path.dirname(path.resolve(out))).catch(() => undefined))?.isDirectory()
  ) {
    throw new Error(`fetch --out ${out}: the directory ${path.dirname(path.resolve(out))} does not exist`);
  }
  const hash = setting('hash', values);
  const http = httpOptions(values);
  const bundle = await loadCerts(file, 'certificate');
  const leaf = bundle[0]!;
  if (leaf.ocspUrls.length === 0) throw new Error(`fetch ${file}: no OCSP URL in the certificate`);
  const pool = typeof values.issuer === 'string' ? await loadCerts(values.issuer, 'issuer') : undefined;
  const { issuer } = await resolveIssuer(leaf, bundle.slice(1), {
    pool,
    sibling: siblingReader(file),
    download: httpIssuerDownload(http),
  }).catch((err: unknown) => {
    throw new Error(`issuer ${file}: ${errorMessage(err)}`);
  });
  const { valid, attempts, notTried } = await queryResponders(leaf, issuer, httpTransport(http), {
    hash,
    nonce: values.nonce === true,
    now: () => new Date(),
    // Every answer that parsed is explained, valid or not: that is what `fetch` is for.
    onAttempt: ({ url, parsed, verdict }) => {
      if (!parsed) return;
      const explanation = explainStaple(parsed, verdict);
      io.out(
        values.json
          ? JSON.stringify({ url, ...explanation }, null, 2)
          : `url:             ${url}\n${formatExplanation(explanation)}`,
      );
    },
  });
  if (!valid) {
    io.err(
      [
        ...attempts.map((a) => `${a.stage} ${a.url}: ${a.verdict.errors.join('; ')}`),
        ...(notTried.length
          ? [`skipped ${notTried.length} more OCSP URL(s): at most ${MAX_OCSP_URLS} are tried`]
          : []),
      ].join('\n'),
    );
    return EXIT.failed;
  }
  if (out !== undefined) await writeFileAtomic(path.resolve(out), valid.der);
  return valid.verdict.certStatus === 'good' ? EXIT.ok : EXIT.notGood;
}
