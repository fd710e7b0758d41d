import pLimit from 'p-limit';
import { parseCertificates, type Certificate } from '../core/certificate.js';
import type { HashName } from '../core/der.js';
import { errorMessage, RenewError, type Stage } from '../core/errors.js';
import { resolveIssuer } from './issuer.js';
import { describeAttempts, queryResponders, type Transport } from './ocsp-query.js';
import { parseOcspResponse, type CertStatus } from '../core/ocsp-response.js';
import {
  DEFAULT_NAMING,
  stapleKeyFor,
  type CertificateObject,
  type CertificateSource,
  type NamingOptions,
  type StapleStore,
  type StoredStaple,
} from './ports.js';
import {
  decideRefresh,
  DEFAULT_POLICY,
  type RefreshPolicy,
  type StapleFacts,
} from '../core/refresh-policy.js';
import { shouldReplace, type OnRevoked } from '../core/replace.js';
import { storeStaple } from './store-staple.js';
import { invalidVerdict, validateResponse, ValidationCache, type Verdict } from '../core/validate.js';

/**
 * What happened to one certificate in a run. `due` appears only in dry runs ("would renew").
 */
export type Action = 'fresh' | 'renewed' | 'skipped' | 'failed' | 'withheld' | 'due';
export const ACTIONS: readonly Action[] = ['renewed', 'fresh', 'skipped', 'withheld', 'failed', 'due'];

export interface ReportRow {
  /** The certificate's key in its source. */
  key: string;
  /** The staple's key in the staple store. */
  staple: string;
  action: Action;
  reason: string;
  /** For failures: the stage that failed. */
  stage?: Stage;
  certStatus?: CertStatus;
  revocationTime?: string;
  revocationReason?: string;
  thisUpdate?: string;
  nextUpdate?: string;
  nextDue?: string;
  mustStaple?: boolean;
  /** The responder URL that answered. */
  responder?: string;
}

export interface RunReport {
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  counts: Record<Action, number>;
  /** Certificates whose responder says revoked (staple published, withheld, or stored earlier). */
  revoked: number;
  /** The least validity left over all staples seen, in hours (undefined when there are none). */
  leastValidityHours: number | undefined;
  results: ReportRow[];
  /** Certificates not started because the run had to stop (deadline); the next run takes them. */
  notReached: string[];
}

/** Per-certificate memory across runs: failures for backoff, max-age, and the last verdict's times. */
export interface StateEntry {
  certTag?: string;
  stapleTag?: string;
  failures: number;
  lastFailureAt?: string;
  lastError?: string;
  maxAgeUntil?: string;
  thisUpdate?: string;
  nextUpdate?: string;
  responderNotAfter?: string;
  certStatus?: CertStatus;
  nextDue?: string;
  /** The last reported action and reason, replayed by quiet runs. */
  action?: Action;
  reason?: string;
  mustStaple?: boolean;
}
export type RunState = Map<string, StateEntry>;

/** nextDue of a certificate that will not be due until its file changes. */
const NEVER = '9999-12-31T00:00:00.000Z';

export type { Transport } from './ocsp-query.js';

export interface RunDeps {
  source: CertificateSource;
  store: StapleStore;
  transport: Transport;
  /** Downloads a caIssuers URL; wrap it in a cache (see cachedDownload). */
  downloadIssuer?: (url: string) => Promise<Uint8Array>;
  /** Certificates from an issuers directory. */
  issuerPool?: readonly Certificate[];
  clock: () => Date;
  /** Mutated in place: pass the same map to the next run to keep backoff and max-age. */
  state?: RunState;
  /**
   * Trust the state for certificates whose certificate and staple tags are unchanged and whose
   * next due time has not come: report them fresh without reading anything. Needs a staple store
   * that can list (S3), so a deleted or replaced staple is still noticed.
   */
  trustState?: boolean;
}

export interface RunOptions {
  /** Renew regardless of the policy: all certificates (true) or those the predicate picks. */
  force?: boolean | ((key: string) => boolean);
  /** Restrict the run to these certificate keys (an S3 event, a targeted force). */
  only?: (key: string) => boolean;
  /** Decide and report; fetch and write nothing. */
  dryRun?: boolean;
  onRevoked?: OnRevoked;
  /** CertID hash; SHA-1 by default, as RFC 5019 responders expect. */
  hash?: HashName;
  /** Send a nonce. Off by default: most CAs pre-sign and ignore it. */
  nonce?: boolean;
  skewMs?: number;
  policy?: RefreshPolicy;
  concurrency?: number;
  /** At most this many requests in flight to one responder host. */
  perHostConcurrency?: number;
  naming?: NamingOptions;
  /** Checked before each certificate is started; true stops taking new work. */
  shouldStop?: () => boolean;
}

