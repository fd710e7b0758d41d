/**
 * decideRefresh at fixed instants: every clock reading is an argument, never Date.now().
 */
import { describe, expect, it } from 'vitest';
import {
  checkPolicy,
  decideRefresh,
  DEFAULT_POLICY,
  type DueInput,
  type RefreshPolicy,
  type StapleFacts,
} from '../lambda/core/refresh-policy.js';
import { nextWake } from '../lambda/cli/daemon.js';
import { HOUR, MINUTE } from './helpers/time.js';
import type { RunReport } from '../lambda/renew/ports.js';

const DAY = 24 * HOUR;
const T0 = Date.parse('2030-03-01T00:00:00Z');
const KEY = 'certs/mail.example.com.pem';
const NO_JITTER: RefreshPolicy = { ...DEFAULT_POLICY, jitter: 0 };

const at = (ms: number) => new Date(ms);
/** A valid staple whose window opens at T0 and lasts `windowMs`. */
const valid = (windowMs: number, extra: Partial<StapleFacts> = {}): StapleFacts => ({
  valid: true,
  thisUpdate: at(T0),
  nextUpdate: at(T0 + windowMs),
  ...extra,
});
/** Where in its window (0..1) the next due instant falls. */
const fractionOf = (nextDue: Date, windowMs: number) => (nextDue.getTime() - T0) / windowMs;

describe('decideRefresh: what is due', () => {
  const cases: Array<{ name: string; input: DueInput; due: boolean; reason: RegExp }> = [
    {
      name: 'no staple is due',
      input: { key: KEY, staple: undefined, now: at(T0) },
      due: true,
      reason: /no staple/,
    },
    {
      name: 'an invalid staple is due',
      input: { key: KEY, staple: { valid: false }, now: at(T0) },
      due: true,
      reason: /invalid/,
    },
    {
      name: 'a fresh staple is due when forced',
      input: { key: KEY, staple: valid(7 * DAY), now: at(T0 + HOUR), force: true },
      due: true,
      reason: /forced/,
    },
    {
      name: 'a 7-day staple at 40 % is not due',
      input: { key: KEY, staple: valid(7 * DAY), now: at(T0 + 0.4 * 7 * DAY) },
      due: false,
      reason: /^fresh$/,
    },
    {
      name: 'a 7-day staple at 61 % is due',
      input: { key: KEY, staple: valid(7 * DAY), now: at(T0 + 0.61 * 7 * DAY) },
      due: true,
      reason: /refresh point passed/,
    },
    {
      name: 'a staple past its nextUpdate is due',
      input: { key: KEY, staple: valid(7 * DAY), now: at(T0 + 7 * DAY + 1) },
      due: true,
      reason: /expired/,
    },
    {
      name: 'a staple exactly at its nextUpdate is due',
      input: { key: KEY, staple: valid(7 * DAY), now: at(T0 + 7 * DAY) },
      due: true,
      reason: /expired/,
    },
  ];
  for (const { name, input, due, reason } of cases) {
    it(name, () => {
      const decision = decideRefresh(input);
      expect(decision.due).toBe(due);
      expect(decision.reason).toMatch(reason);
      if (due) expect(decision.nextDue).toEqual(input.now);
      else expect(decision.nextDue.getTime()).toBeGreaterThan(input.now.getTime());
    });
  }

  it('a 7-day staple at 40 % is next due between 40 % and 60 % of its window', () => {
    const { nextDue } = decideRefresh({ key: KEY, staple: valid(7 * DAY), now: at(T0 + 0.4 * 7 * DAY) });
    expect(fractionOf(nextDue, 7 * DAY)).toBeGreaterThanOrEqual(0.4);
    expect(fractionOf(nextDue, 7 * DAY)).toBeLessThanOrEqual(0.6);
  });
});

