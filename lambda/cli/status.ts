import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import { readBoundedFile, readBoundedFileIfAny } from '../adapters/bounded-file.js';
import { filesUnder, resolveInside, writeFileAtomic } from '../adapters/filesystem.js';
import { fileStateBlob, StateStore, type StateBlob } from '../adapters/state-store.js';
import { parseCertificates, type Certificate } from '../core/certificate.js';
import { errorMessage } from '../core/errors.js';
import {
  buildStatus,
  DEFAULT_WARN_HOURS,
  formatStatus,
  readStaple,
  type StateEntryView,
  type StatusEntry,
} from '../core/status.js';
import { renderStatusPage } from '../report/status-page.js';
import {
  isCertificateKey,
  namingFrom,
  refusedKeys,
  stapleKeyFor,
  type NamingOptions,
  type RunState,
} from '../renew/ports.js';
import { SETTINGS } from '../renew/settings.js';
import { stateWarning, type CliIo } from './command-io.js';
import { settingFlag, str, UsageError, type Command, type FlagValues } from './flags.js';
import { defaultStateFile, isUrl } from './locations.js';

/** `status` exit codes, for monitoring checks (Nagios/Icinga: OK, WARNING/CRITICAL, usage). */
const STATUS_EXIT = { healthy: 0, attention: 1, usage: 2 } as const;

/**
 * The JSON formats' reference as installed: docs/ sits two levels above this file in the package
 * (dist/cli/) and in a clone (lambda/cli/), and the package ships it.
 */
const JSON_FORMATS_DOC = fileURLToPath(new URL('../../docs/json-formats.md', import.meta.url));

/**
 * `ocsp-renewer status`: reads the staples (and, in a directory, the certificates beside them) and
 * the renewer's state, then prints the status built by core/status.ts.
 */
export function statusCommand(io: CliIo): Command {
  return {
    name: 'status',
    synopsis: '<staples dir | s3://bucket/prefix> [options]',
    summary: 'one row per certificate, most urgent first; exit codes for monitoring checks',
    description: `One row per certificate, most urgent first, and a summary. Exit 0 healthy, 1 something
failing, revoked or lapsing within --warn-hours (or nothing found), 2 usage.
The JSON, field by field: ${JSON_FORMATS_DOC}`,
    positionals: 1,
    flags: [
      {
        name: 'state',
        type: 'string',
        arg: 'file|s3://bucket/key|dynamodb:table|none',
        help: "the renewer's state (default: renew's default state file for this location); dynamodb:<table> reads a deployed stack's state table (stack output StateTableName)",
      },
      {
        name: 'warn-hours',
        type: 'string',
        arg: 'n',
        help: `lapsing = less validity left than this (default ${DEFAULT_WARN_HOURS}, or a quarter of the staple's window when that is shorter)`,
      },
      { name: 'json', type: 'boolean', help: 'print the status as JSON (its fields: see above)' },
      { name: 'html', type: 'string', arg: 'file', help: 'also write a self-contained HTML status page' },
      { name: 'at', type: 'string', arg: 'ISO-8601', help: 'judge at this instant instead of now' },
      settingFlag(SETTINGS.certExtensions),
      settingFlag(SETTINGS.stapleExtension),
    ],
    run: (values, [location]) => status(location!, values, io),
  };
}

async function status(location: string, values: FlagValues, io: CliIo): Promise<number> {
  const warnHours = values['warn-hours'] === undefined ? undefined : Number(values['warn-hours']);
  if (warnHours !== undefined && (!(warnHours >= 0) || !Number.isFinite(warnHours)))
    throw new UsageError('--warn-hours must be a number of hours ≥ 0');
  const at = str(values.at);
  const now = at === undefined ? new Date() : new Date(at);
  if (Number.isNaN(now.getTime())) throw new UsageError(`--at: not an ISO-8601 instant: ${at}`);
  const naming = namingFrom(str(values['cert-extensions']), str(values.extension));

  const entries = location.startsWith('s3://')
    ? await s3Entries(location, str(values.state), naming, io)
    : isUrl(location)
      ? (() => {
          throw new UsageError(`status reads a directory or s3://bucket/prefix, not ${location}`);
        })()
      : await dirEntries(location, str(values.state) ?? defaultStateFile(location), naming, io, now);

  const report = buildStatus(entries, now, warnHours);
  if (typeof values.html === 'string') {
    await writeFileAtomic(path.resolve(values.html), Buffer.from(renderStatusPage(report))).catch(
      (err: unknown) => {
        throw new Error(`status: cannot write ${values.html}: ${errorMessage(err)}`);
      },
    );
  }
  io.out(
    values.json
      ? JSON.stringify(report, null, 2)
      : report.rows.length
        ? formatStatus(report)
        : `no certificates or staples found at ${location}`,
  );
  // Nothing found is not healthy: a check pointed at the wrong place must not stay green.
  return report.summary.attention > 0 || report.rows.length === 0
    ? STATUS_EXIT.attention
    : STATUS_EXIT.healthy;
}

