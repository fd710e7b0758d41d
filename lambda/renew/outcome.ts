import { DeadlineError, errorMessage, RenewError } from '../core/errors.js';
import { decideRefresh } from '../core/refresh-policy.js';
import { plural } from '../core/plural.js';
import type { Job, RunContext } from './job.js';
import type { CertificateObject, RefusedKey, ReportRow, RunState, StateEntry, StateSink } from './ports.js';
import { rowFacts } from './staple-facts.js';

/** nextDue of a certificate that will not be due until its file changes. */
const NEVER = '9999-12-31T00:00:00.000Z';

/**
 * A certificate's outcome: its report row and the state entry to keep (none: the state is left
 * as it was, for a replayed row or a dry run). `replay` is what a quiet run repeats, when that is
 * not the row itself.
 */
export interface Outcome {
  row: ReportRow;
  state?: StateEntry;
  replay?: Pick<StateEntry, 'action' | 'reason'>;
}

/**
 * The one place the per-certificate state is written: the step's entry, plus what every outcome
 * records (the certificate's tag, the action and reason a quiet run replays, the next due time);
 * the sink is told at once, and what it returns is awaited by the caller (nothing to await on
 * the quiet path, which records nothing).
 */
export function record(
  state: RunState,
  object: CertificateObject,
  { row, state: entry, replay }: Outcome,
  policy: string,
  sink: StateSink | undefined,
): void | Promise<void> {
  if (!entry) return;
  const recorded: StateEntry = {
    ...entry,
    certTag: object.tag,
    policy,
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

/**
 * The quiet path: the state says the certificate and its staple are unchanged and nothing is due
 * yet, so the last outcome is replayed without reading anything. A failing certificate stays
 * failed, a withheld one stays loud.
 */
export function replay(ctx: RunContext, j: Job): ReportRow | undefined {
  const { prev } = j;
  const quiet =
    ctx.stapleTags &&
    !j.forced &&
    prev.nextDue &&
    Date.parse(prev.nextDue) > j.now.getTime() &&
    prev.certTag === j.object.tag &&
    prev.stapleTag === ctx.stapleTags.get(j.staple) &&
    // Decided under another refresh policy or revoked-handling setting: decide again.
    prev.policy === ctx.policyDigest &&
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
          `backing off after ${plural(prev.failures, 'failure')}: ${prev.lastError ?? 'earlier failure'}`
        : action === 'renewed'
          ? 'fresh'
          : (prev.reason ?? 'fresh'),
    ...(prev.certStatus ? { certStatus: prev.certStatus } : {}),
    ...(prev.thisUpdate ? { thisUpdate: prev.thisUpdate } : {}),
    ...(prev.nextUpdate ? { nextUpdate: prev.nextUpdate } : {}),
    // A skipped certificate is due "never" (until its file changes): no date to show.
    ...(prev.nextDue !== NEVER ? { nextDue: prev.nextDue } : {}),
    ...(prev.mustStaple !== undefined ? { mustStaple: prev.mustStaple } : {}),
  };
}

/** Any step's failure: one more failure for the backoff, the stored staple untouched. */
export function failed(ctx: RunContext, j: Job, err: unknown): Outcome {
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
      ...failedRow(j, failure),
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
export function refusedOutcome(j: Job, refusal: RefusedKey): Outcome {
  const failure = new RenewError('source', j.key, refusal.reason, { code: refusal.code });
  return {
    row: failedRow(j, failure),
  };
}

/**
 * A request cut by the run's deadline: a failed row that says so, and no state entry, so the
 * backoff does not grow for a responder that was never given its time. The next run asks again.
 */
export function cutByDeadline(j: Job, err: DeadlineError): Outcome {
  const reason = `run deadline: ${err.message}; the next run asks again`;
  return {
    row: {
      ...failedRow(j, new RenewError(err.stage, j.key, reason)),
      ...rowFacts(j.storedFacts),
      mustStaple: j.mustStaple,
    },
  };
}

/** A failed row's first fields: the certificate, the failure's stage, code and message. */
function failedRow(j: Job, failure: RenewError): ReportRow {
  return {
    key: j.key,
    staple: j.staple,
    action: 'failed',
    stage: failure.stage,
    ...(failure.code ? { code: failure.code } : {}),
    reason: failure.message,
  };
}

/** `fresh` with the last failure noted, while failures are remembered. */
export function noteFailure(reason: string, state: StateEntry): string {
  return state.failures > 0 && state.lastError
    ? `${reason} (last attempt failed: ${state.lastError})`
    : reason;
}

export function failuresOf(state: StateEntry) {
  return state.failures > 0 && state.lastFailureAt
    ? { consecutive: state.failures, lastFailureAt: new Date(state.lastFailureAt) }
    : undefined;
}
