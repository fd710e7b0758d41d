/**
 * The status model, the page's sorting and the progress line: pure functions at fixed instants.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatProgress, formatSeconds } from '../lambda/report/progress.js';
import {
  buildStatus,
  StatusBuilder,
  formatHours,
  formatStatus,
  type StateEntryView,
  type StatusEntry,
} from '../lambda/core/status.js';
import {
  compareCells,
  escapeHtml,
  renderStatusPage,
  sortKey,
  sortRows,
} from '../lambda/report/status-page.js';
import { terminalProgress } from '../lambda/cli/progress.js';
import type { ReportRow } from '../lambda/renew/ports.js';

const NOW = new Date('2030-03-01T12:00:00Z');
const H = 3_600_000;
const iso = (hoursFromNow: number) => new Date(NOW.getTime() + hoursFromNow * H).toISOString();
const fresh = (extra: Partial<StateEntryView> = {}): StateEntryView => ({
  failures: 0,
  thisUpdate: iso(-24),
  nextUpdate: iso(6 * 24),
  certStatus: 'good',
  nextDue: iso(48),
  action: 'fresh',
  reason: 'fresh',
  responder: 'http://ocsp.example.net:8080/ocsp',
  ...extra,
});
const entry = (
  certificate: string,
  state?: StateEntryView,
  more: Partial<StatusEntry> = {},
): StatusEntry => ({
  certificate,
  staple: certificate.replace(/\.pem$/, '.ocsp'),
  ...(state ? { state } : {}),
  ...more,
});

const FLEET: StatusEntry[] = [
  entry('a-good.pem', fresh()),
  entry('b-due.pem', fresh({ nextDue: iso(-1) })),
  entry('c-revoked.pem', fresh({ certStatus: 'revoked' })),
  entry(
    'd-failing-with-staple.pem',
    fresh({ failures: 3, lastError: 'fetch d: responder 503', lastFailureAt: iso(-2) }),
  ),
  entry('e-first-staple-failing.pem', {
    failures: 1,
    lastError: 'fetch e: connection refused',
    action: 'failed',
  }),
  entry('f-lapsing.pem', fresh({ nextUpdate: iso(5) })),
  entry('g-no-ocsp.pem', { failures: 0, action: 'skipped', reason: 'no OCSP URL in the certificate' }),
  entry('h-lapsed.pem', fresh({ nextUpdate: iso(-2) })),
];

describe('buildStatus', () => {
  const report = buildStatus(FLEET, NOW, 24);
  const health = Object.fromEntries(report.rows.map((r) => [r.certificate, r.health]));

  it('should judge each certificate', () => {
    expect(health).toEqual({
      'a-good.pem': 'healthy',
      'b-due.pem': 'due',
      'c-revoked.pem': 'revoked',
      'd-failing-with-staple.pem': 'healthy',
      'e-first-staple-failing.pem': 'failing',
      'f-lapsing.pem': 'lapsing',
      'g-no-ocsp.pem': 'skipped',
      'h-lapsed.pem': 'failing',
    });
  });

  it('should order the most urgent first: failing (least validity first), revoked, lapsing, due, healthy, skipped', () => {
    expect(report.rows.map((r) => r.certificate)).toEqual([
      'e-first-staple-failing.pem',
      'h-lapsed.pem',
      'c-revoked.pem',
      'f-lapsing.pem',
      'b-due.pem',
      'a-good.pem',
      'd-failing-with-staple.pem',
      'g-no-ocsp.pem',
    ]);
  });

  it('should summarise with the least validity and the number needing attention', () => {
    expect(report.summary).toMatchObject({
      total: 8,
      healthy: 2,
      due: 1,
      failing: 2,
      revoked: 1,
      lapsing: 1,
      skipped: 1,
      attention: 4,
      leastValidityHours: -2,
      leastValidityCertificate: 'h-lapsed.pem',
    });
  });

  it('should carry the last error, the responder host and human validity', () => {
    const d = report.rows.find((r) => r.certificate === 'd-failing-with-staple.pem')!;
    expect(d).toMatchObject({
      lastError: 'fetch d: responder 503',
      failures: 3,
      responderHost: 'ocsp.example.net:8080',
      validityLeft: '6d 0h',
    });
    expect(d.why).toBe('fresh');
    expect(d.note).toBe('last attempt failed 2h 0m ago (3 attempts in a row): fetch d: responder 503');
  });

  it('should judge health from the staple: failed attempts behind a staple with margin are a note', () => {
    const failed = {
      failures: 1,
      lastError: 'fetch x: responder 503',
      lastFailureAt: iso(-1),
      action: 'fresh',
    };
    const judged = (state: StateEntryView, more: Partial<StatusEntry> = {}) =>
      buildStatus([entry('x.pem', state, more)], NOW, 24).rows[0]!;
    // 23 h 59 m left of a one-day staple after a failed --force: healthy, with the failure noted.
    const oneDay = fresh({ ...failed, thisUpdate: iso(0), nextUpdate: iso(23.99), nextDue: iso(12) });
    expect(buildStatus([entry('x.pem', oneDay)], NOW).rows[0]).toMatchObject({
      health: 'healthy',
      why: 'fresh',
      note: 'last attempt failed 1h 0m ago: fetch x: responder 503',
    });
    // Lapsing within the warning window while attempts fail: failing. Lapsing alone: lapsing.
    expect(judged(fresh({ ...failed, nextUpdate: iso(5) }))).toMatchObject({
      health: 'failing',
      why: 'less than 1d 0h of validity left; last attempt failed 1h 0m ago: fetch x: responder 503',
    });
    expect(judged(fresh({ nextUpdate: iso(5) })).health).toBe('lapsing');
    // No staple or an unreadable one is failing, with or without failed attempts.
    expect(judged({ failures: 0 }, { reading: null })).toMatchObject({ health: 'failing', why: 'no staple' });
    expect(judged(fresh(failed), { reading: { error: 'not an OCSP response: x' } }).health).toBe('failing');
    // Revoked is revoked, never failing: failed attempts, lapsed or withheld.
    expect(judged(fresh({ ...failed, certStatus: 'revoked' })).health).toBe('revoked');
    expect(judged(fresh({ ...failed, certStatus: 'revoked', nextUpdate: iso(-3) })).health).toBe('revoked');
    expect(judged({ failures: 0, action: 'withheld', reason: 'certificate revoked' }).health).toBe('revoked');
  });

  it('should agree in the table, the JSON and the page: counts, badges and notes', () => {
    const fleet = [
      entry(
        'fresh-after-failure.pem',
        fresh({ failures: 2, lastError: 'fetch: 503', lastFailureAt: iso(-2) }),
      ),
      entry('revoked.pem', fresh({ certStatus: 'revoked', failures: 1, lastError: 'fetch: 503' })),
    ];
    const r = buildStatus(fleet, NOW, 24);
    expect(r.summary).toMatchObject({ healthy: 1, revoked: 1, failing: 0, attention: 1 });
    const text = formatStatus(r);
    expect(text).toContain('fresh-after-failure.pem: fresh; last attempt failed 2h 0m ago');
    expect(text).toMatch(/^fresh-after-failure\.pem\s+healthy\s/m);
    expect(text).toMatch(/^revoked\.pem\s+revoked\s/m);
    const json = JSON.parse(JSON.stringify(r)) as typeof r;
    expect(json.rows.map((row) => [row.certificate, row.health])).toEqual([
      ['revoked.pem', 'revoked'],
      ['fresh-after-failure.pem', 'healthy'],
    ]);
    const page = renderStatusPage(r);
    expect(page).toContain('<b>1</b> revoked</div>');
    expect(page).toContain('<b>0</b> failing</div>');
    expect(page).toMatch(/data-certificate="fresh-after-failure.pem" data-health="healthy"/);
    expect(page).toContain(
      '<div class="note">last attempt failed 2h 0m ago (2 attempts in a row): fetch: 503</div>',
    );
    expect(page).not.toMatch(/data-certificate="revoked.pem" data-health="failing"/);
  });

  it('should prefer what the staple itself says over the remembered times', () => {
    const r = buildStatus(
      [entry('x.pem', fresh(), { reading: { thisUpdate: iso(-1), nextUpdate: iso(2), certStatus: 'good' } })],
      NOW,
      24,
    );
    expect(r.rows[0]).toMatchObject({ health: 'lapsing', validityHours: 2 });
    const gone = buildStatus([entry('x.pem', fresh(), { reading: null })], NOW);
    expect(gone.rows[0]).toMatchObject({ health: 'failing', why: 'no staple' });
    const bad = buildStatus(
      [entry('x.pem', undefined, { reading: { error: 'not an OCSP response: x' } })],
      NOW,
    );
    expect(bad.rows[0]!.why).toBe('staple unreadable: not an OCSP response: x');
  });

  it('should judge a staple without state as due once half its window has passed', () => {
    const reading = { thisUpdate: iso(-72), nextUpdate: iso(48), certStatus: 'good' as const };
    expect(buildStatus([entry('x.pem', undefined, { reading })], NOW).rows[0]!.health).toBe('due');
  });

  it('should warn at a quarter of a short window by default, and at warnHours when given', () => {
    // A one-day staple 14 h old: renewed at half-way, not lapsing by default (6 h), lapsing at 24 h.
    const oneDay = [entry('x.pem', fresh({ thisUpdate: iso(-14), nextUpdate: iso(10), nextDue: iso(-2) }))];
    expect(buildStatus(oneDay, NOW).rows[0]!.health).toBe('due');
    expect(buildStatus(oneDay, NOW).warnCappedByWindow).toBe(true);
    expect(buildStatus(oneDay, NOW, 24).rows[0]).toMatchObject({
      health: 'lapsing',
      why: 'less than 1d 0h of validity left',
    });
  });

  it('should lower the warning threshold with warnHours', () => {
    expect(buildStatus(FLEET, NOW, 4).summary.lapsing).toBe(0);
  });

  it('should print a table and a summary line', () => {
    const text = formatStatus(report);
    expect(text.split('\n')[0]).toMatch(/^CERTIFICATE\s+HEALTH\s+STATUS/);
    expect(text).toContain(
      'e-first-staple-failing.pem: no staple; last attempt failed: fetch e: connection refused',
    );
    expect(text.trimEnd().split('\n').at(-1)).toBe(
      '2 healthy, 1 due, 2 failing, 1 revoked, 1 lapsing, 1 skipped; least validity -2h 0m (h-lapsed.pem)',
    );
  });
});

describe('StatusBuilder', () => {
  it('should count every entry but keep only the most urgent rows when bounded', () => {
    const builder = new StatusBuilder(NOW, { warn: 24, keep: 3 });
    // Each entry added twice over: the bound is applied while adding, not only at the end.
    for (const e of [...FLEET, ...FLEET.map((e) => ({ ...e, certificate: `z-${e.certificate}` }))])
      builder.add(e);
    const bounded = builder.report();
    const full = buildStatus(FLEET, NOW, 24);
    // Every count is twice the full status's: nothing is lost to the bound.
    const twice = (n: number) => 2 * n;
    expect(full.summary).toMatchObject({ total: 8, healthy: 2, failing: 2, attention: 4 });
    expect(bounded.summary).toEqual({
      ...full.summary,
      total: twice(full.summary.total),
      healthy: twice(full.summary.healthy),
      due: twice(full.summary.due),
      failing: twice(full.summary.failing),
      revoked: twice(full.summary.revoked),
      lapsing: twice(full.summary.lapsing),
      skipped: twice(full.summary.skipped),
      attention: twice(full.summary.attention),
    });
    expect(bounded.rows.map((r) => r.certificate)).toEqual([
      'e-first-staple-failing.pem',
      'z-e-first-staple-failing.pem',
      'h-lapsed.pem',
    ]);
    expect(renderStatusPage(bounded)).toContain('13 more certificates, least urgent, not listed');
  });
});

describe('formatHours', () => {
  it.each([
    [76.5, '3d 4h'],
    [5.2, '5h 12m'],
    [0.7, '42m'],
    [-2.25, '-2h 15m'],
  ])('should write %f hours as %s', (hours, text) => {
    expect(formatHours(hours)).toBe(text);
  });
});

describe('status page', () => {
  const report = buildStatus(FLEET, NOW, 24);

  it('should escape every value', () => {
    const nasty = buildStatus(
      [entry('<script>alert(1)</script>.pem', { failures: 1, lastError: '"><img src=x onerror=alert(1)>' })],
      NOW,
    );
    const html = renderStatusPage(nasty);
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).toContain(escapeHtml('<script>alert(1)</script>.pem'));
  });

  it('should escape file names, subjects, URLs and error text in every place they appear (issue 20, keep)', () => {
    const bad = '"><img src=x onerror=alert(1)><script>alert(2)</script>';
    const page = renderStatusPage(
      buildStatus(
        [
          // A file name; an error text naming the subject and a SAN; a responder URL; a reason.
          entry(`${bad}.pem`, {
            failures: 2,
            lastError: `fetch x: responder for CN=${bad}, DNS:${bad}: 503`,
            responder: `http://${bad}/`,
            thisUpdate: iso(-1),
            nextUpdate: iso(20),
            nextDue: iso(-1),
          }),
          entry('skipped.pem', { failures: 0, action: 'skipped', reason: `no OCSP URL (${bad})` }),
          entry('url.pem', fresh({ responder: `http://ocsp.example.net/${bad}` })),
        ],
        NOW,
      ),
    );
    expect(page).not.toMatch(/<img|<script>alert/);
    // Each value is there, escaped (the certificate in its cell and its data attribute).
    expect(page.split(escapeHtml(`${bad}.pem`)).length - 1).toBeGreaterThanOrEqual(3);
    expect(page).toContain(escapeHtml(`CN=${bad}, DNS:${bad}`));
    expect(page).toContain(escapeHtml(`no OCSP URL (${bad})`));
  });

  it('should load nothing from elsewhere', () => {
    const html = renderStatusPage(report);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(|https?:\/\//);
  });

  it('should carry a Content-Security-Policy allowing only its own style and script, by hash (issue 20)', () => {
    const html = renderStatusPage(report);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toBeDefined();
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(csp!.split('; ')).toEqual([
      "default-src 'none'",
      `style-src ${hash(style)}`,
      `script-src ${hash(script)}`,
      "base-uri 'none'",
      "form-action 'none'",
    ]);
    expect(html).not.toContain('unsafe-inline');
    // The policy comes before anything it governs, and nothing needs more than it allows.
    expect(html.indexOf('Content-Security-Policy')).toBeLessThan(html.indexOf('<style>'));
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html.match(/<style/g)).toHaveLength(1);
    expect(html).not.toMatch(/ style="| on[a-z]+="/);
  });

  it('should sort by validity ascending and descending, ties keeping their order', () => {
    const asc = sortRows(report.rows, (r) => sortKey(r, 'validity'), false).map((r) => r.certificate);
    expect(asc.slice(0, 3)).toEqual(['e-first-staple-failing.pem', 'g-no-ocsp.pem', 'h-lapsed.pem']);
    const desc = sortRows(report.rows, (r) => sortKey(r, 'validity'), true).map((r) => r.certificate);
    expect(desc.at(-1)).toBe('g-no-ocsp.pem');
    // Four rows have 6 days left: they keep the urgency order they had.
    expect(desc.slice(0, 4)).toEqual([
      'c-revoked.pem',
      'b-due.pem',
      'a-good.pem',
      'd-failing-with-staple.pem',
    ]);
  });

  it('should sort names as text and numbers as numbers', () => {
    expect(compareCells(9, 10, false)).toBeLessThan(0);
    expect(compareCells('b', 'a', false)).toBeGreaterThan(0);
    expect(compareCells('b', 'a', true)).toBeLessThan(0);
  });
});

describe('progress line', () => {
  it('should show done/total, failures, rate and ETA', () => {
    expect(formatProgress({ done: 1200, total: 10_000, failed: 3, elapsedMs: 15_000 })).toBe(
      'renew 1200/10000 (12%) · 3 failed · 80/s · ETA 1m 50s',
    );
    expect(formatProgress({ done: 3, total: 4, failed: 0, elapsedMs: 2_000 })).toBe(
      'renew 3/4 (75%) · 0 failed · 1.5/s · ETA 1s',
    );
    expect(formatSeconds(3725)).toBe('1h 02m');
  });

  it('should draw nothing when the stream is not a terminal', () => {
    expect(terminalProgress({ isTTY: false, write: () => true })).toBeUndefined();
  });

  it('should redraw one line at most every 100 ms, always the last, and erase it at the end', () => {
    const written: string[] = [];
    let t = 0;
    const line = terminalProgress({ isTTY: true, write: (s: string) => (written.push(s), true) }, () => t)!;
    const row = (action: ReportRow['action']) => ({ key: 'x', staple: 'x', action, reason: '' });
    t = 150;
    line.onResult(row('renewed'), 1, 3);
    t = 160;
    line.onResult(row('failed'), 2, 3);
    t = 170;
    line.onResult(row('renewed'), 3, 3);
    line.finish();
    expect(written).toEqual([
      '\r\x1b[2Krenew 1/3 (33%) · 0 failed · 6.7/s · ETA 1s',
      '\r\x1b[2Krenew 3/3 (100%) · 1 failed · 18/s · ETA 0s',
      '\r\x1b[2K',
    ]);
  });
});
