import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { parseCertificates, type Certificate } from '../core/certificate.js';
import type { HashName } from '../core/der.js';
import { DeadlineError, errorMessage, RenewError, type Stage } from '../core/errors.js';
import { resolveIssuer } from './issuer.js';
import { describeAttempts, NotStarted, queryResponders } from './ocsp-query.js';
import {
  DEFAULT_NAMING,
  refusedKeys,
  stapleKeyFor,
  type CertificateObject,
  type CertificateSource,
  type NamingOptions,
  type RefusedKey,
  type StapleStore,
  type StoredStaple,
  withheldMarkerFor,
  type Transport,
  ACTIONS,
  type Action,
  type ReportRow,
  type RunReport,
  type RunState,
  type StateEntry,
  type StateSink,
} from './ports.js';
import {
  decideRefresh,
  DEFAULT_POLICY,
  type RefreshPolicy,
  type StapleFacts,
} from '../core/refresh-policy.js';
import { shouldReplace, type OnRevoked, type ReplaceDecision } from '../core/replace.js';
import { storeStaple } from './store-staple.js';
import { judgeStaple, ValidationCache, type ValidationInput, type Verdict } from '../core/validate.js';

/** nextDue of a certificate that will not be due until its file changes. */
const NEVER = '9999-12-31T00:00:00.000Z';

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
  /** Persists each certificate's entry as it is decided (see StateSink); not told in dry runs. */
  stateSink?: StateSink;
  /**
   * Trust the state for certificates whose certificate and staple tags are unchanged and whose
   * next due time has not come: report them fresh without reading anything. Needs a staple store
   * that can list (S3, a directory), so a deleted or replaced staple is still noticed.
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
  /**
   * Checked before each certificate is started, and again when its first request gets its
   * per-host slot; true stops taking new work (those certificates are reported `notReached`).
   */
  shouldStop?: () => boolean;
  /**
   * Milliseconds left before the run's deadline: every OCSP request is bounded by it. A
   * certificate whose request it cuts is reported failed (reason "run deadline: …") without
   * counting as a failure for the backoff; the next run asks again.
   */
  timeLeft?: () => number;
  /**
   * The transport's own settings that decide whether a fetch can succeed (private responders
   * allowed, timeout), as a string: with hash, nonce and the certificate's OCSP URLs it makes the
   * settings fingerprint, whose change clears the backoff.
   */
  responderPolicy?: string;
  /** Called as each certificate finishes (a progress line, say): its row, finished so far, total. */
  onResult?: (result: ReportRow, done: number, total: number) => void;
}

/**
 * One renewal run, the way certmagic's updateOCSPStaples works: list, then for every certificate
 * plan → fetch → commit with bounded concurrency, and record its outcome. A failure becomes one
 * report row and never touches the stored staple; one bad certificate never stops the others.
 */
export async function run(deps: RunDeps, options: RunOptions = {}): Promise<RunReport> {
  const startedAt = deps.clock();
  const state = deps.state ?? new Map<string, StateEntry>();
  const naming = options.naming ?? DEFAULT_NAMING;
  const { objects, refused } = await listCertificates(deps.source, state, options.only, naming);
  const ctx: RunContext = {
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
  };
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
      const told = record(state, object, outcome, options.dryRun ? undefined : deps.stateSink);
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
  notReached.sort((a, b) => a.localeCompare(b));
  return reportOf(startedAt, deps.clock(), options.dryRun === true, results, notReached);
}

// --- the run's context and one certificate's job --------------------------------------------------

interface RunContext {
  deps: RunDeps;
  options: RunOptions;
  naming: NamingOptions;
  /** Listed certificates refused by name (unsafe, or sharing a staple key): one failed row each. */
  refused: Map<string, RefusedKey>;
  policy: RefreshPolicy;
  cache: ValidationCache;
  hostLimit: (url: string) => ReturnType<typeof pLimit>;
  /** Key → tag of every object in the staple store, when the state is trusted (S3). */
  stapleTags: Map<string, string> | undefined;
  /** Digest of the run-wide settings a fetch depends on: the first half of `StateEntry.settings`. */
  runSettings: string;
}

/** What one certificate's steps learn, as they learn it; the failure path reads what is there. */
interface Job {
  object: CertificateObject;
  key: string;
  staple: string;
  now: Date;
  forced: boolean;
  /** The state as the last run left it, with failures cleared once the settings changed. */
  prev: StateEntry;
  settings?: string;
  mustStaple?: boolean;
  /** The stored staple's verdict and facts. */
  storedVerdict?: Verdict;
  storedFacts?: StapleFacts;
  /** What the policy decides from: the stored staple, or a withheld revocation's window. */
  facts?: StapleFacts;
}

