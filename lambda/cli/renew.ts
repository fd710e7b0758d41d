import { stat } from 'node:fs/promises';
import path from 'node:path';
import { flagSource, readSettings, SETTINGS } from '../renew/settings.js';
import type { CliIo } from './command-io.js';
import { settingFlag, str, UsageError, type Command, type FlagValues } from './flags.js';
import { acquireLock } from './lock.js';
import { isLocalFile, isUrl, lockFileFor, s3CertificateObject } from './locations.js';
import { httpOptions, JSON_FLAG, QUERY_FLAGS } from './query-flags.js';
import { renewUnderLock } from './renewal.js';

export function renewCommand(io: CliIo): Command {
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
  if (!isUrl(certsAt) && !(await stat(certsAt).catch(() => undefined))) {
    throw new Error(`renew --certs ${certsAt}: no such file or directory`);
  }
  // Staples cannot go into a file: said once, before the lock, not as every write's failure.
  const staplesInfo = staplesAt.includes('://') ? undefined : await stat(staplesAt).catch(() => undefined);
  if (staplesInfo && !staplesInfo.isDirectory()) {
    throw new Error(`renew --staples ${staplesAt}: not a directory`);
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
