import type { Verdict } from './verdict.js';

export type OnRevoked = 'publish' | 'withhold';

/** Why a fetched response is refused though it validated (the run report row's `code`). */
type ReplaceRefusal = 'cert-status-unknown' | 'older-than-stored';

export type ReplaceDecision =
  | { replace: true; reason: string }
  | { replace: false; action: 'withheld'; reason: string }
  | { replace: false; action: 'failed'; reason: string; code: ReplaceRefusal | Verdict['code'] };

/**
 * Whether a freshly fetched staple replaces the stored one. Never worse: only a valid candidate,
 * never an "unknown" one, never one older (thisUpdate, then producedAt) than a valid stored staple.
 * An older answer is a failed renewal, not "fresh": the responder is behind (a stale cache or
 * CDN), and the stored staple keeps ageing towards its nextUpdate.
 * A revoked candidate is published by default, since clients must learn of the revocation;
 * `withhold` keeps it back (and the run report says so loudly either way).
 */
export function shouldReplace(
  stored: Verdict | undefined,
  candidate: Verdict,
  onRevoked: OnRevoked = 'publish',
): ReplaceDecision {
  if (!candidate.valid) {
    return {
      replace: false,
      action: 'failed',
      reason: `response invalid: ${candidate.errors.join('; ')}`,
      code: candidate.code,
    };
  }
  if (candidate.certStatus === 'unknown') {
    return {
      replace: false,
      action: 'failed',
      reason: 'responder does not know the certificate (unknown)',
      code: 'cert-status-unknown',
    };
  }
  if (candidate.certStatus === 'revoked' && onRevoked === 'withhold') {
    return {
      replace: false,
      action: 'withheld',
      reason: 'certificate is REVOKED; staple withheld (--on-revoked withhold)',
    };
  }
  if (stored?.valid && isOlder(candidate, stored)) {
    const when = (v: Verdict) => (v.thisUpdate ? v.thisUpdate.toISOString() : 'none');
    return {
      replace: false,
      action: 'failed',
      reason:
        `responder returned an older response than the stored staple ` +
        `(thisUpdate ${when(candidate)}, stored ${when(stored)})`,
      code: 'older-than-stored',
    };
  }
  return {
    replace: true,
    reason:
      candidate.certStatus === 'revoked' ? 'certificate is REVOKED; revoked staple published' : 'renewed',
  };
}

function isOlder(candidate: Verdict, stored: Verdict): boolean {
  const c = candidate.thisUpdate?.getTime() ?? 0;
  const e = stored.thisUpdate?.getTime() ?? 0;
  if (c !== e) return c < e;
  return (candidate.producedAt?.getTime() ?? 0) < (stored.producedAt?.getTime() ?? 0);
}
