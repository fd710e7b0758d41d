import { errorMessage } from './errors.js';
import { parseOcspResponse, type CertStatus } from './ocsp-response.js';
import { printable } from './printable.js';

/**
 * The status of a fleet of staples at one instant, built from what the renewer remembers (its run
 * state) and, when they were read, the staples themselves. Pure: the caller reads, this decides.
 */

/** Health of one certificate, most urgent first. */
export type Health = 'failing' | 'revoked' | 'lapsing' | 'due' | 'healthy' | 'skipped';
export const HEALTH_ORDER: readonly Health[] = ['failing', 'revoked', 'lapsing', 'due', 'healthy', 'skipped'];

/**
 * Lapsing: less than 24 h of validity left by default (the stack's LeastValidity alarm default,
 * and the point after which the refresh policy ignores backoff), or less than a quarter of the
 * staple's window when that is shorter, as the policy's urgency is: a CA that signs one-day
 * responses is renewed at 12 h left and is not lapsing then. An explicit warnHours is absolute.
 */
export const DEFAULT_WARN_HOURS = 24;

/**
 * The part of a state entry (renew/ports.ts's `StateEntry`) that status reads: what the renewer
 * remembers of one certificate. Core cannot import renew/, hence this view.
 */
export interface StateEntryView {
  failures: number;
  lastFailureAt?: string;
  lastError?: string;
  thisUpdate?: string;
  nextUpdate?: string;
  certStatus?: CertStatus;
  nextDue?: string;
  action?: string;
  reason?: string;
  mustStaple?: boolean;
  responder?: string;
}

/** What reading the staple itself showed (the directory case). */
interface StapleReading {
  thisUpdate?: string;
  nextUpdate?: string;
  certStatus?: CertStatus;
  /** Set when the staple could not be read or parsed. */
  error?: string;
}

export interface StatusEntry {
  /** The certificate's key; the staple's key when no certificate is known. */
  certificate: string;
  staple: string;
  state?: StateEntryView;
  /** Undefined: not read (state only); `null`: looked for and absent. */
  reading?: StapleReading | null;
  mustStaple?: boolean;
  /** The responder URL (from the certificate, or the one that answered last). */
  responder?: string;
  /** Why the renewer leaves it alone (no OCSP URL, expired certificate), when known without state. */
  skippedBecause?: string;
  /** Why the renewer refuses it by name (unsafe, or sharing its staple with another certificate). */
  refused?: string;
}

export interface StatusRow {
  certificate: string;
  staple: string;
  health: Health;
  /** Why this health, in words. */
  why: string;
  /**
   * A failed attempt behind a staple that is still good enough (`last attempt failed 2h 0m ago:
   * …`): worth reading, not an alarm. Health comes from the staple, never from this alone.
   */
  note?: string;
  certStatus?: CertStatus;
  thisUpdate?: string;
  nextUpdate?: string;
  /** Hours until nextUpdate (negative: lapsed). */
  validityHours?: number;
  /** validityHours in human units: `3d 4h`, `lapsed 2h ago`. */
  validityLeft: string;
  nextDue?: string;
  lastOutcome?: string;
  lastError?: string;
  failures: number;
  mustStaple?: boolean;
  responderHost?: string;
}

interface StatusSummary {
  total: number;
  healthy: number;
  due: number;
  failing: number;
  revoked: number;
  lapsing: number;
  skipped: number;
  /** Least validity over all certificates that have a staple, in hours. */
  leastValidityHours?: number;
  leastValidityCertificate?: string;
  /** failing + revoked + lapsing: a monitoring check fails when this is above 0. */
  attention: number;
}

export interface StatusReport {
  generatedAt: string;
  warnHours: number;
  /** True when warnHours was the default, so a short window lowers it (see DEFAULT_WARN_HOURS). */
  warnCappedByWindow: boolean;
  summary: StatusSummary;
  rows: StatusRow[];
}

const HOUR_MS = 3_600_000;

export function buildStatus(entries: readonly StatusEntry[], now: Date, warn?: number): StatusReport {
  const builder = new StatusBuilder(now, { warn });
  for (const entry of entries) builder.add(entry);
  return builder.report();
}

/**
 * buildStatus one entry at a time: the summary counts every entry, the rows keep only the `keep`
 * most urgent (all by default). With a bound, memory stays O(keep) whatever the number of
 * certificates, as the Lambda's page over a state table of 10^6 items needs.
 */
