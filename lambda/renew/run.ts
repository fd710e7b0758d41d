import { DeadlineError, errorMessage, RenewError } from '../core/errors.js';
import { compareKeys } from '../core/key-order.js';
import { DEFAULT_POLICY } from '../core/refresh-policy.js';
import { ValidationCache } from '../core/responder.js';
import { commit } from './commit.js';
import { fetchResponse } from './fetch-response.js';
import { perHostLimiter } from './host-limiter.js';
import { digest, startJob, type Job, type RunContext } from './job.js';
import { NotStarted } from './ocsp-query.js';
import { cutByDeadline, failed, record, refusedOutcome, replay, type Outcome } from './outcome.js';
import { plan } from './plan.js';
import {
  DEFAULT_NAMING,
  refusedKeys,
  type CertificateObject,
  type CertificateSource,
  type NamingOptions,
  type RefusedKey,
  type StapleStore,
  type ReportRow,
  type RunReport,
  type RunState,
  type StateEntry,
} from './ports.js';
import { reportOf, withOldName } from './run-report.js';
import type { RunDeps, RunOptions } from './run-inputs.js';

/**
 * One renewal run, the way certmagic's updateOCSPStaples works: list, then for every certificate
 * plan → fetch → commit with bounded concurrency, and record its outcome. A failure becomes one
 * report row and never touches the stored staple; one bad certificate never stops the others.
 */
export async function run(deps: RunDeps, options: RunOptions = {}): Promise<RunReport> {
  const startedAt = deps.clock();
  const state = deps.state ?? new Map<string, StateEntry>();
  const ctx = await contextOf(deps, options, state);
  const { objects } = ctx;
  const notReached: string[] = [];
  // Row i is certificate i's, so the report keeps the listing's order (sorted by key).
  const rows: Array<ReportRow | undefined> = new Array<ReportRow | undefined>(objects.length);
  let done = 0;
  let next = 0;
  let broken = false;
  /**
   * One of `concurrency` workers, each taking the next certificate of the listing when it is
   * free: memory holds the certificates in flight, not a queued closure and promise for each of
   * the N (as p-limit over the whole listing did). A rejection (a state sink's) fails the run;
   * the other workers then take no new certificate.
   */
  const worker = async (): Promise<void> => {
    while (next < objects.length && !broken) {
      const i = next++;
      const object = objects[i]!;
      if (options.shouldStop?.()) {
        notReached.push(object.key);
        continue;
      }
      const outcome = await renewCertificate(ctx, startJob(ctx, state, object));
      if (outcome === NOT_STARTED) {
        notReached.push(object.key);
        continue;
      }
      const told = record(
        state,
        object,
        outcome,
        ctx.policyDigest,
        options.dryRun ? undefined : deps.stateSink,
      );
      if (told) await told;
      options.onResult?.(outcome.row, ++done, objects.length);
      rows[i] = withOldName(outcome.row);
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency ?? 8, objects.length));
  await Promise.all(
    Array.from({ length: workers }, () =>
      worker().catch((err: unknown) => {
        broken = true;
        throw err;
      }),
    ),
  );
  const results = rows.filter((r): r is ReportRow => r !== undefined);
  // Queued certificates may be left in any order: report them sorted, as the listing is.
  notReached.sort(compareKeys);
  return reportOf(startedAt, deps.clock(), options.dryRun === true, results, notReached);
}

/** The run's context: this run's certificates, those refused, and the settings every job shares. */
async function contextOf(deps: RunDeps, options: RunOptions, state: RunState): Promise<RunContext> {
  const naming = options.naming ?? DEFAULT_NAMING;
  const { objects, refused } = await listCertificates(deps.source, state, options.only, naming);
  return {
    deps,
    options,
    naming,
    refused,
    policy: options.policy ?? DEFAULT_POLICY,
    cache: new ValidationCache(),
    hostLimit: perHostLimiter(options.perHostConcurrency ?? 4),
    stapleTags: deps.trustState && deps.store.list ? await listStaples(deps.store) : undefined,
    runSettings: digest(
      JSON.stringify([options.hash ?? 'sha1', options.nonce === true, options.responderPolicy ?? '']),
    ),
    policyDigest: digest(JSON.stringify([options.policy ?? DEFAULT_POLICY, options.onRevoked ?? 'publish'])),
    objects,
    directoryIssuers: new Map(),
  };
}

/** A certificate the deadline stopped before its first request: the next run takes it. */
const NOT_STARTED = Symbol('not started');

/**
 * One certificate: replay, or plan → fetch → commit; any failure becomes the failed outcome. The
 * deadline is no failure: before the first request the certificate was not started, after it the
 * row says so and the state is left as it was.
 */
async function renewCertificate(ctx: RunContext, j: Job): Promise<Outcome | typeof NOT_STARTED> {
  const refusal = ctx.refused.get(j.key);
  if (refusal) return refusedOutcome(j, refusal);
  const replayed = replay(ctx, j);
  if (replayed) return { row: replayed };
  try {
    const planned = await plan(ctx, j);
    if ('row' in planned) return planned;
    if (planned.withholdStored) return await commit(ctx, j, { ...planned, ...planned.withholdStored });
    return await commit(ctx, j, await fetchResponse(ctx, j, planned));
  } catch (err) {
    if (err instanceof NotStarted) return NOT_STARTED;
    if (err instanceof DeadlineError) return cutByDeadline(j, err);
    return failed(ctx, j, err);
  }
}

// --- listing and the report -----------------------------------------------------------------------

/**
 * The certificates of this run, sorted, and those refused by name (judged over the whole listing,
 * before `only`, so a collision with a certificate out of scope counts too); the state forgets
 * refused certificates and, without `only`, certificates that are gone.
 */
async function listCertificates(
  source: CertificateSource,
  state: RunState,
  only: ((key: string) => boolean) | undefined,
  naming: NamingOptions,
): Promise<{ objects: CertificateObject[]; refused: Map<string, RefusedKey> }> {
  let objects: CertificateObject[];
  try {
    objects = await source.list();
  } catch (err) {
    throw new RenewError('source', source.description, `cannot list: ${errorMessage(err)}`, { cause: err });
  }
  const refused = refusedKeys(
    objects.map((o) => o.key),
    naming,
  );
  for (const key of refused.keys()) state.delete(key);
  if (!only) {
    // Forget certificates that are gone, so the state does not grow forever.
    const listed = new Set(objects.map((o) => o.key));
    for (const key of state.keys()) if (!listed.has(key)) state.delete(key);
  } else objects = objects.filter((o) => only(o.key));
  return { objects: objects.sort((a, b) => compareKeys(a.key, b.key)), refused };
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