async function loadState(blob: StateBlob | undefined, io: CliIo): Promise<RunState> {
  if (!blob) return new Map();
  return new StateStore(blob, stateWarning(io)).load();
}

/** A DynamoDB table's name (3–255 of `[A-Za-z0-9_.-]`) or its ARN, as the SDK takes either. */
const TABLE =
  /^(?:[A-Za-z0-9_.-]{3,255}|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255})$/;

/**
 * `--state`: `dynamodb:<table>` (a deployed stack's state table, read with a Scan), else a state
 * blob (file, `s3://bucket/key`) or `none`. The AWS SDK is loaded for the remote ones only.
 */
async function stateFor(where: string, io: CliIo): Promise<RunState> {
  if (!where.startsWith('dynamodb:')) return loadState(await stateBlobFor(where), io);
  const table = where.slice('dynamodb:'.length);
  if (!TABLE.test(table))
    throw new UsageError(`--state: expected dynamodb:<table name or ARN>, got ${where}`);
  const { readStateTable } = await import('../adapters/dynamo-state.js');
  try {
    return await readStateTable(table);
  } catch (err) {
    throw new Error(`status: cannot read the state table ${table}: ${errorMessage(err)}`);
  }
}

/** `--state`: a file, `s3://bucket/key` (the AWS SDK loaded for that one only) or `none`. */
async function stateBlobFor(where: string): Promise<StateBlob | undefined> {
  if (where === 'none') return undefined;
  if (where.startsWith('s3://')) {
    const { makeS3Client, parseS3Object, s3StateBlob } = await import('../adapters/s3.js');
    const at = parseS3Object(where);
    if (!at) throw new UsageError(`--state: expected s3://bucket/key, got ${where}`);
    return s3StateBlob(makeS3Client(), at.bucket, at.key);
  }
  return fileStateBlob(where);
}

/**
 * A directory: its certificates (parsed for must-staple, the responder and whether the renewer
 * skips them), its staples (parsed), and the state's certificates. Works without any state.
 */
async function dirEntries(
  dir: string,
  stateAt: string,
  naming: NamingOptions,
  io: CliIo,
  now: Date,
): Promise<StatusEntry[]> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`status: ${dir} is not a directory`);
  // The renewer's own walk (filesUnder): never into a symlinked directory.
  const files = (await filesUnder(dir)).filter((f) => !f.split('/').some((part) => part.startsWith('.')));
  const state = await stateFor(stateAt, io);
  const certKeys = new Set(files.filter((f) => isCertificateKey(f, naming)));
  const stapleKeys = new Set(files.filter((f) => f.endsWith(naming.stapleExtension)));
  const names = [...new Set([...certKeys, ...state.keys()])];
  // As run() refuses them: shown failing with the reason, their staple not read (two certificates
  // sharing one would both show the one staple's status).
  const refused = refusedKeys(certKeys, naming);
  const entries: StatusEntry[] = [];
  const limit = pLimit(8);
  await Promise.all(
    names.map((certificate) =>
      limit(async () => {
        const staple = stapleKeyFor(certificate, naming);
        stapleKeys.delete(staple);
        const refusal = refused.get(certificate);
        if (refusal) {
          entries.push({ certificate, staple, refused: refusal.reason });
          return;
        }
        const entry: StatusEntry = {
          certificate,
          staple,
          state: state.get(certificate) as StateEntryView | undefined,
        };
        const leaf = certKeys.has(certificate) ? readLeaf(dir, certificate) : undefined;
        if (leaf) describeLeaf(entry, leaf, now);
        entry.reading = await readStapleFile(dir, staple, leaf?.serial);
        entries.push(entry);
      }),
    ),
  );
  // Staples whose certificate is elsewhere (--staples apart from --certs) and not in the state.
  for (const staple of stapleKeys) {
    entries.push({ certificate: staple, staple, reading: await readStapleFile(dir, staple) });
  }
  return entries;
}