/**
 * A certificate's outcome: its report row and the state entry to keep (none: the state is left
 * as it was, for a replayed row or a dry run). `replay` is what a quiet run repeats, when that is
 * not the row itself.
 */
interface Outcome {
  row: ReportRow;
  state?: StateEntry;
  replay?: Pick<StateEntry, 'action' | 'reason'>;
}

/** A due certificate, ready to fetch. */
interface Due {
  leaf: Certificate;
  issuer: Certificate;
  storedStaple: StoredStaple | undefined;
}

/** A fetched response that may be committed: replaced, or withheld. */
interface Fetched {
  der: Buffer;
  url: string;
  verdict: Verdict;
  decision: Exclude<ReplaceDecision, { action: 'failed' }>;
  fetchedAt: Date;
  maxAgeUntil: Date | undefined;
}

function startJob(ctx: RunContext, state: RunState, object: CertificateObject): Job {
  const force = ctx.options.force;
  return {
    object,
    key: object.key,
    staple: stapleKeyFor(object.key, ctx.naming),
    now: ctx.deps.clock(),
    forced: typeof force === 'function' ? force(object.key) : force === true,
    prev: state.get(object.key) ?? { failures: 0 },
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
    return await commit(ctx, j, await fetchResponse(ctx, j, planned));
  } catch (err) {
    if (err instanceof NotStarted) return NOT_STARTED;
    if (err instanceof DeadlineError) return cutByDeadline(ctx, j, err);
    return failed(ctx, j, err);
  }
}

/**
 * The one place the per-certificate state is written: the step's entry, plus what every outcome
 * records (the certificate's tag, the action and reason a quiet run replays, the next due time);
 * the sink is told at once, and what it returns is awaited by the caller (nothing to await on
 * the quiet path, which records nothing).
 */
function record(
  state: RunState,
  object: CertificateObject,
  { row, state: entry, replay }: Outcome,
  sink: StateSink | undefined,
): void | Promise<void> {
  if (!entry) return;
  const recorded: StateEntry = {
    ...entry,
    certTag: object.tag,
    action: replay?.action ?? row.action,
    reason: replay?.reason ?? row.reason,
    ...(row.certStatus ? { certStatus: row.certStatus } : {}),
    ...(row.mustStaple !== undefined ? { mustStaple: row.mustStaple } : {}),
    ...(row.responder ? { responder: row.responder } : {}),
    // Skipped certificates (no OCSP URL, expired) stay skipped until the file changes.
    nextDue: row.nextDue ?? (row.action === 'skipped' ? NEVER : undefined),
  };
  state.set(object.key, recorded);
  return sink?.recorded(object.key, recorded);
}

// --- the steps ------------------------------------------------------------------------------------

/**
 * The quiet path: the state says the certificate and its staple are unchanged and nothing is due
 * yet, so the last outcome is replayed without reading anything. A failing certificate stays
 * failed, a withheld one stays loud.
 */
function replay(ctx: RunContext, j: Job): ReportRow | undefined {
  const { prev } = j;
  const quiet =
    ctx.stapleTags &&
    !j.forced &&
    prev.nextDue &&
    Date.parse(prev.nextDue) > j.now.getTime() &&
    prev.certTag === j.object.tag &&
    prev.stapleTag === ctx.stapleTags.get(j.staple) &&
    // Failures under other settings are read again (the certificate's URLs come with its tag).
    !(prev.failures > 0 && prev.settings?.split('.')[0] !== ctx.runSettings);
  if (!quiet) return undefined;
  const action = prev.action ?? 'fresh';
  return {
    key: j.key,
    staple: j.staple,
    action: action === 'renewed' ? 'fresh' : action,
    reason:
      action === 'failed'
        ? // Worded as the read path words it (decideRefresh's reason, then the last error).
          `backing off after ${prev.failures} failures: ${prev.lastError ?? 'earlier failure'}`
        : action === 'renewed'
          ? 'fresh'
          : (prev.reason ?? 'fresh'),
    ...(prev.certStatus ? { certStatus: prev.certStatus } : {}),
    ...(prev.thisUpdate ? { thisUpdate: prev.thisUpdate } : {}),
    ...(prev.nextUpdate ? { nextUpdate: prev.nextUpdate } : {}),
    nextDue: prev.nextDue,
    ...(prev.mustStaple !== undefined ? { mustStaple: prev.mustStaple } : {}),
  };
}