export class StatusBuilder {
  private rows: StatusRow[] = [];
  private readonly counts = new Map<Health, number>(HEALTH_ORDER.map((h) => [h, 0]));
  private total = 0;
  private least: StatusRow | undefined;
  private readonly warnHours: number;
  private readonly warn: number | undefined;
  private readonly keep: number;

  constructor(
    private readonly now: Date,
    options: { warn?: number; keep?: number } = {},
  ) {
    this.warn = options.warn;
    this.warnHours = options.warn ?? DEFAULT_WARN_HOURS;
    this.keep = options.keep ?? Infinity;
  }

  add(entry: StatusEntry): void {
    const row = statusRow(entry, this.now, this.warnHours, this.warn === undefined);
    this.total++;
    this.counts.set(row.health, this.counts.get(row.health)! + 1);
    if (
      row.validityHours !== undefined &&
      row.health !== 'skipped' &&
      (this.least === undefined || row.validityHours < this.least.validityHours!)
    ) {
      this.least = row;
    }
    this.rows.push(row);
    // Sorting once per `keep` rows added keeps the work O(n log keep) and the memory O(keep).
    if (this.rows.length >= 2 * this.keep) this.rows = this.rows.sort(byUrgency).slice(0, this.keep);
  }

  report(): StatusReport {
    const rows = this.rows.sort(byUrgency).slice(0, this.keep);
    const count = (h: Health) => this.counts.get(h)!;
    const least = this.least;
    const summary: StatusSummary = {
      total: this.total,
      healthy: count('healthy'),
      due: count('due'),
      failing: count('failing'),
      revoked: count('revoked'),
      lapsing: count('lapsing'),
      skipped: count('skipped'),
      ...(least
        ? { leastValidityHours: round2(least.validityHours!), leastValidityCertificate: least.certificate }
        : {}),
      attention: 0,
    };
    summary.attention = summary.failing + summary.revoked + summary.lapsing;
    return {
      generatedAt: this.now.toISOString(),
      warnHours: this.warnHours,
      warnCappedByWindow: this.warn === undefined,
      summary,
      rows,
    };
  }
}

function statusRow(e: StatusEntry, now: Date, warnHours: number, capByWindow: boolean): StatusRow {
  const s = e.state;
  const times = stapleTimes(e, now);
  const failures = s?.failures ?? 0;
  const fields = rowFields(e, times, failures);
  // Attempts are failing: failures counted, or the last outcome a failure (a deadline cut, say).
  const attemptsFail = failures > 0 || s?.action === 'failed';
  const failure = attemptsFail ? failureText(s, failures, now) : undefined;
  const [health, why] = judgeHealth(e, times, failure, { now, warnHours, capByWindow });
  const note = failure && health !== 'failing' && health !== 'skipped' ? failure : undefined;
  return { ...fields, health, why, ...(note ? { note } : {}) };
}

/** A staple's status and times as a status row shows them, with the hours left at `now`. */
interface StapleTimes {
  thisUpdate: string | undefined;
  nextUpdate: string | undefined;
  certStatus: CertStatus | undefined;
  validityHours: number | undefined;
}

/** The staple as read wins over the remembered times: it is what the server sends. */
function stapleTimes(e: StatusEntry, now: Date): StapleTimes {
  const s = e.state;
  const reading = e.reading ?? undefined;
  const thisUpdate = reading?.thisUpdate ?? (e.reading === null ? undefined : s?.thisUpdate);
  const nextUpdate = reading?.nextUpdate ?? (e.reading === null ? undefined : s?.nextUpdate);
  const certStatus = reading?.certStatus ?? (e.reading === null ? undefined : s?.certStatus);
  const validityHours =
    nextUpdate !== undefined ? (Date.parse(nextUpdate) - now.getTime()) / HOUR_MS : undefined;
  return { thisUpdate, nextUpdate, certStatus, validityHours };
}

