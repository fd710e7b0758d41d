import { RenewError, type Stage } from '../core/errors.js';
import { shouldReplace } from '../core/replace.js';
import type { Due, Fetched, Job, RunContext } from './job.js';
import { describeAttempts, queryResponders } from './ocsp-query.js';

/** What to do about a failure the operator can fix at the responder, by the verdict's code. */
const FAILURE_HINTS: Partial<Record<string, string>> = {
  'no-next-update':
    'a staple needs a nextUpdate: it tells the server when to fetch a fresh one and the client ' +
    'until when to trust it, so a response without one is never stapled; have the responder set ' +
    'it (openssl ocsp: -ndays 1)',
};

/** Ask each OCSP URL in order until one answers validly, and decide whether it may be committed. */
export async function fetchResponse(ctx: RunContext, j: Job, due: Due): Promise<Fetched & Due> {
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
    const code = attempts.at(-1)?.verdict.code;
    const hint = code === undefined ? undefined : FAILURE_HINTS[code];
    throw new RenewError(stage, j.key, `${describeAttempts(attempts, notTried)}${hint ? ` (${hint})` : ''}`, {
      code,
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