/**
 * Read and parse the certificate, find its issuer, read and validate the stored staple, decide.
 * Returns the outcome when nothing is to be fetched (skipped, fresh, withheld, backing off, a dry
 * run), else what the fetch needs.
 */
async function plan(ctx: RunContext, j: Job): Promise<Outcome | Due> {
  const { deps, options } = ctx;
  const { key, staple, now } = j;
  const bytes = await step('source', key, 'cannot read', () => deps.source.read(key));
  const certs = await step('parse', key, 'not a certificate', async () => parseCertificates(bytes));
  const leaf = certs[0]!;
  j.mustStaple = leaf.mustStaple;
  const skipped = (reason: string): Outcome => ({
    row: { key, staple, action: 'skipped', reason, mustStaple: j.mustStaple },
    state: j.prev,
  });
  if (leaf.ocspUrls.length === 0) return skipped('no OCSP URL in the certificate');
  if (leaf.notAfter.getTime() < now.getTime())
    return skipped(`certificate expired ${leaf.notAfter.toISOString()}`);

  j.settings = `${ctx.runSettings}.${digest(leaf.ocspUrls.join('\n'))}`;
  if (j.prev.failures > 0 && j.prev.settings !== j.settings) {
    // The settings a fetch depends on changed (a flag, the hash, the URLs): start afresh.
    j.prev = { ...j.prev, failures: 0, lastFailureAt: undefined, lastError: undefined };
  }
  const { prev } = j;
  const sibling = deps.source.readIssuerSibling?.bind(deps.source, key);
  const { issuer } = await step('issuer', key, 'issuer not found', () =>
    resolveIssuer(leaf, certs.slice(1), { sibling, pool: deps.issuerPool, download: deps.downloadIssuer }),
  );
  const storedStaple = await step('store', staple, 'cannot read the stored staple', () =>
    deps.store.get(staple),
  );
  if (storedStaple) {
    j.storedVerdict = verdictOf(storedStaple.der, {
      cert: leaf,
      issuer,
      now,
      skewMs: options.skewMs,
      cache: ctx.cache,
    });
    j.storedFacts = factsOf(j.storedVerdict, {
      maxAgeUntil: dateOf(prev.maxAgeUntil),
      certNotAfter: leaf.notAfter,
    });
  }
  // Withheld earlier: no staple on purpose. The revoked response's window says when to ask
  // again, as a staple's would, until the certificate file changes.
  const stillWithheld =
    !storedStaple &&
    prev.action === 'withheld' &&
    prev.certTag === j.object.tag &&
    prev.thisUpdate &&
    prev.nextUpdate;
  j.facts = stillWithheld ? { ...factsFromState(prev), certNotAfter: leaf.notAfter } : j.storedFacts;

  const decision = decideRefresh({
    key,
    staple: j.facts,
    failures: failuresOf(prev),
    force: j.forced,
    now,
    policy: ctx.policy,
  });
  const keep: StateEntry = {
    ...prev,
    settings: j.settings,
    stapleTag: storedStaple?.tag,
    ...stateFacts(j.storedFacts),
  };
  const nextDue = decision.nextDue.toISOString();
  if (!decision.due && stillWithheld && !decision.backingOff) {
    const reason = prev.reason ?? 'certificate is REVOKED; staple withheld';
    return {
      row: {
        key,
        staple,
        action: 'withheld',
        reason,
        ...rowFacts(j.facts),
        nextDue,
        mustStaple: j.mustStaple,
      },
      state: keep,
    };
  }
  if (!decision.due) {
    // Still failing, only waiting out the backoff: say so, with the last error.
    const action = decision.backingOff ? 'failed' : 'fresh';
    const reason = decision.backingOff
      ? `${decision.reason}: ${prev.lastError ?? 'earlier failure'}`
      : noteFailure(decision.reason, prev);
    return {
      row: { key, staple, action, reason, ...rowFacts(j.storedFacts), nextDue, mustStaple: j.mustStaple },
      state: keep,
    };
  }
  if (options.dryRun) {
    const reason = `would renew: ${decision.reason}`;
    return {
      row: { key, staple, action: 'due', reason, ...rowFacts(j.storedFacts), mustStaple: j.mustStaple },
    };
  }
  return { leaf, issuer, storedStaple };
}

