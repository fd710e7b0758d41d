import { describe, expect, it } from 'vitest';
import { formatRunReport } from '../lambda/report/explain.js';
import type { ReportRow, RunReport } from '../lambda/renew/ports.js';

function report(results: ReportRow[], extra: Partial<RunReport> = {}): RunReport {
  const counts = { renewed: 0, fresh: 0, skipped: 0, withheld: 0, failed: 0, due: 0 };
  for (const r of results) counts[r.action]++;
  return {
    startedAt: '2030-01-01T00:00:00.000Z',
    finishedAt: '2030-01-01T00:00:01.000Z',
    dryRun: false,
    counts,
    revoked: results.filter((r) => r.certStatus === 'revoked').length,
    leastValidityHours: undefined,
    results,
    notReached: [],
    ...extra,
  };
}

describe('formatRunReport', () => {
  it('should print one row per certificate with the failing stage, and the counts', () => {
    const text = formatRunReport(
      report([
        { key: 'a.pem', staple: 'a.ocsp', action: 'renewed', reason: 'renewed', certStatus: 'good' },
        {
          key: 'b.pem',
          staple: 'b.ocsp',
          action: 'failed',
          stage: 'fetch',
          reason: 'fetch b.pem: HTTP 503',
        },
      ]),
    );
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^CERTIFICATE\s+ACTION\s+STATUS\s+NEXT UPDATE\s+NEXT DUE\s+REASON$/);
    expect(lines[1]).toMatch(/^a\.pem\s+renewed\s+good\s+-\s+-\s+renewed$/);
    expect(lines[2]).toMatch(/^b\.pem\s+failed\s+-\s+-\s+-\s+\[fetch\] fetch b\.pem: HTTP 503$/);
    expect(text).toContain('2 certificates: 1 renewed, 1 failed');
    expect(text).not.toContain('WARNING');
  });

  it('should warn about revoked certificates and failing must-staple certificates', () => {
    const text = formatRunReport(
      report([
        { key: 'r.pem', staple: 'r.ocsp', action: 'fresh', reason: 'fresh', certStatus: 'revoked' },
        {
          key: 'm.pem',
          staple: 'm.ocsp',
          action: 'failed',
          stage: 'validate',
          reason: 'x',
          mustStaple: true,
        },
        {
          key: 'n.pem',
          staple: 'n.ocsp',
          action: 'failed',
          stage: 'validate',
          reason: 'x',
          mustStaple: false,
        },
      ]),
    );
    expect(text).toContain('WARNING: 1 certificate(s) reported REVOKED by their responder');
    expect(text).toContain('WARNING: must-staple certificate(s) failing renewal: m.pem');
    expect(text).not.toContain('n.pem,');
  });

  it('should list what the deadline left for the next run, and say when it was a dry run', () => {
    const text = formatRunReport(report([], { notReached: ['x.pem', 'y.pem'], dryRun: true }));
    expect(text).toContain('not reached (next run): x.pem, y.pem');
    expect(text).toContain('dry run: nothing was fetched or written');
  });
});
