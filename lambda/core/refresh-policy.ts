import { createHash } from 'node:crypto';
import type { CertStatus } from './ocsp-response.js';
import { plural } from './plural.js';

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
 *   certificates issued together do not all hit their CA in the same run. It never moves the
 *   point below half of refreshAt.
 * - A delegated responder certificate that expires before nextUpdate ends the window early, and so
 *   does the certificate's own notAfter: a staple is of no use after its certificate expires.
 * - The lapse guard: the last stretch of the window (a quarter of it, at most 24 h) is never
 *   "fresh". The jittered refresh point is clamped to its start, so refreshAt 0.95 with ±10 %
 *   jitter cannot put the refresh point past nextUpdate.
 * - Cache-Control max-age from the responder is honoured: no refetch before it passes (RFC 5019
 *   §6.2), unless forced or the staple is no longer valid.
 * - Failures back off exponentially, 5 min doubling up to 4 h. Backoff holds back only a due
 *   certificate (a valid staple before its refresh point is fresh whatever failed before), and
 *   once a valid staple is in the lapse guard every run tries again.
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

/**
 * What the renewer knows of a staple (or of a withheld revoked response): the one shape of its
 * status and times, built from a verdict or the run state, read by the policy, and written to the
 * run report and the state.
 */
export interface StapleFacts {
  /** Valid for this certificate now (signature, CertID, times). */
  valid: boolean;
  certStatus?: CertStatus;
  revocationTime?: Date;
  revocationReason?: string;
  thisUpdate?: Date;
  nextUpdate?: Date;
  /** notAfter of the delegated responder certificate that signed it, if any. */
  responderNotAfter?: Date;
  /** Until when the responder asked not to be asked again (fetch time + max-age). */
  maxAgeUntil?: Date;
  /** The certificate's notAfter: the staple's useful life ends there, whatever its nextUpdate. */
  certNotAfter?: Date;
}

interface FailureFacts {
  consecutive: number;
  lastFailureAt: Date;
}

export interface DueInput {
  /** Identifies the certificate for the jitter (its key). */
  key: string;
  staple: StapleFacts | undefined;
  failures?: FailureFacts;
  force?: boolean;
  now: Date;
  policy?: RefreshPolicy;
}

interface DueDecision {
  /** The refresh point (or max-age, or the lapse guard) has come: renew now, backoff allowing. */
  due: boolean;
  /** Why, in words for the run report. */
  reason: string;
  /** When it will next be due (now when due). */
  nextDue: Date;
  /**
   * Due, but held back by the backoff after earlier failures: the renewal is still failing. A
   * certificate that is not due is never backing off, whatever its failures.
   */
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
        reason: `${reason}; backing off after ${plural(failures!.consecutive, 'failure')}`,
        nextDue: at(backoffUntil),
        backingOff: true,
      };
    }
    return { due: true, reason, nextDue: now };
  }

  const thisUpdate = staple.thisUpdate!.getTime();
  const { end, endedBy } = usefulEnd(staple);
  const window = Math.max(end - thisUpdate, 0);
  const maxAge = staple.maxAgeUntil?.getTime() ?? 0;
  const urgentFrom = lapseGuardStart(thisUpdate, end, policy);
  // Clamped below by half of refreshAt (refreshAt 0.1 with ±25 % jitter must not make a staple
  // due the moment it is fetched) and above by the lapse guard. Whole milliseconds, as a Date
  // holds them: at nextDue it is due, never a fraction short.
  const fraction = Math.max(
    policy.refreshAt + policy.jitter * jitterUnit(input.key, thisUpdate),
    policy.refreshAt / 2,
  );
  const refreshPoint = Math.floor(Math.min(thisUpdate + fraction * window, urgentFrom));
  const urgent = now.getTime() >= urgentFrom;
  // Neither max-age nor backoff may push the next try past the start of the last stretch.
  const capped = (t: number) => at(Math.min(t, urgentFrom));

  const backoff = backoffUntil && backoffUntil > now.getTime() ? backoffUntil : 0;
  if (now.getTime() >= end) return { due: true, reason: 'staple expired', nextDue: now };
  // Not due is fresh, whatever the backoff: backoff only holds back a certificate that is due.
  if (now.getTime() < refreshPoint) {
    return { due: false, reason: 'fresh', nextDue: capped(Math.max(refreshPoint, maxAge, backoff)) };
  }
  if (now.getTime() < maxAge && !urgent) {
    return { due: false, reason: 'fresh (responder max-age)', nextDue: capped(Math.max(maxAge, backoff)) };
  }
  if (backoff && !urgent) {
    return {
      due: false,
      reason: `backing off after ${plural(failures!.consecutive, 'failure')}`,
      backingOff: true,
      nextDue: capped(backoff),
    };
  }
  const why =
    endedBy === 'responder'
      ? 'responder certificate expiring'
      : endedBy === 'certificate'
        ? 'certificate expiring'
        : 'refresh point passed';
  return { due: true, reason: why, nextDue: now };
}

/**
 * Where the staple stops being of use: nextUpdate, cut short by the delegated responder
 * certificate's notAfter or the certificate's own notAfter, whichever comes first.
 */
function usefulEnd(staple: Pick<StapleFacts, 'nextUpdate' | 'responderNotAfter' | 'certNotAfter'>): {
  end: number;
  endedBy: 'nextUpdate' | 'responder' | 'certificate';
} {
  const nextUpdate = staple.nextUpdate?.getTime() ?? Infinity;
  const responder = staple.responderNotAfter?.getTime() ?? Infinity;
  const cert = staple.certNotAfter?.getTime() ?? Infinity;
  const end = Math.min(nextUpdate, responder, cert);
  if (end === responder && responder < nextUpdate) return { end, endedBy: 'responder' };
  if (end === cert && cert < nextUpdate) return { end, endedBy: 'certificate' };
  return { end, endedBy: 'nextUpdate' };
}

/** The start of the lapse guard: the last quarter of the window, at most the last `urgentMs`. */
function lapseGuardStart(thisUpdate: number, end: number, policy: RefreshPolicy = DEFAULT_POLICY): number {
  const window = Math.max(end - thisUpdate, 0);
  return Math.floor(end - Math.min(policy.urgentMs, window / 4));
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