/** Ask each OCSP URL in order until one answers validly, and decide whether it may be committed. */
async function fetchResponse(ctx: RunContext, j: Job, due: Due): Promise<Fetched & Due> {
  const { valid, attempts, notTried } = await queryResponders(due.leaf, due.issuer, ctx.deps.transport, {
    hash: ctx.options.hash ?? 'sha1',
    nonce: ctx.options.nonce === true,
    skewMs: ctx.options.skewMs,
    now: ctx.deps.clock,
    cache: ctx.cache,
    schedule: (url, request) => ctx.hostLimit(url)(request),
    timeLeft: ctx.options.timeLeft,
    shouldStop: ctx.options.shouldStop,
  });
  if (!valid) {
    const stage: Stage = attempts.some((a) => a.stage === 'validate') ? 'validate' : 'fetch';
    throw new RenewError(stage, j.key, describeAttempts(attempts, notTried), {
      code: attempts.at(-1)?.verdict.code,
    });
  }
  const decision = shouldReplace(j.storedVerdict, valid.verdict, ctx.options.onRevoked ?? 'publish');
  if (!decision.replace && decision.action === 'failed')
    throw new RenewError('validate', j.key, decision.reason, { code: decision.code });
  const fetchedAt = ctx.deps.clock();
  const maxAgeUntil =
    valid.maxAgeSec !== undefined ? new Date(fetchedAt.getTime() + valid.maxAgeSec * 1000) : undefined;
  return { ...due, der: valid.der, url: valid.url, verdict: valid.verdict, decision, fetchedAt, maxAgeUntil };
}

/**
 * Store the new staple (and drop a withheld marker), or withhold: write the marker, then remove
 * the old staple, so a revoked certificate never keeps a "good" one and a host always knows why.
 */
async function commit(ctx: RunContext, j: Job, f: Fetched & Due): Promise<Outcome> {
  const { store } = ctx.deps;
  const { key, staple, prev } = j;
  const { verdict, decision, storedStaple } = f;
  const marker = withheldMarkerFor(staple);
  let action: Action = 'renewed';
  let reason = decision.reason;
  let stapleTag = storedStaple?.tag;
  // What is stored once this commits: the new response, or another writer's that won.
  let kept = verdict;
  if (decision.replace) {
    if (!storedStaple?.der.equals(f.der)) {
      const meta = {
        thisUpdate: verdict.thisUpdate!,
        nextUpdate: verdict.nextUpdate,
        producedAt: verdict.producedAt,
        certStatus: verdict.certStatus ?? 'good',
        certTag: j.object.tag,
      };
      // Conditional on the staple read in plan: a concurrent writer's newer staple is never lost.
      let current: Verdict | undefined;
      const outcome = await step('store', staple, 'cannot write the staple', () =>
        storeStaple(store, staple, f.der, meta, storedStaple, (now) => {
          current =
            now &&
            verdictOf(now.der, {
              cert: f.leaf,
              issuer: f.issuer,
              now: j.now,
              skewMs: ctx.options.skewMs,
              cache: ctx.cache,
            });
          return shouldReplace(current, verdict, ctx.options.onRevoked ?? 'publish').replace;
        }),
      );
      if (outcome.written) stapleTag = outcome.tag;
      else {
        stapleTag = outcome.current?.tag;
        action = 'fresh';
        reason = 'another writer stored a staple at least as new meanwhile; kept it';
        if (current?.valid) kept = current;
      }
    } else {
      action = 'fresh';
      reason = 'responder returned the staple already stored';
    }
    await clearMarker(ctx, marker, prev, storedStaple !== undefined);
  } else {
    action = decision.action;
    const text = `withheld: certificate revoked (${verdict.thisUpdate?.toISOString() ?? 'unknown'})\n`;
    await step('store', marker, 'cannot write the withheld marker', () => store.putMarker(marker, text));
    if (storedStaple)
      await step('store', staple, 'cannot remove the withheld staple', () => store.delete(staple));
    stapleTag = undefined;
  }
  // The new staple's facts; for a withheld certificate the revoked response's, which time the
  // next check and show in the row.
  const facts = factsOf(kept, { maxAgeUntil: f.maxAgeUntil, certNotAfter: f.leaf.notAfter });
  const next = decideRefresh({ key, staple: facts, now: f.fetchedAt, policy: ctx.policy });
  return {
    row: {
      key,
      staple,
      responder: f.url,
      mustStaple: j.mustStaple,
      action,
      reason,
      ...rowFacts(facts),
      nextDue: next.nextDue.toISOString(),
    },
    state: { stapleTag, settings: j.settings, failures: 0, ...stateFacts(facts) },
  };
}

