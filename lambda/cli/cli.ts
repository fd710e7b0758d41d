import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  FsCertificateSource,
  FsStapleStore,
  readIssuerSiblingFile,
  writeFileAtomic,
} from '../adapters/filesystem.js';
import { makeS3Client, parseS3Url, S3CertificateSource, S3StapleStore } from '../adapters/s3.js';
import { SecretsManagerCertificateSource } from '../adapters/secrets-manager.js';
import { fileStateBlob, StateStore } from '../adapters/state-store.js';
import { DEFAULT_HTTP, type HttpOptions } from '../adapters/http.js';
import { privateRespondersAllowed } from '../adapters/ssrf-guard.js';
import { httpIssuerDownload, httpTransport } from '../adapters/transport.js';
import { parseCertificates, type Certificate } from '../core/certificate.js';
import type { HashName } from '../core/der.js';
import { errorMessage } from '../core/errors.js';
import { explainStaple, formatExplanation, formatRunReport } from '../core/explain.js';
import { resolveIssuer } from '../renew/issuer.js';
import { queryResponders } from '../renew/ocsp-query.js';
import { parseOcspResponse } from '../core/ocsp-response.js';
import { namingFrom, type CertificateSource, type NamingOptions, type StapleStore } from '../renew/ports.js';
import { checkPolicy, DEFAULT_POLICY } from '../core/refresh-policy.js';
import type { OnRevoked } from '../core/replace.js';
import { cachedDownload, run, type RunDeps, type RunOptions } from '../renew/run.js';
import { validateResponse } from '../core/validate.js';
import { runDaemon } from './daemon.js';

/** Exit codes: 0 all good, 1 failure or invalid, 2 usage, 3 valid but revoked/unknown. */
export const EXIT = { ok: 0, failed: 1, usage: 2, notGood: 3 } as const;

class UsageError extends Error {}

/**
 * Where the CLI keeps its run state unless --state says otherwise: one file per staples location
 * under $XDG_STATE_HOME (default ~/.local/state), never among the staples a server reads.
 */
export function defaultStateFile(staplesAt: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  const where = staplesAt.includes('://') ? staplesAt : path.resolve(staplesAt);
  const id = createHash('sha256').update(where).digest('hex').slice(0, 16);
  return path.join(base, 'ocsp-renewer', `state-${id}.json`);
}

const HELP = `ocsp-renewer — keep OCSP staples fresh

Usage:
  ocsp-renewer renew --certs <dir|s3://bucket/prefix|secretsmanager://prefix>
                     [--staples <dir|s3://bucket/prefix>] [options]
  ocsp-renewer inspect <staple.der> [--cert <pem>] [--issuer <pem>] [--at <ISO-8601>] [--json]
  ocsp-renewer fetch <cert.pem> [--issuer <pem>] [--out <file>] [--json]

renew: for every certificate under --certs (.pem .crt .cert; <name>.issuer.pem files are
issuers, not certificates), renew the staple <name>.ocsp under --staples when it is due.
  --staples <dir>              where staples go (default: the --certs directory)
  --issuers <dir>              directory of issuer certificates (matched by key id, then name)
  --force                      renew every staple now, whatever the policy says
  --dry-run                    decide and report; fetch and write nothing
  --json                       print the run report as JSON
  --on-revoked publish|withhold  what to do with a REVOKED response (default publish)
  --refresh-at <0.1-0.95>      renew after this fraction of thisUpdate→nextUpdate (default 0.5)
  --cert-extensions <list>     certificate extensions (default .pem,.crt,.cert)
  --extension <ext>            staple extension (default .ocsp)
  --persist                    stay running; renew by the policy's timers (see below)
  --state <file>|none          run state (failures, backoff, max-age); default
                               $XDG_STATE_HOME/ocsp-renewer/state-<staples location hash>.json
  --watch-interval <seconds>   --persist: how often to look for new certificates (default 30)

fetch and renew:
  --allow-private-responders   allow responder/caIssuers URLs on loopback or link-local addresses
                               (also OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS=1)
  --hash sha1|sha256           CertID hash (default sha1)
  --nonce                      send a nonce (off by default; most CAs ignore it)
  --timeout <seconds>          per-request timeout (default 10)
  --concurrency <n>            certificates in flight at once (default 8)

inspect: parse, validate and explain a staple. Exit 0 valid and good, 3 valid but revoked or
unknown, 1 invalid or unparseable, 2 usage error.

--persist signals: SIGUSR1/SIGHUP check now, SIGUSR2 force all, SIGTERM/SIGINT exit cleanly.
`;

const COMMON: ParseArgsConfig['options'] = {
  json: { type: 'boolean' },
  'allow-private-responders': { type: 'boolean' },
  hash: { type: 'string' },
  nonce: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}
const STDIO: CliIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

export async function main(argv: string[], io: CliIo = STDIO): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'renew':
        return await renewCommand(rest, io);
      case 'inspect':
        return await inspectCommand(rest, io);
      case 'fetch':
        return await fetchCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(HELP);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`ocsp-renewer: ${errorMessage(err)}\nRun "ocsp-renewer --help" for usage.`);
      return EXIT.usage;
    }
    io.err(`ocsp-renewer: ${errorMessage(err)}`);
    return EXIT.failed;
  }
}

