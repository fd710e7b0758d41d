import { errorMessage, RenewError } from '../core/errors.js';
import { decideRefresh } from '../core/refresh-policy.js';
import { shouldReplace } from '../core/replace.js';
import type { Verdict } from '../core/verdict.js';
import { step, verdictOf, type Due, type Fetched, type Job, type RunContext } from './job.js';
import type { Outcome } from './outcome.js';
import { type Action, type StateEntry, withheldMarkerFor } from './ports.js';
import { factsOf, rowFacts, stateFacts } from './staple-facts.js';
import { storeStaple } from './store-staple.js';

/**
 * Store the new staple (and drop a withheld marker), or withhold: write the marker, then remove
 * the old staple, so a revoked certificate never keeps a "good" one and a host always knows why.
 */
export async function commit(ctx: RunContext, j: Job, f: Fetched & Due): Promise<Outcome> {
  const { key, staple } = j;
  const { action, reason, stapleTag, kept } = f.decision.replace
    ? await replaceStaple(ctx, j, f)
    : await withhold(ctx, j, f, f.decision);
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

/** What a commit did: the row's action and reason, the stored staple's tag and verdict. */
interface Committed {
  action: Action;
  reason: string;
  stapleTag: string | undefined;
  /** What is stored once this commits: the new response, or another writer's that won. */
  kept: Verdict;
}

/** Store the new staple unless it is the stored one, then drop the withheld marker. */
async function replaceStaple(ctx: RunContext, j: Job, f: Fetched & Due): Promise<Committed> {
  const { staple, prev } = j;
  const { verdict, decision, storedStaple } = f;
  let committed: Committed = {
    action: 'renewed',
    reason: decision.reason,
    stapleTag: storedStaple?.tag,
    kept: verdict,
  };
  if (!storedStaple?.der.equals(f.der)) committed = await writeStaple(ctx, j, f, committed);
  else committed = { ...committed, action: 'fresh', reason: 'responder returned the staple already stored' };
  await clearMarker(ctx, withheldMarkerFor(staple), prev, storedStaple !== undefined);
  return committed;
}

/** The conditional write: a concurrent writer's newer staple is never lost. */
async function writeStaple(
  ctx: RunContext,
  j: Job,
  f: Fetched & Due,
  renewed: Committed,
): Promise<Committed> {
  const { store } = ctx.deps;
  const { staple } = j;
  const { verdict, storedStaple } = f;
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
  if (outcome.written) return { ...renewed, stapleTag: outcome.tag };
  return {
    action: 'fresh',
    reason: 'another writer stored a staple at least as new meanwhile; kept it',
    stapleTag: outcome.current?.tag,
    kept: current?.valid ? current : verdict,
  };
}

/** Withhold: write the marker, then remove the stored staple. */
async function withhold(
  ctx: RunContext,
  j: Job,
  f: Fetched & Due,
  decision: Extract<Fetched['decision'], { replace: false }>,
): Promise<Committed> {
  const { store } = ctx.deps;
  const { staple } = j;
  const { verdict, storedStaple } = f;
  const marker = withheldMarkerFor(staple);
  const text = `withheld: certificate revoked (${verdict.thisUpdate?.toISOString() ?? 'unknown'})\n`;
  await step('store', marker, 'cannot write the withheld marker', () => store.putMarker(marker, text));
  if (storedStaple)
    await step('store', staple, 'cannot remove the withheld staple', () => store.delete(staple));
  return { action: decision.action, reason: decision.reason, stapleTag: undefined, kept: verdict };
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