/**
 * One renewal run, the way certmagic's updateOCSPStaples works: list, then for every certificate
 * decide, fetch, validate and store with bounded concurrency. A failure becomes one report row and
 * never touches the stored staple; one bad certificate never stops the others.
 */
export async function run(deps: RunDeps, options: RunOptions = {}): Promise<RunReport> {
  const startedAt = deps.clock();
  const naming = options.naming ?? DEFAULT_NAMING;
  const state = deps.state ?? new Map<string, StateEntry>();
  const cache = new ValidationCache();
  const perHost = new Map<string, ReturnType<typeof pLimit>>();
  const hostLimit = (url: string) => {
    let host = url;
    try {
      host = new URL(url).host;
    } catch {
      /* an invalid URL fails in the transport */
    }
    let limit = perHost.get(host);
    if (!limit) perHost.set(host, (limit = pLimit(options.perHostConcurrency ?? 4)));
    return limit;
  };

  let objects: CertificateObject[];
  try {
    objects = await deps.source.list();
  } catch (err) {
    throw new RenewError('source', deps.source.description, `cannot list: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (!options.only) {
    // Forget certificates that are gone, so the state does not grow forever.
    const listed = new Set(objects.map((o) => o.key));
    for (const key of state.keys()) if (!listed.has(key)) state.delete(key);
  } else objects = objects.filter((o) => options.only!(o.key));
  objects.sort((a, b) => a.key.localeCompare(b.key));

  const stapleTags = deps.trustState && deps.store.list ? await listStaples(deps.store) : undefined;
  const notReached: string[] = [];
  const replayed = new WeakSet<ReportRow>();
  const limit = pLimit(options.concurrency ?? 8);
  const settled = await Promise.all(
    objects.map((object) =>
      limit(async () => {
        if (options.shouldStop?.()) {
          notReached.push(object.key);
          return undefined;
        }
        return renewOne(object);
      }),
    ),
  );
  const results = settled.filter((r): r is ReportRow => r !== undefined);

  /**
   * One certificate, with its outcome remembered so a quiet run can replay it. The paths below
   * record what only they know (staple tag, times, failures, max-age); this records the rest.
   */
  async function renewOne(object: CertificateObject): Promise<ReportRow> {
    const row = await renewCertificate(object);
    // A dry run leaves the state as it found it; a replayed row changes nothing.
    if (!replayed.has(row) && row.action !== 'due') {
      const entry: StateEntry = state.get(object.key) ?? { failures: 0 };
      entry.certTag = object.tag;
      entry.action = row.action;
      entry.reason = row.reason;
      if (row.certStatus) entry.certStatus = row.certStatus;
      if (row.mustStaple !== undefined) entry.mustStaple = row.mustStaple;
      // Skipped certificates (no OCSP URL, expired) stay skipped until the file changes.
      entry.nextDue = row.nextDue ?? (row.action === 'skipped' ? NEVER : undefined);
      state.set(object.key, entry);
    }
    return row;
  }

  async function renewCertificate(object: CertificateObject): Promise<ReportRow> {
    const name = object.key;
    const staple = stapleKeyFor(name, naming);
    const now = deps.clock();
    const prev: StateEntry = state.get(name) ?? { failures: 0 };
    const forced = typeof options.force === 'function' ? options.force(name) : options.force === true;
    let existing: Verdict | undefined;
    let facts: StapleFacts | undefined;
    let mustStaple: boolean | undefined;
    if (
      stapleTags &&
      !forced &&
      prev.nextDue &&
      Date.parse(prev.nextDue) > now.getTime() &&
      prev.certTag === object.tag &&
      prev.stapleTag === stapleTags.get(staple)
    ) {
      // Replays the last verdict: a failing certificate stays failed, a withheld one stays loud.
      const action = prev.action ?? 'fresh';
      const row: ReportRow = {
        key: name,
        staple,
        action: action === 'renewed' ? 'fresh' : action,
        reason:
          action === 'failed'
            ? `backing off: ${prev.lastError ?? 'earlier failure'}`
            : action === 'renewed'
              ? 'fresh'
              : (prev.reason ?? 'fresh'),
        ...(prev.certStatus ? { certStatus: prev.certStatus } : {}),
        ...(prev.thisUpdate ? { thisUpdate: prev.thisUpdate } : {}),
        ...(prev.nextUpdate ? { nextUpdate: prev.nextUpdate } : {}),
        nextDue: prev.nextDue,
        ...(prev.mustStaple !== undefined ? { mustStaple: prev.mustStaple } : {}),
      };
      replayed.add(row);
      return row;
    }
    try {
      const bytes = await step('source', name, 'cannot read', () => deps.source.read(name));
      const certs = await step('parse', name, 'not a certificate', async () => parseCertificates(bytes));
      const leaf = certs[0]!;
      mustStaple = leaf.mustStaple;
      if (leaf.ocspUrls.length === 0) {
        return { key: name, staple, action: 'skipped', reason: 'no OCSP URL in the certificate', mustStaple };
      }
      if (leaf.notAfter.getTime() < now.getTime()) {
        return {
          key: name,
          staple,
          action: 'skipped',
          reason: `certificate expired ${leaf.notAfter.toISOString()}`,
          mustStaple,
        };
      }
      const sibling = deps.source.readIssuerSibling?.bind(deps.source, name);
      const { issuer } = await step('issuer', name, 'issuer not found', () =>
        resolveIssuer(leaf, certs.slice(1), {
          sibling,
          pool: deps.issuerPool,
          download: deps.downloadIssuer,
        }),
      );

      const stored: StoredStaple | undefined = await step(
        'store',
        staple,
        'cannot read the stored staple',
        () => deps.store.get(staple),
      );
      if (stored) {
        existing = verdictOf(stored.der, { cert: leaf, issuer, now, skewMs: options.skewMs, cache });
        facts = factsOf(existing, prev);
      }
      const decision = decideRefresh({
        key: name,
        staple: facts,
        failures: failuresOf(prev),
        force: forced,
        now,
        policy: options.policy ?? DEFAULT_POLICY,
      });
      if (!decision.due) {
        state.set(name, { ...prev, stapleTag: stored?.tag, ...stateTimes(existing) });
        return {
          key: name,
          staple,
          // Still failing, only waiting out the backoff: say so, with the last error.
          action: decision.backingOff ? 'failed' : 'fresh',
          reason: decision.backingOff
            ? `${decision.reason}: ${prev.lastError ?? 'earlier failure'}`
            : decision.reason,
          ...times(existing),
          nextDue: decision.nextDue.toISOString(),
          mustStaple,
        };
      }
      if (options.dryRun) {
        return {
          key: name,
          staple,
          action: 'due',
          reason: `would renew: ${decision.reason}`,
          ...times(existing),
          mustStaple,
        };
      }

      const fetched = await fetchValid(leaf, issuer, name);
      const verdict = fetched.verdict;
      const replace = shouldReplace(existing, verdict, options.onRevoked ?? 'publish');
      const base = { name, staple, responder: fetched.url, mustStaple };
      const fetchedAt = deps.clock();
      const maxAgeUntil =
        fetched.maxAgeSec !== undefined
          ? new Date(fetchedAt.getTime() + fetched.maxAgeSec * 1000)
          : undefined;
      if (!replace.replace && replace.action === 'failed') {
        throw new RenewError('validate', name, replace.reason);
      }
      let action: Action = 'renewed';
      let reason = replace.reason;
      let stapleTag = stored?.tag;
      let lostRace = false;
      if (replace.replace) {
        if (!stored?.der.equals(fetched.der)) {
          const meta = {
            thisUpdate: verdict.thisUpdate!,
            nextUpdate: verdict.nextUpdate,
            producedAt: verdict.producedAt,
            certStatus: verdict.certStatus ?? 'good',
            certTag: object.tag,
          };
          // Conditional on the staple read above: a concurrent writer's newer staple is never lost.
          const outcome = await step('store', staple, 'cannot write the staple', () =>
            storeStaple(deps.store, staple, fetched.der, meta, stored, (current) => {
              existing =
                current && verdictOf(current.der, { cert: leaf, issuer, now, skewMs: options.skewMs, cache });
              return shouldReplace(existing, verdict, options.onRevoked ?? 'publish').replace;
            }),
          );
          if (outcome.written) stapleTag = outcome.tag;
          else {
            lostRace = true;
            stapleTag = outcome.current?.tag;
            action = 'fresh';
            reason = 'another writer stored a staple at least as new meanwhile; kept it';
          }
        } else {
          action = 'fresh';
          reason = 'responder returned the staple already stored';
        }
      } else {
        action = replace.action;
        reason = replace.reason;
      }
      // What is stored now: the new staple if it was written, else the old one.
      const kept = replace.replace && !lostRace ? verdict : existing;
      const newFacts = kept?.valid ? { ...factsOf(kept, prev), maxAgeUntil } : undefined;
      const next = decideRefresh({ key: name, staple: newFacts, now: fetchedAt, policy: options.policy });
      state.set(name, {
        stapleTag,
        failures: 0,
        ...(maxAgeUntil ? { maxAgeUntil: maxAgeUntil.toISOString() } : {}),
        ...stateTimes(kept),
      });
      return {
        ...base,
        action,
        reason,
        // A withheld revocation shows the revoked response; otherwise the staple that is stored.
        ...times(action === 'withheld' ? verdict : kept),
        nextDue: next.nextDue.toISOString(),
      };
    } catch (err) {
      const failure =
        err instanceof RenewError ? err : new RenewError('fetch', name, errorMessage(err), { cause: err });
      const failed: StateEntry = {
        ...prev,
        failures: prev.failures + 1,
        lastFailureAt: now.toISOString(),
        lastError: failure.message,
      };
      state.set(name, failed);
      const next = decideRefresh({
        key: name,
        staple: facts,
        failures: failuresOf(failed),
        now,
        policy: options.policy,
      });
      return {
        key: name,
        staple,
        action: 'failed',
        stage: failure.stage,
        reason: failure.message,
        ...times(existing),
        nextDue: next.nextDue.toISOString(),
        mustStaple,
      };
    }
  }

  async function fetchValid(leaf: Certificate, issuer: Certificate, name: string) {
    const { valid, attempts } = await queryResponders(leaf, issuer, deps.transport, {
      hash: options.hash ?? 'sha1',
      nonce: options.nonce === true,
      skewMs: options.skewMs,
      now: deps.clock,
      cache,
      schedule: (url, request) => hostLimit(url)(request),
    });
    if (valid) return { verdict: valid.verdict, der: valid.der, url: valid.url, maxAgeSec: valid.maxAgeSec };
    const stage: Stage = attempts.some((a) => a.stage === 'validate') ? 'validate' : 'fetch';
    throw new RenewError(stage, name, describeAttempts(attempts));
  }

  const finishedAt = deps.clock();
  const counts = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as Record<Action, number>;
  for (const r of results) counts[r.action]++;
  const validities = results
    .filter((r) => r.nextUpdate && r.action !== 'skipped')
    .map((r) => (Date.parse(r.nextUpdate!) - finishedAt.getTime()) / 3_600_000);
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    dryRun: options.dryRun === true,
    counts,
    revoked: results.filter((r) => r.certStatus === 'revoked').length,
    leastValidityHours: validities.length ? Math.min(...validities) : undefined,
    results,
    notReached,
  };
}

async function listStaples(store: StapleStore): Promise<Map<string, string>> {
  try {
    return await store.list!();
  } catch (err) {
    throw new RenewError('store', store.description, `cannot list staples: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

async function step<T>(stage: Stage, key: string, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RenewError) throw err;
    throw new RenewError(stage, key, `${what}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Parses and validates; a staple that does not parse is simply an invalid verdict. */
function verdictOf(der: Buffer, input: Parameters<typeof validateResponse>[1]): Verdict {
  try {
    return validateResponse(parseOcspResponse(der), input);
  } catch (err) {
    return invalidVerdict('unparseable', [`does not parse: ${errorMessage(err)}`]);
  }
}

function factsOf(verdict: Verdict, prev: StateEntry): StapleFacts {
  return {
    valid: verdict.valid,
    thisUpdate: verdict.thisUpdate,
    nextUpdate: verdict.nextUpdate,
    responderNotAfter: verdict.responderCert?.notAfter,
    maxAgeUntil: prev.maxAgeUntil ? new Date(prev.maxAgeUntil) : undefined,
  };
}

function failuresOf(state: StateEntry) {
  return state.failures > 0 && state.lastFailureAt
    ? { consecutive: state.failures, lastFailureAt: new Date(state.lastFailureAt) }
    : undefined;
}

function times(verdict: Verdict | undefined): Partial<ReportRow> {
  if (!verdict) return {};
  return {
    certStatus: verdict.certStatus,
    ...(verdict.revocationTime ? { revocationTime: verdict.revocationTime.toISOString() } : {}),
    ...(verdict.revocationReason ? { revocationReason: verdict.revocationReason } : {}),
    ...(verdict.thisUpdate ? { thisUpdate: verdict.thisUpdate.toISOString() } : {}),
    ...(verdict.nextUpdate ? { nextUpdate: verdict.nextUpdate.toISOString() } : {}),
  };
}

function stateTimes(verdict: Verdict | undefined): Partial<StateEntry> {
  if (!verdict) return {};
  return {
    ...(verdict.thisUpdate ? { thisUpdate: verdict.thisUpdate.toISOString() } : {}),
    ...(verdict.nextUpdate ? { nextUpdate: verdict.nextUpdate.toISOString() } : {}),
    ...(verdict.responderCert ? { responderNotAfter: verdict.responderCert.notAfter.toISOString() } : {}),
  };
}

/** Memoises a downloader per URL for the life of the returned function (one run, one daemon). */
export function cachedDownload(download: (url: string) => Promise<Uint8Array>) {
  const cache = new Map<string, Promise<Uint8Array>>();
  return (url: string) => {
    let pending = cache.get(url);
    if (!pending) {
      pending = download(url);
      pending.catch(() => cache.delete(url));
      cache.set(url, pending);
    }
    return pending;
  };
}