describe('decideRefresh: jitter', () => {
  const nextDueFor = (key: string, thisUpdate = T0) =>
    decideRefresh({
      key,
      staple: { valid: true, thisUpdate: at(thisUpdate), nextUpdate: at(thisUpdate + 7 * DAY) },
      now: at(thisUpdate),
    }).nextDue.getTime() - thisUpdate;

  it('is the same for the same key and thisUpdate', () => {
    expect(nextDueFor('a.pem')).toBe(nextDueFor('a.pem'));
  });

  it('differs across keys and across thisUpdates of one key', () => {
    expect(nextDueFor('a.pem')).not.toBe(nextDueFor('b.pem'));
    expect(nextDueFor('a.pem', T0)).not.toBe(nextDueFor('a.pem', T0 + HOUR));
  });

  it('stays within ±10 % of the window around 50 % over 200 keys, and spreads them', () => {
    const fractions = Array.from({ length: 200 }, (_, i) => nextDueFor(`certs/host-${i}.pem`) / (7 * DAY));
    for (const f of fractions) {
      expect(f).toBeGreaterThanOrEqual(0.4);
      expect(f).toBeLessThanOrEqual(0.6);
    }
    expect(new Set(fractions).size).toBeGreaterThan(190);
    expect(Math.min(...fractions)).toBeLessThan(0.43);
    expect(Math.max(...fractions)).toBeGreaterThan(0.57);
  });
});

describe('decideRefresh: the refresh point', () => {
  const cases: Array<{ name: string; policy: RefreshPolicy; staple: StapleFacts; at: number; due: boolean }> =
    [
      {
        name: 'refreshAt 0.8: not due at 79 %',
        policy: { ...NO_JITTER, refreshAt: 0.8 },
        staple: valid(10 * DAY),
        at: 7.9 * DAY,
        due: false,
      },
      {
        name: 'refreshAt 0.8: due at 80 %',
        policy: { ...NO_JITTER, refreshAt: 0.8 },
        staple: valid(10 * DAY),
        at: 8 * DAY,
        due: true,
      },
      {
        name: 'refreshAt 0.5: due at 61 %',
        policy: NO_JITTER,
        staple: valid(10 * DAY),
        at: 6.1 * DAY,
        due: true,
      },
      {
        name: 'a responder certificate expiring on day 2 of 7 makes it due at day 1.1',
        policy: NO_JITTER,
        staple: valid(7 * DAY, { responderNotAfter: at(T0 + 2 * DAY) }),
        at: 1.1 * DAY,
        due: true,
      },
      {
        name: 'without the responder certificate expiry it is not due at day 1.1',
        policy: NO_JITTER,
        staple: valid(7 * DAY),
        at: 1.1 * DAY,
        due: false,
      },
      {
        name: 'a responder certificate outliving nextUpdate changes nothing',
        policy: NO_JITTER,
        staple: valid(7 * DAY, { responderNotAfter: at(T0 + 30 * DAY) }),
        at: 3.4 * DAY,
        due: false,
      },
    ];
  for (const c of cases) {
    it(c.name, () => {
      expect(decideRefresh({ key: KEY, staple: c.staple, now: at(T0 + c.at), policy: c.policy }).due).toBe(
        c.due,
      );
    });
  }

  it('refreshAt 0.8 moves the next due instant to 80 % (70–90 % with the default jitter)', () => {
    const staple = valid(10 * DAY);
    const exact = decideRefresh({ key: KEY, staple, now: at(T0), policy: { ...NO_JITTER, refreshAt: 0.8 } });
    expect(fractionOf(exact.nextDue, 10 * DAY)).toBeCloseTo(0.8, 9);
    const jittered = decideRefresh({
      key: KEY,
      staple,
      now: at(T0),
      policy: { ...DEFAULT_POLICY, refreshAt: 0.8 },
    });
    expect(fractionOf(jittered.nextDue, 10 * DAY)).toBeGreaterThanOrEqual(0.7);
    expect(fractionOf(jittered.nextDue, 10 * DAY)).toBeLessThanOrEqual(0.9);
  });

  it('a responder certificate expiry ends the window early, and the reason says so', () => {
    const staple = valid(7 * DAY, { responderNotAfter: at(T0 + 2 * DAY) });
    const early = decideRefresh({ key: KEY, staple, now: at(T0), policy: NO_JITTER });
    expect(early.nextDue).toEqual(at(T0 + DAY));
    const due = decideRefresh({ key: KEY, staple, now: at(T0 + 1.1 * DAY), policy: NO_JITTER });
    expect(due.reason).toMatch(/responder certificate/);
    expect(decideRefresh({ key: KEY, staple, now: at(T0 + 2 * DAY), policy: NO_JITTER }).reason).toMatch(
      /expired/,
    );
  });
});