/** A status row's fields before its health: what the staple says and what the renewer remembers. */
function rowFields(e: StatusEntry, times: StapleTimes, failures: number): Omit<StatusRow, 'health' | 'why'> {
  const s = e.state;
  const { thisUpdate, nextUpdate, certStatus, validityHours } = times;
  const lastError = s?.lastError;
  const responder = e.responder ?? s?.responder;
  return {
    certificate: e.certificate,
    staple: e.staple,
    ...(certStatus ? { certStatus } : {}),
    ...(thisUpdate ? { thisUpdate } : {}),
    ...(nextUpdate ? { nextUpdate } : {}),
    ...(validityHours !== undefined ? { validityHours: round2(validityHours) } : {}),
    // Rounded as the summary's least validity is, so the row and the summary say the same.
    validityLeft: validityHours === undefined ? '—' : formatHours(round2(validityHours)),
    ...(s?.nextDue && !s.nextDue.startsWith('9999') ? { nextDue: s.nextDue } : {}),
    ...(s?.action ? { lastOutcome: s.action } : {}),
    ...(lastError && failures > 0 ? { lastError } : {}),
    failures,
    ...((e.mustStaple ?? s?.mustStaple) !== undefined ? { mustStaple: e.mustStaple ?? s?.mustStaple } : {}),
    ...(responder ? { responderHost: hostOf(responder) } : {}),
  };
}

/** `last attempt failed 2h 0m ago: <error>` (`… failed 3 times …` after several). */
function failureText(s: StateEntryView | undefined, failures: number, now: Date): string {
  const when = s?.lastFailureAt ? Date.parse(s.lastFailureAt) : NaN;
  const ago = Number.isNaN(when) ? '' : ` ${formatHours((now.getTime() - when) / HOUR_MS)} ago`;
  const times = failures > 1 ? ` (${failures} attempts in a row)` : '';
  const error = s?.lastError ?? (s?.action === 'failed' ? s.reason : undefined) ?? 'see the run report';
  return `last attempt failed${ago}${times}: ${error}`;
}

/**
 * Health comes from the staple a server sends: missing, unreadable or lapsed is failing; lapsing
 * within the warning window is failing only while attempts to renew it fail. A failed attempt
 * behind a staple with margin is a note, not a failure. Revoked is revoked, whatever else holds.
 */
function judgeHealth(
  e: StatusEntry,
  times: StapleTimes,
  failure: string | undefined,
  policy: { now: Date; warnHours: number; capByWindow: boolean },
): [Health, string] {
  const s = e.state;
  const reading = e.reading ?? undefined;
  const { thisUpdate, nextUpdate, certStatus, validityHours } = times;
  const { now, warnHours, capByWindow } = policy;
  if (e.refused) return ['failing', e.refused];
  const skipped = e.skippedBecause ?? (s?.action === 'skipped' ? s.reason : undefined);
  if (skipped && !reading) return ['skipped', skipped];
  if (reading?.error) return ['failing', `staple unreadable: ${reading.error}`];
  if (certStatus === 'revoked' || certStatus === 'unknown' || s?.action === 'withheld') {
    return [
      'revoked',
      s?.action === 'withheld' ? `withheld: ${s.reason ?? certStatus}` : `responder says ${certStatus}`,
    ];
  }
  if (!nextUpdate) {
    const what = thisUpdate ? 'staple has no nextUpdate' : 'no staple';
    return ['failing', failure ? `${what}; ${failure}` : what];
  }
  if (validityHours! <= 0) {
    const lapsed = `staple lapsed ${formatHours(-validityHours!)} ago`;
    return ['failing', failure ? `${lapsed}; ${failure}` : lapsed];
  }
  const windowHours = thisUpdate ? (Date.parse(nextUpdate) - Date.parse(thisUpdate)) / HOUR_MS : Infinity;
  const threshold = capByWindow ? Math.min(warnHours, windowHours / 4) : warnHours;
  if (validityHours! < threshold) {
    const lapsing = `less than ${formatHours(threshold)} of validity left`;
    return failure ? ['failing', `${lapsing}; ${failure}`] : ['lapsing', lapsing];
  }
  if (s?.nextDue && Date.parse(s.nextDue) <= now.getTime()) return ['due', 'renewal due'];
  if (!s?.nextDue && thisUpdate && nextUpdate) {
    // No state: due once half the window has passed (the default policy's refresh point).
    const half = (Date.parse(thisUpdate) + Date.parse(nextUpdate)) / 2;
    if (half <= now.getTime()) return ['due', 'past half of its validity window'];
  }
  return ['healthy', 'fresh'];
}

/** Most urgent first: by health, then least validity (none first), then name. */
function byUrgency(a: StatusRow, b: StatusRow): number {
  const h = HEALTH_ORDER.indexOf(a.health) - HEALTH_ORDER.indexOf(b.health);
  if (h !== 0) return h;
  const va = a.validityHours ?? -Infinity;
  const vb = b.validityHours ?? -Infinity;
  if (va !== vb) return va < vb ? -1 : 1;
  return a.certificate < b.certificate ? -1 : a.certificate > b.certificate ? 1 : 0;
}

