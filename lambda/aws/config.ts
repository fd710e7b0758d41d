import { DEFAULT_HTTP, type HttpOptions } from '../adapters/http.js';
import { privateRespondersAllowed } from '../adapters/ssrf-guard.js';
import { normalisePrefix } from '../adapters/s3.js';
import type { HashName } from '../core/der.js';
import type { NamingOptions } from '../renew/ports.js';
import type { RefreshPolicy } from '../core/refresh-policy.js';
import { envSource, readSettings, SettingError, type RunSettings } from '../renew/settings.js';
import type { OnRevoked } from '../core/replace.js';

/** The Lambda's configuration, read from its environment. */
export interface LambdaConfig {
  bucket: string;
  certsPrefix: string;
  staplesPrefix: string;
  /** The state object's key. */
  stateKey: string;
  secretsPrefix: string | undefined;
  /** Where the HTML status page goes after a run that changed something; unset: no page. */
  statusPageKey: string | undefined;
  /** Each run's full report goes under `<reportsPrefix>runs/`. */
  reportsPrefix: string;
  naming: NamingOptions;
  policy: RefreshPolicy;
  onRevoked: OnRevoked;
  hash: HashName;
  concurrency: number;
  perHostConcurrency: number;
  http: HttpOptions;
}

/** A Lambda environment variable is missing or not acceptable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG';
}

/**
 * Reads the configuration; a bad value throws naming the variable, with the same wording as the
 * CLI's flag (renew/settings.ts). Variables: BUCKET (required),
 * CERTS_PREFIX (certs/), STAPLES_PREFIX (staples/), STATE_PREFIX (state/), CERT_EXTENSIONS
 * (.pem,.crt,.cert), STAPLE_EXTENSION (.ocsp), REFRESH_AT (0.5), ON_REVOKED (publish),
 * CERTID_HASH (sha1), SECRETS_PREFIX (unset: no Secrets Manager), CONCURRENCY (8),
 * PER_HOST_CONCURRENCY (4), HTTP_TIMEOUT_SECONDS (10), OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS,
 * STATUS_PAGE_KEY (unset: no status page; the stack sets reports/status.html), REPORTS_PREFIX
 * (reports/: run reports go under its runs/).
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): LambdaConfig {
  const bucket = env.BUCKET;
  if (!bucket) throw new ConfigError('BUCKET is not set');
  const str = (name: string, fallback: string) =>
    env[name] === undefined || env[name] === '' ? fallback : env[name]!;
  let settings: RunSettings;
  try {
    settings = readSettings((spec) => env[spec.env], envSource);
  } catch (err) {
    if (err instanceof SettingError) throw new ConfigError(err.message);
    throw err;
  }
  return {
    bucket,
    certsPrefix: normalisePrefix(str('CERTS_PREFIX', 'certs/')),
    staplesPrefix: normalisePrefix(str('STAPLES_PREFIX', 'staples/')),
    stateKey: `${normalisePrefix(str('STATE_PREFIX', 'state/'))}state.json`,
    secretsPrefix: env.SECRETS_PREFIX || undefined,
    statusPageKey: env.STATUS_PAGE_KEY || undefined,
    reportsPrefix: normalisePrefix(str('REPORTS_PREFIX', 'reports/')),
    naming: settings.naming,
    policy: settings.policy,
    onRevoked: settings.onRevoked,
    hash: settings.hash,
    concurrency: settings.concurrency,
    perHostConcurrency: settings.perHostConcurrency,
    http: {
      ...DEFAULT_HTTP,
      timeoutMs: settings.timeoutMs,
      // Read from the env given (the handler's injected env), not only from process.env.
      allowPrivate: privateRespondersAllowed(false, env),
      maxSocketsPerHost: settings.perHostConcurrency,
    },
  };
}