describe('decideRefresh: responder max-age', () => {
  const week = 7 * DAY;
  const cases: Array<{ name: string; input: DueInput; due: boolean; reason: RegExp }> = [
    {
      name: 'max-age in the future keeps a staple past its refresh point (70 %) from being due',
      input: {
        key: KEY,
        staple: valid(week, { maxAgeUntil: at(T0 + 0.7 * week + HOUR) }),
        now: at(T0 + 0.7 * week),
      },
      due: false,
      reason: /max-age/,
    },
    {
      name: 'max-age is overridden by force',
      input: {
        key: KEY,
        staple: valid(week, { maxAgeUntil: at(T0 + 0.7 * week + HOUR) }),
        now: at(T0 + 0.7 * week),
        force: true,
      },
      due: true,
      reason: /forced/,
    },
    {
      name: 'max-age that has passed no longer holds it back',
      input: {
        key: KEY,
        staple: valid(week, { maxAgeUntil: at(T0 + 0.7 * week - 1) }),
        now: at(T0 + 0.7 * week),
      },
      due: true,
      reason: /refresh point/,
    },
    {
      name: 'max-age is ignored in the last 24 h of a 7-day staple',
      input: {
        key: KEY,
        staple: valid(week, { maxAgeUntil: at(T0 + week + DAY) }),
        now: at(T0 + week - 23 * HOUR),
      },
      due: true,
      reason: /refresh point/,
    },
    {
      name: 'max-age still holds 25 h before the end of a 7-day staple',
      input: {
        key: KEY,
        staple: valid(week, { maxAgeUntil: at(T0 + week + DAY) }),
        now: at(T0 + week - 25 * HOUR),
      },
      due: false,
      reason: /max-age/,
    },
    {
      name: 'max-age is ignored in the last quarter of a 1-hour staple',
      input: { key: KEY, staple: valid(HOUR, { maxAgeUntil: at(T0 + 2 * HOUR) }), now: at(T0 + 46 * MINUTE) },
      due: true,
      reason: /refresh point/,
    },
    {
      name: 'max-age holds a 1-hour staple at 70 %',
      input: { key: KEY, staple: valid(HOUR, { maxAgeUntil: at(T0 + 2 * HOUR) }), now: at(T0 + 42 * MINUTE) },
      due: false,
      reason: /max-age/,
    },
  ];
  for (const { name, input, due, reason } of cases) {
    it(name, () => {
      const decision = decideRefresh(input);
      expect(decision.due).toBe(due);
      expect(decision.reason).toMatch(reason);
    });
  }

  it('a fresh staple under max-age is next due when max-age passes', () => {
    const maxAgeUntil = at(T0 + 0.7 * week + HOUR);
    const decision = decideRefresh({
      key: KEY,
      staple: valid(week, { maxAgeUntil }),
      now: at(T0 + 0.7 * week),
    });
    expect(decision.nextDue).toEqual(maxAgeUntil);
  });
});

