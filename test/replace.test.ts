/**
 * shouldReplace, "never worse": a fetched staple replaces the stored one only when it is valid,
 * known, and not older than a valid stored staple.
 */
import { describe, expect, it } from 'vitest';
import { shouldReplace, type OnRevoked } from '../lambda/core/replace.js';
import type { Verdict } from '../lambda/core/verdict.js';
import { HOUR } from './helpers/time.js';

const T0 = Date.parse('2030-03-01T00:00:00Z');

/** A valid "good" verdict with thisUpdate = producedAt = T0 + `hours`; override what a case needs. */
function verdict(hours: number, over: Partial<Verdict> = {}): Verdict {
  const time = new Date(T0 + hours * HOUR);
  return {
    valid: true,
    responseStatus: 'successful',
    certStatus: 'good',
    revocationTime: undefined,
    revocationReason: undefined,
    thisUpdate: time,
    nextUpdate: new Date(time.getTime() + 7 * 24 * HOUR),
    producedAt: time,
    signature: { valid: true, signer: 'issuer' },
    responderCert: undefined,
    errors: [],
    code: undefined,
    codes: [],
    ...over,
  };
}
const invalid = (hours: number, error: string) => verdict(hours, { valid: false, errors: [error] });

interface Case {
  name: string;
  existing: Verdict | undefined;
  candidate: Verdict;
  onRevoked?: OnRevoked;
  replace: boolean;
  action?: 'withheld' | 'failed';
  reason: RegExp;
}

const cases: Case[] = [
  {
    name: 'an invalid candidate never replaces, and its errors are the reason',
    existing: verdict(0),
    candidate: invalid(5, 'signature does not verify with the issuer key'),
    replace: false,
    action: 'failed',
    reason: /response invalid: signature does not verify/,
  },
  {
    name: 'an invalid candidate does not replace even an invalid stored staple',
    existing: invalid(0, 'expired'),
    candidate: invalid(5, 'responseStatus tryLater'),
    replace: false,
    action: 'failed',
    reason: /tryLater/,
  },
  {
    name: 'an "unknown" candidate never replaces',
    existing: verdict(0),
    candidate: verdict(5, { certStatus: 'unknown' }),
    replace: false,
    action: 'failed',
    reason: /unknown/,
  },
  {
    name: 'an "unknown" candidate is not stored even with nothing stored',
    existing: undefined,
    candidate: verdict(5, { certStatus: 'unknown' }),
    replace: false,
    action: 'failed',
    reason: /unknown/,
  },
  {
    name: 'a revoked candidate is published by default, loudly',
    existing: verdict(0),
    candidate: verdict(5, { certStatus: 'revoked', revocationTime: new Date(T0) }),
    replace: true,
    reason: /REVOKED/,
  },
  {
    name: 'a revoked candidate is published with onRevoked publish',
    existing: verdict(0),
    candidate: verdict(5, { certStatus: 'revoked' }),
    onRevoked: 'publish',
    replace: true,
    reason: /REVOKED/,
  },
  {
    name: 'a revoked candidate is withheld with onRevoked withhold',
    existing: verdict(0),
    candidate: verdict(5, { certStatus: 'revoked' }),
    onRevoked: 'withhold',
    replace: false,
    action: 'withheld',
    reason: /REVOKED.*withheld/,
  },
  {
    name: 'a candidate with an older thisUpdate than a valid stored staple is not stored',
    existing: verdict(5),
    candidate: verdict(4),
    replace: false,
    action: 'failed',
    reason: /older/,
  },
  {
    name: 'same thisUpdate but an older producedAt is not stored',
    existing: verdict(5),
    candidate: verdict(5, { producedAt: new Date(T0 + 4 * HOUR) }),
    replace: false,
    action: 'failed',
    reason: /older/,
  },
  {
    name: 'same thisUpdate and a newer producedAt replaces',
    existing: verdict(5),
    candidate: verdict(5, { producedAt: new Date(T0 + 6 * HOUR) }),
    replace: true,
    reason: /renewed/,
  },
  {
    name: 'a newer thisUpdate replaces',
    existing: verdict(5),
    candidate: verdict(6),
    replace: true,
    reason: /renewed/,
  },
  {
    name: 'the same response again replaces (not older)',
    existing: verdict(5),
    candidate: verdict(5),
    replace: true,
    reason: /renewed/,
  },
  {
    name: 'an invalid stored staple is replaced even by an older candidate',
    existing: invalid(5, 'expired: nextUpdate has passed'),
    candidate: verdict(4),
    replace: true,
    reason: /renewed/,
  },
  {
    name: 'with nothing stored, a valid candidate is stored',
    existing: undefined,
    candidate: verdict(4),
    replace: true,
    reason: /renewed/,
  },
];

describe('shouldReplace (never worse)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const decision = shouldReplace(c.existing, c.candidate, c.onRevoked);
      expect(decision.replace).toBe(c.replace);
      expect(decision.reason).toMatch(c.reason);
      if (!decision.replace) expect(decision.action).toBe(c.action);
    });
  }
});