/** Any step's failure: one more failure for the backoff, the stored staple untouched. */
function failed(ctx: RunContext, j: Job, err: unknown): Outcome {
  const failure =
    err instanceof RenewError ? err : new RenewError('fetch', j.key, errorMessage(err), { cause: err });
  const state: StateEntry = {
    ...j.prev,
    // Failed before the certificate's URLs were known: the run's settings alone.
    settings: j.settings ?? ctx.runSettings,
    failures: j.prev.failures + 1,
    lastFailureAt: j.now.toISOString(),
    lastError: failure.message,
  };
  const next = decideRefresh({
    key: j.key,
    staple: j.facts,
    failures: failuresOf(state),
    now: j.now,
    policy: ctx.policy,
  });
  return {
    row: {
      key: j.key,
      staple: j.staple,
      action: 'failed',
      stage: failure.stage,
      ...(failure.code ? { code: failure.code } : {}),
      reason: failure.message,
      ...rowFacts(j.storedFacts),
      nextDue: next.nextDue.toISOString(),
      mustStaple: j.mustStaple,
    },
    state,
    // A forced renewal failed but the stored staple is valid and not due: the next runs say fresh.
    ...(!next.due && !next.backingOff
      ? { replay: { action: 'fresh', reason: noteFailure(next.reason, state) } }
      : {}),
  };
}

/**
 * A certificate refused by its name: a failed row, no state (nothing was tried, so no backoff),
 * and nothing read or written for it.
 */
function refusedOutcome(j: Job, refusal: RefusedKey): Outcome {
  const failure = new RenewError('source', j.key, refusal.reason, { code: refusal.code });
  return {
    row: {
      key: j.key,
      staple: j.staple,
      action: 'failed',
      stage: failure.stage,
      code: refusal.code,
      reason: failure.message,
    },
  };
}

/**
 * A request cut by the run's deadline: a failed row that says so, and no state entry, so the
 * backoff does not grow for a responder that was never given its time. The next run asks again.
 */
function cutByDeadline(ctx: RunContext, j: Job, err: DeadlineError): Outcome {
  const reason = `run deadline: ${err.message}; the next run asks again`;
  return {
    row: {
      key: j.key,
      staple: j.staple,
      action: 'failed',
      stage: err.stage,
      reason: new RenewError(err.stage, j.key, reason).message,
      ...rowFacts(j.storedFacts),
      mustStaple: j.mustStaple,
    },
  };
}

/**
 * A staple was written: the withheld marker beside it goes. Known absent from the listing: no
 * request. Otherwise a delete, whose failure matters only when a marker is known to be there.
 */
async function clearMarker(
  ctx: RunContext,
  marker: string,
  prev: StateEntry,
  hadStaple: boolean,
): Promise<void> {
  const { stapleTags } = ctx;
  if (stapleTags && !stapleTags.has(marker)) return;
  // Without a listing: a marker exists only where a staple was withheld, so a certificate whose
  // staple was stored and whose state does not say withheld has none (no request spent on it).
  if (!stapleTags && hadStaple && prev.action !== 'withheld') return;
  const known = stapleTags?.has(marker) === true || prev.action === 'withheld';
  try {
    await ctx.deps.store.delete(marker);
  } catch (err) {
    if (known) {
      throw new RenewError('store', marker, `cannot remove the withheld marker: ${errorMessage(err)}`, {
        cause: err,
      });
    }
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
  return { objects: objects.sort((a, b) => a.key.localeCompare(b.key)), refused };
}

/** The run report: its rows, with the counts and figures made from them in one pass. */
function reportOf(
  startedAt: Date,
  finishedAt: Date,
  dryRun: boolean,
  results: ReportRow[],
  notReached: string[],
): RunReport {
  const counts = Object.fromEntries(ACTIONS.map((a) => [a, 0])) as Record<Action, number>;
  // One pass, no array per measure (and no Math.min(...all), which overflows the stack at ~10^5).
  let revoked = 0;
  let leastNextUpdate = Infinity;
  for (const r of results) {
    counts[r.action]++;
    if (r.certStatus === 'revoked') revoked++;
    if (r.nextUpdate && r.action !== 'skipped')
      leastNextUpdate = Math.min(leastNextUpdate, Date.parse(r.nextUpdate));
  }
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    dryRun,
    counts,
    revoked,
    leastValidityHours:
      leastNextUpdate === Infinity ? undefined : (leastNextUpdate - finishedAt.getTime()) / 3_600_000,
    results,
    notReached,
  };
}

