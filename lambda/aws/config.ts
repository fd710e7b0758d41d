import { DEFAULT_HTTP, type HttpOptions } from '../adapters/http.js';
import { privateRespondersAllowed } from '../adapters/ssrf-guard.js';
import { normalisePrefix } from '../adapters/s3.js';
import type { HashName } from '../core/der.js';
import { namingFrom, type NamingOptions } from '../renew/ports.js';
import { checkPolicy, DEFAULT_POLICY, type RefreshPolicy } from '../core/refresh-policy.js';
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
  /** During a run the state object is saved at most this often (and at its end). */
  stateSaveMs: number;
  naming: NamingOptions;
  policy: RefreshPolicy;
  onRevoked: OnRevoked;
  hash: HashName;
  concurrency: number;
  perHostConcurrency: number;
  http: HttpOptions;
}

export class ConfigError extends Error {}

/**
 * Reads the configuration; a bad value throws naming the variable. Variables: BUCKET (required),
 * CERTS_PREFIX (certs/), STAPLES_PREFIX (staples/), STATE_PREFIX (state/), CERT_EXTENSIONS
 * (.pem,.crt,.cert), STAPLE_EXTENSION (.ocsp), REFRESH_AT (0.5), ON_REVOKED (publish),
 * CERTID_HASH (sha1), SECRETS_PREFIX (unset: no Secrets Manager), CONCURRENCY (8),
 * PER_HOST_CONCURRENCY (4), HTTP_TIMEOUT_SECONDS (10), OCSP_RENEWER_ALLOW_PRIVATE_RESPONDERS,
 * STATUS_PAGE_KEY (unset: no status page; the stack sets reports/status.html), REPORTS_PREFIX
 * (reports/: run reports go under its runs/), STATE_SAVE_SECONDS (30).
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): LambdaConfig {
  const bucket = env.BUCKET;
  if (!bucket) throw new ConfigError('BUCKET is not set');
  const str = (name: string, fallback: string) =>
    env[name] === undefined || env[name] === '' ? fallback : env[name]!;
  const num = (name: string, fallback: number, ok: (n: number) => boolean) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!ok(n)) throw new ConfigError(`${name} is not valid: ${raw}`);
    return n;
  };
  const onRevoked = str('ON_REVOKED', 'publish');
  if (onRevoked !== 'publish' && onRevoked !== 'withhold') {
    throw new ConfigError(`ON_REVOKED must be publish or withhold, got ${onRevoked}`);
  }
  const hash = str('CERTID_HASH', 'sha1');
  if (hash !== 'sha1' && hash !== 'sha256')
    throw new ConfigError(`CERTID_HASH must be sha1 or sha256, got ${hash}`);
  let policy: RefreshPolicy;
  try {
    policy = checkPolicy({
      ...DEFAULT_POLICY,
      refreshAt: num('REFRESH_AT', DEFAULT_POLICY.refreshAt, Number.isFinite),
    });
  } catch (err) {
    throw new ConfigError(`REFRESH_AT: ${(err as Error).message}`);
  }
  const positive = (n: number) => Number.isInteger(n) && n > 0;
  return {
    bucket,
    certsPrefix: normalisePrefix(str('CERTS_PREFIX', 'certs/')),
    staplesPrefix: normalisePrefix(str('STAPLES_PREFIX', 'staples/')),
    stateKey: `${normalisePrefix(str('STATE_PREFIX', 'state/'))}state.json`,
    secretsPrefix: env.SECRETS_PREFIX || undefined,
    statusPageKey: env.STATUS_PAGE_KEY || undefined,
    reportsPrefix: normalisePrefix(str('REPORTS_PREFIX', 'reports/')),
    stateSaveMs: num('STATE_SAVE_SECONDS', 30, (n) => Number.isFinite(n) && n >= 0) * 1000,
    naming: namingFrom(env.CERT_EXTENSIONS, env.STAPLE_EXTENSION),
    policy,
    onRevoked,
    hash,
    concurrency: num('CONCURRENCY', 8, positive),
    perHostConcurrency: num('PER_HOST_CONCURRENCY', 4, positive),
    http: {
      ...DEFAULT_HTTP,
      timeoutMs: num('HTTP_TIMEOUT_SECONDS', DEFAULT_HTTP.timeoutMs / 1000, (n) => n > 0) * 1000,
      // Read from the env given (the handler's injected env), not only from process.env.
      allowPrivate: privateRespondersAllowed(false, env),
    },
  };
}