describe('decideRefresh: backoff after failures', () => {
  const failedAt = T0 + 10 * DAY;
  const backoffCases = [
    { failures: 1, waitMs: 5 * MINUTE },
    { failures: 2, waitMs: 10 * MINUTE },
    { failures: 3, waitMs: 20 * MINUTE },
    { failures: 6, waitMs: 160 * MINUTE },
    { failures: 7, waitMs: 4 * HOUR },
    { failures: 40, waitMs: 4 * HOUR },
  ];
  for (const { failures, waitMs } of backoffCases) {
    it(`after ${failures} failure(s) without a staple it waits ${waitMs / MINUTE} min`, () => {
      const input = (now: number): DueInput => ({
        key: KEY,
        staple: undefined,
        failures: { consecutive: failures, lastFailureAt: at(failedAt) },
        now: at(now),
      });
      const waiting = decideRefresh(input(failedAt + 1));
      expect(waiting.due).toBe(false);
      expect(waiting.reason).toMatch(/backing off/);
      expect(waiting.nextDue).toEqual(at(failedAt + waitMs));
      expect(decideRefresh(input(failedAt + waitMs - 1)).due).toBe(false);
      expect(decideRefresh(input(failedAt + waitMs)).due).toBe(true);
    });
  }

  it('zero consecutive failures is no backoff', () => {
    const decision = decideRefresh({
      key: KEY,
      staple: undefined,
      failures: { consecutive: 0, lastFailureAt: at(failedAt) },
      now: at(failedAt + 1),
    });
    expect(decision.due).toBe(true);
  });

  // A valid 7-day staple (urgent: last min(24 h, 42 h) = 24 h) and a 1-hour one (urgent: last 15 min),
  // each with 3 failures, the last one just now.
  const week = 7 * DAY;
  const urgencyCases = [
    { name: '7-day staple, 25 h left: backs off', window: week, left: 25 * HOUR, due: false },
    { name: '7-day staple, 23 h left: tries despite the backoff', window: week, left: 23 * HOUR, due: true },
    { name: '1-hour staple, 20 min left: backs off', window: HOUR, left: 20 * MINUTE, due: false },
    {
      name: '1-hour staple, 14 min left: tries despite the backoff',
      window: HOUR,
      left: 14 * MINUTE,
      due: true,
    },
  ];
  for (const { name, window, left, due } of urgencyCases) {
    it(name, () => {
      const now = T0 + window - left;
      const decision = decideRefresh({
        key: KEY,
        staple: valid(window),
        failures: { consecutive: 3, lastFailureAt: at(now) },
        now: at(now),
      });
      expect(decision.due).toBe(due);
      if (!due) expect(decision.reason).toMatch(/backing off after 3 failures/);
    });
  }
});

describe('decideRefresh: backoff holds back due certificates only (issue 12, item 2)', () => {
  /** A 7-day staple, no jitter, `consecutive` failures, the last one at `now` (days into the window). */
  const failingAt = (days: number, consecutive: number) => {
    const now = T0 + days * DAY;
    const d = decideRefresh({
      key: KEY,
      staple: valid(7 * DAY),
      failures: { consecutive, lastFailureAt: at(now) },
      now: at(now),
      policy: NO_JITTER,
    });
    return { now, d };
  };

  it('a valid staple before its refresh point is fresh whatever the failures', () => {
    const { d } = failingAt(1.4, 5);
    expect(d).toMatchObject({ due: false, reason: 'fresh' });
    expect(d.backingOff).toBeUndefined();
    expect(d.nextDue).toEqual(at(T0 + 3.5 * DAY));
  });

  it('a fresh staple whose backoff outlasts the refresh point is next due when the backoff ends', () => {
    const { now, d } = failingAt(3.4, 10);
    expect(d).toMatchObject({ due: false, reason: 'fresh' });
    expect(d.nextDue).toEqual(at(now + 4 * HOUR));
  });

  it('past the refresh point the same failures back off', () => {
    expect(failingAt(4, 5).d).toMatchObject({
      due: false,
      backingOff: true,
      reason: 'backing off after 5 failures',
    });
  });
});

describe('decideRefresh over simulated runs, each due run renewing the staple', () => {
  /** Runs every `everyMs` for `forMs`; a due run "fetches" a response valid for `windowMs` from then. */
  function countFetches(windowMs: number, everyMs: number, forMs: number): number {
    let staple: StapleFacts | undefined;
    let fetches = 0;
    for (let now = T0; now < T0 + forMs; now += everyMs) {
      if (decideRefresh({ key: 'certs/sim.example.com.pem', staple, now: at(now) }).due) {
        fetches++;
        staple = { valid: true, thisUpdate: at(now), nextUpdate: at(now + windowMs) };
      }
    }
    return fetches;
  }

  it('a 1-hour window with runs every 5 min over 6 h fetches about every half hour (~12), not every run (72)', () => {
    const fetches = countFetches(HOUR, 5 * MINUTE, 6 * HOUR);
    expect(fetches).toBeGreaterThanOrEqual(9);
    expect(fetches).toBeLessThanOrEqual(15);
  });

  it('a 7-day window with hourly runs over 14 days fetches at the start and then every ~3.5 days (4–5), not every run (336)', () => {
    // Refresh points fall at 40–60 % of the window: 2.8–4.2 days apart, so 4 to 6 fetches in 14 days.
    const fetches = countFetches(7 * DAY, HOUR, 14 * DAY);
    expect(fetches).toBeGreaterThanOrEqual(4);
    expect(fetches).toBeLessThanOrEqual(6);
  });
});