function parse(args: string[], options: ParseArgsConfig['options'], positionals = 0) {
  const parsed = parseArgs({
    args,
    options: { ...COMMON, ...options },
    allowPositionals: positionals > 0,
    strict: true,
  });
  if (parsed.positionals.length !== positionals) {
    throw new UsageError(`expected ${positionals} argument(s), got ${parsed.positionals.length}`);
  }
  return parsed;
}

function httpOptions(values: Record<string, unknown>): HttpOptions {
  const timeout = values.timeout === undefined ? DEFAULT_HTTP.timeoutMs / 1000 : Number(values.timeout);
  if (!(timeout > 0)) throw new UsageError('--timeout must be a positive number of seconds');
  return {
    ...DEFAULT_HTTP,
    timeoutMs: timeout * 1000,
    allowPrivate: privateRespondersAllowed(values['allow-private-responders'] === true),
  };
}

function hashOption(value: unknown): HashName {
  if (value === undefined) return 'sha1';
  if (value === 'sha1' || value === 'sha256') return value;
  throw new UsageError('--hash must be sha1 or sha256');
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer`);
  return n;
}

async function renewCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    certs: { type: 'string' },
    staples: { type: 'string' },
    issuers: { type: 'string' },
    force: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    'on-revoked': { type: 'string' },
    'refresh-at': { type: 'string' },
    'cert-extensions': { type: 'string' },
    extension: { type: 'string' },
    persist: { type: 'boolean' },
    'watch-interval': { type: 'string' },
    concurrency: { type: 'string' },
    state: { type: 'string' },
  });
  if (values.help) {
    io.out(HELP);
    return EXIT.ok;
  }
  if (typeof values.certs !== 'string') throw new UsageError('renew needs --certs <dir>');
  const onRevoked = (values['on-revoked'] ?? 'publish') as OnRevoked;
  if (onRevoked !== 'publish' && onRevoked !== 'withhold') {
    throw new UsageError('--on-revoked must be publish or withhold');
  }
  const naming = namingFrom(
    typeof values['cert-extensions'] === 'string' ? values['cert-extensions'] : undefined,
    typeof values.extension === 'string' ? values.extension : undefined,
  );
  let policy = DEFAULT_POLICY;
  if (values['refresh-at'] !== undefined) {
    try {
      policy = checkPolicy({ ...DEFAULT_POLICY, refreshAt: Number(values['refresh-at']) });
    } catch (err) {
      throw new UsageError(`--refresh-at: ${errorMessage(err)}`);
    }
  }
  const http = httpOptions(values);
  const issuerPool = typeof values.issuers === 'string' ? await loadIssuerDir(values.issuers) : undefined;
  const staplesAt = typeof values.staples === 'string' ? values.staples : values.certs;
  const dryRun = values['dry-run'] === true;
  // Backoff, max-age and outcomes survive one-shot (cron) runs in a state file; --state none: off.
  const stateFile = typeof values.state === 'string' ? values.state : defaultStateFile(staplesAt);
  const stateStore =
    stateFile === 'none'
      ? undefined
      : new StateStore(fileStateBlob(stateFile), (e) => io.err(JSON.stringify(e)));
  const state = (await stateStore?.load()) ?? new Map();
  // The state is a cache: failing to save it is reported, never fatal.
  const saveState = async () => {
    if (stateStore && !dryRun) {
      await stateStore.save(state, new Date()).catch((err: unknown) => {
        io.err(`ocsp-renewer: cannot save state ${stateFile}: ${errorMessage(err)}`);
      });
    }
  };
  const deps: RunDeps = {
    source: certificateSourceFor(values.certs, naming),
    store: stapleStoreFor(staplesAt),
    transport: httpTransport(http),
    downloadIssuer: cachedDownload(httpIssuerDownload(http)),
    issuerPool,
    clock: () => new Date(),
    state,
  };
  const options: RunOptions = {
    force: values.force === true,
    dryRun,
    onRevoked,
    hash: hashOption(values.hash),
    nonce: values.nonce === true,
    policy,
    naming,
    concurrency: positiveInt(values.concurrency, '--concurrency', 8),
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
  const print = (report: Awaited<ReturnType<typeof run>>) =>
    io.out(values.json ? JSON.stringify(report, null, 2) : formatRunReport(report));

  if (values.persist) {
    await runDaemon(deps, options, {
      watchIntervalMs: positiveInt(values['watch-interval'], '--watch-interval', 30) * 1000,
      onReport: (report) => {
        print(report);
        void saveState();
        void sweep(); // for the next run
      },
      log: io.err,
    });
    return EXIT.ok;
  }
  const report = await run(deps, options);
  await saveState();
  print(report);
  return report.counts.failed > 0 ? EXIT.failed : EXIT.ok;
}

/** `--certs`: a directory, `s3://bucket/prefix` or `secretsmanager://name-prefix`. */
export function certificateSourceFor(location: string, naming: NamingOptions): CertificateSource {
  if (location.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(location);
    return new S3CertificateSource(makeS3Client(), bucket, prefix, naming);
  }
  if (location.startsWith('secretsmanager://')) {
    return new SecretsManagerCertificateSource(
      new SecretsManagerClient({}),
      location.slice('secretsmanager://'.length),
    );
  }
  if (/^[a-z0-9]+:\/\//i.test(location)) throw new UsageError(`unsupported location ${location}`);
  return new FsCertificateSource(location, naming);
}

/** `--staples`: a directory or `s3://bucket/prefix`. */
export function stapleStoreFor(location: string): StapleStore {
  if (location.startsWith('s3://')) {
    const { bucket, prefix } = parseS3Url(location);
    return new S3StapleStore(makeS3Client(), bucket, prefix);
  }
  if (/^[a-z0-9]+:\/\//i.test(location)) throw new UsageError(`staples cannot go to ${location}`);
  return new FsStapleStore(location);
}

/** Every certificate in an issuers directory (any depth; .pem .crt .cer .der, bundles too). */
async function loadIssuerDir(dir: string): Promise<Certificate[]> {
  const files = (await readdir(dir, { recursive: true }))
    .filter((f) => /\.(pem|crt|cer|der)$/i.test(f))
    .sort();
  const certs: Certificate[] = [];
  for (const file of files) {
    try {
      certs.push(...parseCertificates(await readFile(path.join(dir, file))));
    } catch (err) {
      throw new Error(`issuers directory: ${path.join(dir, file)}: ${errorMessage(err)}`);
    }
  }
  return certs;
}

/** Reads `<name>.issuer.pem` beside a certificate file, if there is one. */
function siblingReader(certFile: string): () => Promise<Buffer | undefined> {
  return () => readIssuerSiblingFile(certFile);
}

async function loadCerts(file: string, what: string): Promise<Certificate[]> {
  try {
    return parseCertificates(await readFile(file));
  } catch (err) {
    throw new Error(`parse ${what} ${file}: ${errorMessage(err)}`);
  }
}

async function inspectCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { cert: { type: 'string' }, issuer: { type: 'string' }, at: { type: 'string' } },
    1,
  );
  const file = positionals[0]!;
  const now = values.at === undefined ? new Date() : new Date(String(values.at));
  if (Number.isNaN(now.getTime())) throw new UsageError(`--at: not an ISO-8601 instant: ${values.at}`);
  const bundle = typeof values.cert === 'string' ? await loadCerts(values.cert, 'certificate') : [];
  const cert = bundle[0];
  // The issuer: --issuer, else the --cert bundle, else <name>.issuer.pem beside --cert (offline).
  const issuer =
    typeof values.issuer === 'string'
      ? (await loadCerts(values.issuer, 'issuer'))[0]
      : cert && typeof values.cert === 'string'
        ? await resolveIssuer(cert, bundle.slice(1), { sibling: siblingReader(values.cert) }).then(
            (found) => found.issuer,
            () => undefined,
          )
        : undefined;
  let der: Buffer;
  try {
    der = await readFile(file);
  } catch (err) {
    throw new Error(`read ${file}: ${errorMessage(err)}`);
  }
  let parsed;
  try {
    parsed = parseOcspResponse(der);
  } catch (err) {
    const message = `parse ${file}: not an OCSP response: ${errorMessage(err)}`;
    if (values.json) io.out(JSON.stringify({ valid: false, errors: [message] }, null, 2));
    else io.err(message);
    return EXIT.failed;
  }
  const verdict = validateResponse(parsed, { cert, issuer, now });
  const explanation = explainStaple(parsed, verdict);
  io.out(values.json ? JSON.stringify(explanation, null, 2) : formatExplanation(explanation));
  if (!verdict.valid) return EXIT.failed;
  return verdict.certStatus === 'good' ? EXIT.ok : EXIT.notGood;
}

async function fetchCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { issuer: { type: 'string' }, out: { type: 'string' } }, 1);
  const file = positionals[0]!;
  const bundle = await loadCerts(file, 'certificate');
  const leaf = bundle[0]!;
  if (leaf.ocspUrls.length === 0) throw new Error(`fetch ${file}: no OCSP URL in the certificate`);
  const http = httpOptions(values);
  const pool = typeof values.issuer === 'string' ? await loadCerts(values.issuer, 'issuer') : undefined;
  const { issuer } = await resolveIssuer(leaf, bundle.slice(1), {
    pool,
    sibling: siblingReader(file),
    download: httpIssuerDownload(http),
  }).catch((err: unknown) => {
    throw new Error(`issuer ${file}: ${errorMessage(err)}`);
  });
  const { valid, attempts } = await queryResponders(leaf, issuer, httpTransport(http), {
    hash: hashOption(values.hash),
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
    io.err(attempts.map((a) => `${a.stage} ${a.url}: ${a.verdict.errors.join('; ')}`).join('\n'));
    return EXIT.failed;
  }
  if (typeof values.out === 'string') await writeFileAtomic(path.resolve(values.out), valid.der);
  return valid.verdict.certStatus === 'good' ? EXIT.ok : EXIT.notGood;
}
