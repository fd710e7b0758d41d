import type { HashName } from '../core/der.js';
import { checkPolicy, DEFAULT_POLICY, type RefreshPolicy } from '../core/refresh-policy.js';
import type { OnRevoked } from '../core/replace.js';
import { namingFrom, type NamingOptions } from './ports.js';

/**
 * The run settings the CLI (flags) and the Lambda (environment variables) share: one table, so
 * both read the same names, defaults, ranges and error messages. A bad value throws a
 * SettingError naming where it came from: `--hash must be sha1 or sha256, got md5` from the CLI,
 * `CERTID_HASH must be sha1 or sha256, got md5` from the Lambda.
 */
export class SettingError extends Error {
  override readonly name = 'SettingError';
  readonly code = 'SETTING';
}

export interface SettingSpec<T> {
  /** The CLI flag, without its dashes. */
  readonly flag: string;
  /** The Lambda's environment variable. */
  readonly env: string;
  /** The value's placeholder in help texts. */
  readonly arg: string;
  readonly help: string;
  readonly fallback: T;
  /** The value, or a reason starting with "must" when `raw` is not acceptable. */
  readonly parse: (raw: string) => T | { invalid: string };
}

const positiveInteger = (raw: string) => {
  const n = Number(raw);
  return Number.isInteger(n) && n > 0 ? n : { invalid: 'must be a positive integer' };
};

/** Each shared setting's value type. */
interface SettingValues {
  hash: HashName;
  onRevoked: OnRevoked;
  refreshAt: number;
  concurrency: number;
  perHostConcurrency: number;
  timeoutSeconds: number;
  certExtensions: string;
  stapleExtension: string;
}
type SettingName = keyof SettingValues;

export const SETTINGS: { readonly [N in SettingName]: SettingSpec<SettingValues[N]> } = {
  hash: {
    flag: 'hash',
    env: 'CERTID_HASH',
    arg: 'sha1|sha256',
    help: 'CertID hash (default sha1)',
    fallback: 'sha1',
    parse: (raw) => (raw === 'sha1' || raw === 'sha256' ? raw : { invalid: 'must be sha1 or sha256' }),
  },
  onRevoked: {
    flag: 'on-revoked',
    env: 'ON_REVOKED',
    arg: 'publish|withhold',
    help: 'what to do with a REVOKED response (default publish)',
    fallback: 'publish',
    parse: (raw) =>
      raw === 'publish' || raw === 'withhold' ? raw : { invalid: 'must be publish or withhold' },
  },
  refreshAt: {
    flag: 'refresh-at',
    env: 'REFRESH_AT',
    arg: '0.1-0.95',
    help: `renew after this fraction of thisUpdate→nextUpdate (default ${DEFAULT_POLICY.refreshAt})`,
    fallback: DEFAULT_POLICY.refreshAt,
    parse: (raw) => {
      const n = Number(raw);
      return raw.trim() !== '' && n >= 0.1 && n <= 0.95 ? n : { invalid: 'must be between 0.1 and 0.95' };
    },
  },
  concurrency: {
    flag: 'concurrency',
    env: 'CONCURRENCY',
    arg: 'n',
    help: 'certificates in flight at once (default 8)',
    fallback: 8,
    parse: positiveInteger,
  },
  perHostConcurrency: {
    flag: 'per-host-concurrency',
    env: 'PER_HOST_CONCURRENCY',
    arg: 'n',
    help: 'requests in flight to one responder host (default 4)',
    fallback: 4,
    parse: positiveInteger,
  },
  timeoutSeconds: {
    flag: 'timeout',
    env: 'HTTP_TIMEOUT_SECONDS',
    arg: 'seconds',
    help: 'per-request timeout (default 10)',
    fallback: 10,
    parse: (raw) => {
      const n = Number(raw);
      return raw.trim() !== '' && n >= 1 && Number.isFinite(n)
        ? n
        : { invalid: 'must be a number of seconds ≥ 1' };
    },
  },
  certExtensions: {
    flag: 'cert-extensions',
    env: 'CERT_EXTENSIONS',
    arg: 'list',
    help: 'certificate extensions (default .pem,.crt,.cert)',
    fallback: '',
    parse: (raw) => raw,
  },
  stapleExtension: {
    flag: 'extension',
    env: 'STAPLE_EXTENSION',
    arg: 'ext',
    help: 'staple extension (default .ocsp)',
    fallback: '',
    parse: (raw) => raw,
  },
};

/**
 * Reads one setting: `raw` undefined or empty gives the default; `source` names it in errors
 * (`--hash` or `CERTID_HASH`).
 */
export function readSetting<N extends SettingName>(
  name: N,
  raw: string | undefined,
  source: string,
): SettingValues[N] {
  const spec = SETTINGS[name] as SettingSpec<SettingValues[N]>;
  if (raw === undefined || raw === '') return spec.fallback;
  const value = spec.parse(raw);
  if (typeof value === 'object' && value !== null && 'invalid' in value) {
    throw new SettingError(`${source} ${value.invalid}, got ${JSON.stringify(raw)}`);
  }
  return value as SettingValues[N];
}

/** The settings, read and checked. */
export interface RunSettings {
  hash: HashName;
  onRevoked: OnRevoked;
  policy: RefreshPolicy;
  concurrency: number;
  perHostConcurrency: number;
  timeoutMs: number;
  naming: NamingOptions;
}

/**
 * Reads every shared setting through `get` (a flag's value or an environment variable), naming
 * each bad one by `sourceOf` (`--flag` or `ENV_NAME`).
 */
export function readSettings(
  get: (spec: SettingSpec<unknown>) => string | undefined,
  sourceOf: (spec: SettingSpec<unknown>) => string,
): RunSettings {
  const read = <N extends SettingName>(name: N) => {
    const spec = SETTINGS[name] as SettingSpec<unknown>;
    return readSetting(name, get(spec), sourceOf(spec));
  };
  return {
    hash: read('hash'),
    onRevoked: read('onRevoked'),
    policy: checkPolicy({ ...DEFAULT_POLICY, refreshAt: read('refreshAt') }),
    concurrency: read('concurrency'),
    perHostConcurrency: read('perHostConcurrency'),
    timeoutMs: read('timeoutSeconds') * 1000,
    naming: namingFrom(read('certExtensions') || undefined, read('stapleExtension') || undefined),
  };
}

/** The CLI's spelling: `--flag`. */
export const flagSource = (spec: SettingSpec<unknown>): string => `--${spec.flag}`;
/** The Lambda's spelling: the environment variable. */
export const envSource = (spec: SettingSpec<unknown>): string => spec.env;