describe('checkPolicy', () => {
  const cases: Array<{ name: string; policy: RefreshPolicy; ok: boolean }> = [
    { name: 'accepts the default policy', policy: DEFAULT_POLICY, ok: true },
    { name: 'accepts refreshAt 0.1', policy: { ...DEFAULT_POLICY, refreshAt: 0.1 }, ok: true },
    { name: 'accepts refreshAt 0.95', policy: { ...DEFAULT_POLICY, refreshAt: 0.95 }, ok: true },
    { name: 'rejects refreshAt 0.05', policy: { ...DEFAULT_POLICY, refreshAt: 0.05 }, ok: false },
    { name: 'rejects refreshAt 0.99', policy: { ...DEFAULT_POLICY, refreshAt: 0.99 }, ok: false },
    { name: 'rejects refreshAt NaN', policy: { ...DEFAULT_POLICY, refreshAt: Number.NaN }, ok: false },
  ];
  for (const { name, policy, ok } of cases) {
    it(name, () => {
      if (ok) expect(checkPolicy(policy)).toBe(policy);
      else expect(() => checkPolicy(policy)).toThrow(/refreshAt must be between 0.1 and 0.95/);
    });
  }
});

describe('decideRefresh: nextDue never passes the start of the last stretch', () => {
  // Regression: a long max-age or backoff once pushed nextDue past the point where every run tries.
  it('a max-age beyond nextUpdate is capped at nextUpdate - 24 h', () => {
    const d = decideRefresh({
      key: KEY,
      staple: valid(7 * DAY, { maxAgeUntil: at(T0 + 8 * DAY) }),
      now: at(T0 + HOUR),
      policy: NO_JITTER,
    });
    expect(d.due).toBe(false);
    expect(d.nextDue.getTime()).toBe(T0 + 6 * DAY);
  });

  it('a backoff ending after the last stretch starts is capped too', () => {
    const d = decideRefresh({
      key: KEY,
      staple: valid(7 * DAY),
      failures: { consecutive: 10, lastFailureAt: at(T0 + 5.95 * DAY) },
      now: at(T0 + 5.96 * DAY),
      policy: NO_JITTER,
    });
    expect(d.due).toBe(false);
    expect(d.nextDue.getTime()).toBe(T0 + 6 * DAY);
  });
});