/**
 * A row as the report carries it: `key`, then the same key as `name` (its old spelling), then the
 * rest. Made as each certificate finishes (not in one copy of all N rows at the end).
 */
function withOldName({ key, ...rest }: ReportRow): ReportRow {
  return { key, name: key, ...rest };
}

/** At most `perHost` requests in flight to one responder host. */
function perHostLimiter(perHost: number): (url: string) => ReturnType<typeof pLimit> {
  const limits = new Map<string, ReturnType<typeof pLimit>>();
  return (url) => {
    let host = url;
    try {
      host = new URL(url).host;
    } catch {
      /* an invalid URL fails in the transport */
    }
    let limit = limits.get(host);
    if (!limit) limits.set(host, (limit = pLimit(perHost)));
    return limit;
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
    if (err instanceof DeadlineError) {
      throw new DeadlineError(`${what}: ${err.message}`, { cause: err, stage });
    }
    throw new RenewError(stage, key, `${what}: ${errorMessage(err)}`, { cause: err });
  }
}

/** Parses and validates; a staple that does not parse is simply an invalid verdict. */
function verdictOf(der: Buffer, input: ValidationInput): Verdict {
  return judgeStaple(der, input).verdict;
}

// --- staple facts: one shape, from a verdict or the state, to the row or the state ---------------

/** A verdict's facts, with what only the run knows (the responder's max-age, the certificate's notAfter). */
function factsOf(verdict: Verdict, extra: Pick<StapleFacts, 'maxAgeUntil' | 'certNotAfter'>): StapleFacts {
  return {
    valid: verdict.valid,
    certStatus: verdict.certStatus,
    revocationTime: verdict.revocationTime,
    revocationReason: verdict.revocationReason,
    thisUpdate: verdict.thisUpdate,
    nextUpdate: verdict.nextUpdate,
    responderNotAfter: verdict.responderCert?.notAfter,
    ...extra,
  };
}

/** The facts the state kept of a withheld revocation (there is no staple to read). */
function factsFromState(s: StateEntry): StapleFacts {
  return {
    valid: true,
    certStatus: s.certStatus,
    thisUpdate: dateOf(s.thisUpdate),
    nextUpdate: dateOf(s.nextUpdate),
  };
}

/** Facts as the report row shows them. */
function rowFacts(f: StapleFacts | undefined): Partial<ReportRow> {
  if (!f) return {};
  return {
    certStatus: f.certStatus,
    ...(f.revocationTime ? { revocationTime: f.revocationTime.toISOString() } : {}),
    ...(f.revocationReason ? { revocationReason: f.revocationReason } : {}),
    ...(f.thisUpdate ? { thisUpdate: f.thisUpdate.toISOString() } : {}),
    ...(f.nextUpdate ? { nextUpdate: f.nextUpdate.toISOString() } : {}),
  };
}

/** Facts as the state keeps them. */
function stateFacts(f: StapleFacts | undefined): Partial<StateEntry> {
  if (!f) return {};
  return {
    ...(f.thisUpdate ? { thisUpdate: f.thisUpdate.toISOString() } : {}),
    ...(f.nextUpdate ? { nextUpdate: f.nextUpdate.toISOString() } : {}),
    ...(f.responderNotAfter ? { responderNotAfter: f.responderNotAfter.toISOString() } : {}),
    ...(f.maxAgeUntil ? { maxAgeUntil: f.maxAgeUntil.toISOString() } : {}),
  };
}

const dateOf = (iso: string | undefined) => (iso ? new Date(iso) : undefined);

/** A short stable digest for the settings fingerprint. */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** `fresh` with the last failure noted, while failures are remembered. */
function noteFailure(reason: string, state: StateEntry): string {
  return state.failures > 0 && state.lastError
    ? `${reason} (last attempt failed: ${state.lastError})`
    : reason;
}

function failuresOf(state: StateEntry) {
  return state.failures > 0 && state.lastFailureAt
    ? { consecutive: state.failures, lastFailureAt: new Date(state.lastFailureAt) }
    : undefined;
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