/**
 * Hours in human units, two at most: `3d 4h`, `5h 12m`, `42m`; negative hours read `-2h 5m`.
 * @example formatHours(76.5) === '3d 4h'
 */
export function formatHours(hours: number): string {
  const sign = hours < 0 ? '-' : '';
  const minutes = Math.floor(Math.abs(hours) * 60);
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  if (d > 0) return `${sign}${d}d ${h}h`;
  if (h > 0) return `${sign}${h}h ${m}m`;
  return `${sign}${m}m`;
}

export function formatSummary(s: StatusSummary): string {
  const parts = [`${s.healthy} healthy`, `${s.due} due`, `${s.failing} failing`];
  if (s.revoked) parts.push(`${s.revoked} revoked`);
  if (s.lapsing) parts.push(`${s.lapsing} lapsing`);
  if (s.skipped) parts.push(`${s.skipped} skipped`);
  const least =
    s.leastValidityHours !== undefined
      ? `least validity ${formatHours(s.leastValidityHours)} (${s.leastValidityCertificate})`
      : 'no staples';
  return `${parts.join(', ')}; ${least}`;
}

/** The status as a terminal table, most urgent first, then the summary line. */
export function formatStatus(report: StatusReport): string {
  const header = [
    'CERTIFICATE',
    'HEALTH',
    'STATUS',
    'THIS UPDATE',
    'NEXT UPDATE',
    'LEFT',
    'NEXT DUE',
    'LAST',
    'MUST',
    'RESPONDER',
  ];
  // Times in UTC, and saying so: `2026-12-07 10:00Z`.
  const day = (iso: string | undefined) => (iso ? `${iso.slice(0, 16).replace('T', ' ')}Z` : '—');
  // Names, hosts and reasons come from outside: escaped, so none moves the cursor or forges a row.
  const table = report.rows.map((r) =>
    [
      r.certificate,
      r.health,
      r.certStatus ?? '—',
      day(r.thisUpdate),
      day(r.nextUpdate),
      r.validityLeft,
      day(r.nextDue),
      r.lastOutcome ?? '—',
      r.mustStaple === undefined ? '—' : r.mustStaple ? 'yes' : 'no',
      r.responderHost ?? '—',
    ].map(printable),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...table.map(line)];
  // Why a row needs attention, under the table: errors are long and would break the columns. A
  // failed attempt behind a good staple is listed too, as a note.
  const notes = report.rows
    .filter((r) => needsAttention(r) || r.note)
    .map((r) => printable(`${r.certificate}: ${r.note ? `${r.why}; ${r.note}` : r.why}`));
  if (notes.length) out.push('', ...notes);
  out.push('', printable(formatSummary(report.summary)));
  return out.join('\n');
}

/** A row that makes a monitoring check fail: failing, revoked or lapsing. */
function needsAttention(r: StatusRow): boolean {
  return r.health === 'failing' || r.health === 'revoked' || r.health === 'lapsing';
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/**
 * What a staple says of itself: the single response for `serial` (the certificate's, when known;
 * else the first), its status and window. Not a validation (no issuer here): the renewer validated
 * it before storing it, and a staple that does not parse is reported as unreadable.
 */
export function readStaple(der: Uint8Array, serial?: Buffer): StapleReading {
  try {
    const parsed = parseOcspResponse(der);
    if (!parsed.basic) return { error: `responder status ${parsed.responseStatus}, no response` };
    const single =
      (serial && parsed.basic.responses.find((r) => r.certId.serial.equals(serial))) ??
      parsed.basic.responses[0];
    if (!single) return { error: 'no single response in the staple' };
    return {
      certStatus: single.certStatus,
      thisUpdate: single.thisUpdate.toISOString(),
      ...(single.nextUpdate ? { nextUpdate: single.nextUpdate.toISOString() } : {}),
    };
  } catch (err) {
    return { error: `not an OCSP response: ${errorMessage(err)}` };
  }
}

/** One entry per certificate the run state knows, as the Lambda sees its fleet (no staple reads). */
export function entriesFromState(
  state: Iterable<[string, StateEntryView]>,
  stapleKeyOf: (certificate: string) => string,
): StatusEntry[] {
  return [...state].map(([certificate, s]) => ({ certificate, staple: stapleKeyOf(certificate), state: s }));
}
