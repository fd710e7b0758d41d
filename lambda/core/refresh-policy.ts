import { createHash } from 'node:crypto';

/**
 * When a staple is due for renewal. Pure: every instant comes in as an argument.
 *
 * Defaults and why:
 * - refreshAt 0.5: renew halfway through thisUpdate→nextUpdate (what certmagic and the Go
 *   ocsprenewer's default -timer-t1 do). A 7-day response is renewed after 3.5 days, leaving
 *   3.5 days of retries before it lapses; a 1-hour response is renewed every 30 minutes, not on
 *   every run, because the point scales with the window.
 * - jitter 0.1: the refresh point moves by up to ±10 % of the window, by a hash of the certificate
 *   key and thisUpdate (stable across runs, different across certificates), so thousands of
 *   certificates issued together do not all hit their CA in the same run.
 * - A delegated responder certificate that expires before nextUpdate ends the window early.
 * - Cache-Control max-age from the responder is honoured: no refetch before it passes (RFC 5019
 *   §6.2), unless forced or the staple is no longer valid.
 * - Failures back off exponentially, 5 min doubling up to 4 h, but once a valid staple is in its
 *   last quarter (at most the last 24 h) every run tries again: a backoff never lets it lapse.
 */
export interface RefreshPolicy {
  /** Fraction of thisUpdate→nextUpdate after which a staple is renewed, 0.1–0.95. */
  refreshAt: number;
  /** ± fraction of the window by which the refresh point is spread. */
  jitter: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Backoff is ignored once this little validity is left (capped at a quarter of the window). */
  urgentMs: number;
}

export const DEFAULT_POLICY: RefreshPolicy = {
  refreshAt: 0.5,
  jitter: 0.1,
  backoffBaseMs: 5 * 60_000,
  backoffMaxMs: 4 * 3_600_000,
  urgentMs: 24 * 3_600_000,
};

export function checkPolicy(policy: RefreshPolicy): RefreshPolicy {
  if (!(policy.refreshAt >= 0.1 && policy.refreshAt <= 0.95)) {
    throw new Error(`refreshAt must be between 0.1 and 0.95, got ${policy.refreshAt}`);
  }
  if (!(policy.jitter >= 0 && policy.jitter <= 0.25)) {
    throw new Error(`jitter must be between 0 and 0.25, got ${policy.jitter}`);
  }
  return policy;
}

/** What the renewer knows of the stored staple. */
export interface StapleFacts {
  /** Valid for this certificate now (signature, CertID, times). */
  valid: boolean;
  thisUpdate?: Date;
  nextUpdate?: Date;
  /** notAfter of the delegated responder certificate that signed it, if any. */
  responderNotAfter?: Date;
  /** Until when the responder asked not to be asked again (fetch time + max-age). */
  maxAgeUntil?: Date;
}

export interface FailureFacts {
  consecutive: number;
  lastFailureAt: Date;
}

export interface DueInput {
  /** Identifies the certificate for the jitter (its key or name). */
  key: string;
  staple: StapleFacts | undefined;
  failures?: FailureFacts;
  force?: boolean;
  now: Date;
  policy?: RefreshPolicy;
}

export interface DueDecision {
  due: boolean;
  /** Why, in words for the run report. */
  reason: string;
  /** When it will next be due (now when due). */
  nextDue: Date;
  /** Not due only because earlier failures are backing off: the renewal is still failing. */
  backingOff?: boolean;
}

export function decideRefresh(input: DueInput): DueDecision {
  const policy = input.policy ?? DEFAULT_POLICY;
  const { now, staple, failures } = input;
  const at = (ms: number) => new Date(ms);
  if (input.force) return { due: true, reason: 'forced', nextDue: now };

  const usable = staple?.valid && staple.thisUpdate && staple.nextUpdate;
  const backoffUntil = failures && failures.consecutive > 0 ? backoffEnd(failures, policy) : undefined;

  if (!usable) {
    const reason = staple ? 'staple invalid' : 'no staple';
    if (backoffUntil && backoffUntil > now.getTime()) {
      return {
        due: false,
        reason: `${reason}; backing off after ${failures!.consecutive} failures`,
        nextDue: at(backoffUntil),
        backingOff: true,
      };
    }
    return { due: true, reason, nextDue: now };
  }

  const thisUpdate = staple.thisUpdate!.getTime();
  const end = Math.min(staple.nextUpdate!.getTime(), staple.responderNotAfter?.getTime() ?? Infinity);
  const window = Math.max(end - thisUpdate, 0);
  const spread = policy.jitter * window * jitterUnit(input.key, thisUpdate);
  const refreshPoint = thisUpdate + policy.refreshAt * window + spread;
  const maxAge = staple.maxAgeUntil?.getTime() ?? 0;
  const urgentFrom = end - Math.min(policy.urgentMs, window / 4);
  const urgent = now.getTime() >= urgentFrom;
  // Neither max-age nor backoff may push the next try past the start of the last stretch.
  const capped = (t: number) => at(Math.min(t, urgentFrom));

  if (now.getTime() >= end) return { due: true, reason: 'staple expired', nextDue: now };
  if (backoffUntil && backoffUntil > now.getTime() && !urgent) {
    return {
      due: false,
      reason: `backing off after ${failures!.consecutive} failures`,
      backingOff: true,
      nextDue: capped(Math.max(backoffUntil, refreshPoint)),
    };
  }
  if (now.getTime() < refreshPoint) {
    return { due: false, reason: 'fresh', nextDue: capped(Math.max(refreshPoint, maxAge)) };
  }
  if (now.getTime() < maxAge && !urgent) {
    return { due: false, reason: 'fresh (responder max-age)', nextDue: capped(maxAge) };
  }
  const why =
    staple.responderNotAfter && staple.responderNotAfter.getTime() === end
      ? 'responder certificate expiring'
      : 'refresh point passed';
  return { due: true, reason: why, nextDue: now };
}

function backoffEnd(failures: FailureFacts, policy: RefreshPolicy): number {
  const exp = Math.min(failures.consecutive - 1, 30);
  const delay = Math.min(policy.backoffBaseMs * 2 ** exp, policy.backoffMaxMs);
  return failures.lastFailureAt.getTime() + delay;
}

/** A stable number in [-1, 1) from the key and thisUpdate. */
function jitterUnit(key: string, thisUpdate: number): number {
  const h = createHash('sha256').update(`${key}\0${thisUpdate}`).digest();
  return (h.readUInt32BE(0) / 2 ** 32) * 2 - 1;
}