/** A certificate file's leaf, or undefined when it does not parse. */
function readLeaf(dir: string, certificate: string): Certificate | undefined {
  try {
    return parseCertificates(readBoundedFile(path.join(dir, certificate), 'a certificate file').data)[0];
  } catch {
    /* the renewer reports unparseable certificates; the row still shows its staple */
    return undefined;
  }
}

/** What the leaf says of its row: must-staple, the responder, or why the renewer skips it. */
function describeLeaf(entry: StatusEntry, leaf: Certificate, now: Date): void {
  entry.mustStaple = leaf.mustStaple;
  if (leaf.ocspUrls[0]) entry.responder = leaf.ocspUrls[0];
  else entry.skippedBecause = 'no OCSP URL in the certificate';
  if (leaf.notAfter.getTime() < now.getTime() && !entry.skippedBecause) {
    entry.skippedBecause = `certificate expired ${leaf.notAfter.toISOString()}`;
  }
}

/**
 * The staple `key` under `dir` as read (a regular file of at most 1 MiB), null when there is none.
 * A key from the state file is checked like the renewer's own (resolveInside): none leaves `dir`.
 */
function readStapleFile(dir: string, key: string, serial?: Buffer) {
  let read;
  try {
    read = readBoundedFileIfAny(resolveInside(dir, key), 'a staple file');
  } catch (err) {
    return { error: `cannot read: ${errorMessage(err)}` };
  }
  return read ? readStaple(read.data, serial) : null;
}

/** S3: the staples under the prefix (read and parsed) and the state object or file. */
async function s3Entries(
  location: string,
  stateOption: string | undefined,
  naming: NamingOptions,
  io: CliIo,
): Promise<StatusEntry[]> {
  // The AWS SDK is loaded here, for an s3:// location only: status over a directory never pays for it.
  const { getObject, listObjects, makeS3Client, parseS3Url } = await import('../adapters/s3.js');
  const { bucket, prefix } = parseS3Url(location);
  const s3 = makeS3Client();
  // The CLI's own state for this location when it has one. Never the old design's
  // state/state.json: the deployed stack keeps its state in its table (--state dynamodb:<table>),
  // and a state.json left behind by the old design is stale.
  const state = await stateFor(stateOption ?? defaultStateFile(location), io);
  let listed: Map<string, string>;
  try {
    listed = await listObjects(s3, bucket, prefix);
  } catch (err) {
    throw new Error(`status: cannot list ${location}: ${errorMessage(err)}`);
  }
  const staples = [...listed.keys()].filter((k) => k.endsWith(naming.stapleExtension));
  const byStaple = new Map([...state].map(([cert, s]) => [stapleKeyFor(cert, naming), [cert, s] as const]));
  const limit = pLimit(16);
  const entries = await Promise.all(
    staples.map((staple) =>
      limit(async (): Promise<StatusEntry> => {
        const known = byStaple.get(staple);
        byStaple.delete(staple);
        let reading;
        try {
          const obj = await getObject(s3, bucket, prefix + staple);
          reading = obj ? readStaple(obj.body) : null;
        } catch (err) {
          reading = { error: `cannot read s3://${bucket}/${prefix}${staple}: ${errorMessage(err)}` };
        }
        return { certificate: known?.[0] ?? staple, staple, state: known?.[1], reading };
      }),
    ),
  );
  // Certificates the state knows that have no staple: failing for the first time, or skipped.
  for (const [staple, [certificate, s]] of byStaple)
    entries.push({ certificate, staple, state: s, reading: null });
  return entries;
}