describe('decideRefresh: properties over every allowed policy and window (issue 8, item 4)', () => {
  /** mulberry32: a seeded generator, so a failure reproduces. */
  function rng(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
  }
  const random = rng(8_4);
  const refreshAts = [
    0.1,
    0.25,
    0.5,
    0.7,
    0.8,
    0.9,
    0.95,
    ...Array.from({ length: 5 }, () => 0.1 + 0.85 * random()),
  ];
  const jitters = [0, 0.1, 0.25];
  // 1 h to 14 d: the edges, the usual windows, and random ones in between.
  const windows = [
    HOUR,
    4 * HOUR,
    24 * HOUR,
    4 * DAY,
    7 * DAY,
    14 * DAY,
    ...Array.from({ length: 14 }, () => HOUR + Math.floor(random() * (14 * DAY - HOUR))),
  ];
  const keys = Array.from(
    { length: 12 },
    (_, i) => `certs/${i}-${Math.floor(random() * 1e9)}.example.com.pem`,
  );
  const guardOf = (window: number, policy: RefreshPolicy) => Math.min(policy.urgentMs, window / 4);

  const combos = refreshAts.flatMap((refreshAt) =>
    jitters.flatMap((jitter) =>
      windows.map((window) => ({ policy: checkPolicy({ ...DEFAULT_POLICY, refreshAt, jitter }), window })),
    ),
  );

  it(`the refresh point is before nextUpdate minus the guard (${combos.length * keys.length} cases)`, () => {
    for (const { policy, window } of combos) {
      for (const key of keys) {
        const staple = valid(window);
        const first = decideRefresh({ key, staple, now: at(T0), policy });
        const where = `${key} refreshAt ${policy.refreshAt} jitter ${policy.jitter} window ${window / HOUR} h`;
        expect(first.due, where).toBe(false);
        const point = first.nextDue.getTime();
        expect(point, where).toBeLessThanOrEqual(T0 + window - guardOf(window, policy));
        expect(point, where).toBeGreaterThan(T0);
        // nextDue is the refresh point itself: not due just before it, due from it on.
        expect(decideRefresh({ key, staple, now: at(point - 1), policy }).due, where).toBe(false);
        expect(decideRefresh({ key, staple, now: at(point), policy }).due, where).toBe(true);
      }
    }
  });

  it('a fresh certificate is never next due in the past, and --persist never sleeps zero', () => {
    for (const { policy, window } of combos) {
      for (const key of keys.slice(0, 4)) {
        const staple = valid(window);
        for (let i = 0; i < 16; i++) {
          const now = T0 + Math.floor(random() * window);
          const d = decideRefresh({ key, staple, now: at(now), policy });
          const where = `${key} refreshAt ${policy.refreshAt} window ${window / HOUR} h at ${(now - T0) / HOUR} h`;
          if (!d.due) {
            expect(d.nextDue.getTime(), where).toBeGreaterThan(now);
            expect(now, where).toBeLessThan(T0 + window - guardOf(window, policy));
          }
        }
      }
    }
  });

  it('REFRESH_AT 0.95 with 7-day responses one minute before nextUpdate: all 1 000 certificates are due', () => {
    const policy = checkPolicy({ ...DEFAULT_POLICY, refreshAt: 0.95 });
    const stillFresh = Array.from({ length: 1000 }, (_, i) =>
      decideRefresh({
        key: `certs/${i}.pem`,
        staple: valid(7 * DAY),
        now: at(T0 + 7 * DAY - MINUTE),
        policy,
      }),
    ).filter((d) => !d.due);
    expect(stillFresh).toEqual([]);
  });

  it('REFRESH_AT 0.7 with 24-hour responses: no certificate is fresh inside the last 6 hours', () => {
    const policy = checkPolicy({ ...DEFAULT_POLICY, refreshAt: 0.7 });
    const stillFresh = Array.from({ length: 1000 }, (_, i) =>
      decideRefresh({ key: `certs/${i}.pem`, staple: valid(DAY), now: at(T0 + 18 * HOUR), policy }),
    ).filter((d) => !d.due);
    expect(stillFresh).toEqual([]);
  });

  it('the daemon sleeps at least its floor when a next-due time has already passed', () => {
    const report = {
      results: [
        { nextDue: new Date(T0 - HOUR).toISOString() },
        { nextDue: new Date(T0 + DAY).toISOString() },
      ],
    } as RunReport;
    expect(nextWake(report, T0, HOUR, 10_000)).toBe(T0 + 10_000);
    expect(nextWake({ results: [] as RunReport['results'] } as RunReport, T0, HOUR, 10_000)).toBe(T0 + HOUR);
    const later = { results: [{ nextDue: new Date(T0 + 20 * MINUTE).toISOString() }] } as RunReport;
    expect(nextWake(later, T0, HOUR, 10_000)).toBe(T0 + 20 * MINUTE);
  });
});

describe("decideRefresh: the certificate's notAfter caps the staple's useful life (issue 8, item 8)", () => {
  it('a nextUpdate after notAfter: next due before notAfter minus the guard, due as "certificate expiring"', () => {
    const notAfter = at(T0 + 2 * DAY);
    const staple = valid(7 * DAY, { certNotAfter: notAfter });
    const first = decideRefresh({ key: KEY, staple, now: at(T0), policy: NO_JITTER });
    expect(first.due).toBe(false);
    expect(first.nextDue).toEqual(at(T0 + DAY)); // half of thisUpdate → notAfter
    const late = decideRefresh({ key: KEY, staple, now: at(T0 + 1.5 * DAY), policy: NO_JITTER });
    expect(late).toMatchObject({ due: true, reason: 'certificate expiring' });
  });

  it('a notAfter after nextUpdate changes nothing', () => {
    const staple = valid(7 * DAY, { certNotAfter: at(T0 + 90 * DAY) });
    const d = decideRefresh({ key: KEY, staple, now: at(T0), policy: NO_JITTER });
    expect(d.nextDue).toEqual(at(T0 + 3.5 * DAY));
  });
});
