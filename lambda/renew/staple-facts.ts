import type { StapleFacts } from '../core/refresh-policy.js';
import type { Verdict } from '../core/verdict.js';
import type { ReportRow, StateEntry } from './ports.js';

/** Staple facts: one shape, from a verdict or the state, to the row or the state. */

/** A verdict's facts, with what only the run knows (the responder's max-age, the certificate's notAfter). */
export function factsOf(
  verdict: Verdict,
  extra: Pick<StapleFacts, 'maxAgeUntil' | 'certNotAfter'>,
): StapleFacts {
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
export function factsFromState(s: StateEntry): StapleFacts {
  return {
    valid: true,
    certStatus: s.certStatus,
    thisUpdate: dateOf(s.thisUpdate),
    nextUpdate: dateOf(s.nextUpdate),
  };
}

/** Facts as the report row shows them. */
export function rowFacts(f: StapleFacts | undefined): Partial<ReportRow> {
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
export function stateFacts(f: StapleFacts | undefined): Partial<StateEntry> {
  if (!f) return {};
  return {
    ...(f.thisUpdate ? { thisUpdate: f.thisUpdate.toISOString() } : {}),
    ...(f.nextUpdate ? { nextUpdate: f.nextUpdate.toISOString() } : {}),
    ...(f.responderNotAfter ? { responderNotAfter: f.responderNotAfter.toISOString() } : {}),
    ...(f.maxAgeUntil ? { maxAgeUntil: f.maxAgeUntil.toISOString() } : {}),
  };
}

export const dateOf = (iso: string | undefined) => (iso ? new Date(iso) : undefined);
