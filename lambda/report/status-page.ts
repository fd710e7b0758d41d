import { createHash } from 'node:crypto';
import {
  formatSummary,
  HEALTH_ORDER,
  type Health,
  type StatusReport,
  type StatusRow,
} from '../core/status.js';
import { plural } from '../core/plural.js';

/**
 * The status as one self-contained HTML page: inline CSS and a few lines of inline JS, nothing
 * fetched, so it works from file:// and from a presigned S3 URL alike. Every value is escaped, and
 * a Content-Security-Policy `<meta>` allows nothing but that one style and that one script, by
 * their SHA-256: no external load, no other inline script, no style attribute (colours are
 * classes; the script sets the timeline's positions from `data-*` attributes).
 *
 * One row per certificate, failures first, with a validity timeline: the bar is the staple's
 * window (thisUpdate → nextUpdate), filled up to now in the row's health colour, with markers for
 * now and for the next due time. Columns sort on a click; the sort is kept in the URL fragment
 * (`#sort=validity` or `#sort=-certificate`), so a sorted view can be bookmarked.
 */

/** The colour of each health, also written to each row's `data-colour` (tests read it). */
export const HEALTH_COLOURS: Record<Health, string> = {
  failing: '#c62828',
  revoked: '#6a1b9a',
  lapsing: '#ef6c00',
  due: '#f9a825',
  healthy: '#2e7d32',
  skipped: '#757575',
};

/** Rows beyond this are summarised, not listed: a page for 10^5 certificates would not load. */
export const MAX_PAGE_ROWS = 2_000;

/** The sortable columns: name, the row attribute holding its sort key, numeric or text. */
const SORT_COLUMNS = {
  certificate: { label: 'Certificate', numeric: false },
  health: { label: 'Health', numeric: true },
  status: { label: 'Status', numeric: false },
  validity: { label: 'Validity left', numeric: true },
  due: { label: 'Next due', numeric: true },
  outcome: { label: 'Last outcome', numeric: false },
  responder: { label: 'Responder', numeric: false },
} as const;
type SortColumn = keyof typeof SORT_COLUMNS;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The sort key of a row for a column, as the page's script reads it from `data-k-<column>`. */
export function sortKey(row: StatusRow, column: SortColumn): string | number {
  switch (column) {
    case 'certificate':
      return row.certificate;
    case 'health':
      return HEALTH_ORDER.indexOf(row.health);
    case 'status':
      return row.certStatus ?? '';
    case 'validity':
      return row.validityHours ?? -1e9;
    case 'due':
      return row.nextDue ? Date.parse(row.nextDue) : 9e15;
    case 'outcome':
      return row.lastOutcome ?? '';
    case 'responder':
      return row.responderHost ?? '';
  }
}

/**
 * Orders rows as the page's script does (the same comparator runs in the browser, see SORT_JS):
 * ascending, or descending with `-column`; ties keep their current order.
 */
export function sortRows<T>(
  rows: readonly T[],
  keyOf: (row: T) => string | number,
  descending: boolean,
): T[] {
  return rows
    .map((row, i) => ({ row, i, k: keyOf(row) }))
    .sort((a, b) => compareCells(a.k, b.k, descending) || a.i - b.i)
    .map((x) => x.row);
}

/** Compares two sort keys; self-contained, because its source is also the page's comparator. */
export function compareCells(a: string | number, b: string | number, descending: boolean): number {
  const c = typeof a === 'number' && typeof b === 'number' ? a - b : String(a).localeCompare(String(b));
  return descending ? -c : c;
}

export function renderStatusPage(report: StatusReport, title = 'ocsp-renewer status'): string {
  const now = Date.parse(report.generatedAt);
  const shown = report.rows.slice(0, MAX_PAGE_ROWS);
  // A report built with a row bound (StatusBuilder's keep) counts more certificates than rows.
  const hidden = Math.max(report.rows.length, report.summary.total) - shown.length;
  const s = report.summary;
  const tiles = (
    [
      ['failing', s.failing],
      ['revoked', s.revoked],
      ['lapsing', s.lapsing],
      ['due', s.due],
      ['healthy', s.healthy],
      ['skipped', s.skipped],
    ] as const
  )
    .map(([h, n]) => `<div class="tile h-${h}" data-health="${h}"><b>${n}</b> ${h}</div>`)
    .join('');
  const head = (Object.keys(SORT_COLUMNS) as SortColumn[])
    .map(
      (c) =>
        `<th data-col="${c}" data-numeric="${SORT_COLUMNS[c].numeric}" tabindex="0">${SORT_COLUMNS[c].label}</th>`,
    )
    .join('');
  const body = shown.map((r) => renderRow(r, now)).join('\n');
  const overall = s.attention > 0 ? 'attention' : 'ok';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body data-overall="${overall}">
<header>
<h1>${escapeHtml(title)}</h1>
<p id="summary" data-attention="${s.attention}">${escapeHtml(formatSummary(s))}</p>
<p class="meta">Generated ${escapeHtml(report.generatedAt)} · lapsing = less than ${escapeHtml(String(report.warnHours))} h left${report.warnCappedByWindow ? ' (or a quarter of a shorter window)' : ''} · ${plural(s.total, 'certificate')}</p>
<div class="tiles">${tiles}</div>
</header>
<main>
<table id="status">
<thead><tr>${head}<th>Timeline (thisUpdate → nextUpdate)</th></tr></thead>
<tbody>
${body}
</tbody>
</table>
${hidden > 0 ? `<p class="meta" id="hidden">${plural(hidden, 'more certificate', 'more certificates')}, least urgent, not listed; run <code>ocsp-renewer status --json</code> for all.</p>` : ''}
<p class="legend"><span class="mk now"></span> now <span class="mk due"></span> next due</p>
</main>
<script>${SORT_JS}</script>
</body>
</html>
`;
}

function renderRow(r: StatusRow, now: number): string {
  const keys = (Object.keys(SORT_COLUMNS) as SortColumn[])
    .map((c) => `data-k-${c}="${escapeHtml(String(sortKey(r, c)))}"`)
    .join(' ');
  const colour = HEALTH_COLOURS[r.health];
  const day = (iso: string | undefined) => (iso ? escapeHtml(`${iso.slice(0, 16).replace('T', ' ')}Z`) : '—');
  const detail =
    (r.health === 'healthy' || r.health === 'due' ? '' : `<div class="why">${escapeHtml(r.why)}</div>`) +
    (r.note ? `<div class="note">${escapeHtml(r.note)}</div>` : '');
  return `<tr data-certificate="${escapeHtml(r.certificate)}" data-health="${r.health}" data-colour="${colour}" class="h-${r.health}" ${keys}>
<td data-label="Certificate"><span class="name">${escapeHtml(r.certificate)}</span>${r.mustStaple ? ' <span class="tag">must-staple</span>' : ''}${detail}</td>
<td data-label="Health"><span class="badge">${r.health}</span></td>
<td data-label="Status">${escapeHtml(r.certStatus ?? '—')}</td>
<td data-label="Validity left" title="nextUpdate ${day(r.nextUpdate)}">${escapeHtml(r.validityLeft)}</td>
<td data-label="Next due">${day(r.nextDue)}</td>
<td data-label="Last outcome">${escapeHtml(r.lastOutcome ?? '—')}${r.lastError && !r.why.includes(r.lastError) && !r.note ? `<div class="why">${escapeHtml(r.lastError)}</div>` : ''}</td>
<td data-label="Responder">${escapeHtml(r.responderHost ?? '—')}</td>
<td data-label="Timeline">${timeline(r, now)}</td>
</tr>`;
}

/** The bar; its positions are `data-width` / `data-left` percentages the page's script applies. */
function timeline(r: StatusRow, now: number): string {
  if (!r.thisUpdate || !r.nextUpdate) return '<span class="meta">no staple window</span>';
  const from = Date.parse(r.thisUpdate);
  const to = Date.parse(r.nextUpdate);
  const span = Math.max(to - from, 1);
  const pct = (t: number) => Math.min(100, Math.max(0, ((t - from) / span) * 100)).toFixed(1);
  const due = r.nextDue ? Date.parse(r.nextDue) : undefined;
  const dueMark =
    due !== undefined && due <= to
      ? `<span data-left="${pct(due)}" class="mk due" title="next due ${escapeHtml(r.nextDue!)}"></span>`
      : '';
  return `<div class="bar" title="${escapeHtml(r.thisUpdate)} → ${escapeHtml(r.nextUpdate)}"><span data-width="${pct(now)}" class="fill"></span><span data-left="${pct(now)}" class="mk now"></span>${dueMark}</div>`;
}

const CSS = `
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;background:#fafafa}
body{margin:0;padding:1rem}
h1{font-size:1.3rem;margin:0 0 .3rem}
.meta{color:#555;font-size:.85rem}
#summary{font-weight:600}
body[data-overall=attention] #summary{color:#c62828}
.tiles{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0 1rem}
.tile{border-left:.4rem solid;background:#fff;padding:.3rem .7rem;box-shadow:0 1px 2px #0002}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:.4rem .5rem;text-align:left;border-bottom:1px solid #e5e5e5;vertical-align:top;font-size:.9rem}
th{cursor:pointer;user-select:none;background:#f0f0f0;white-space:nowrap}
th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}
.name{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.why{color:#8a1c1c;font-size:.8rem;word-break:break-word}
.note{color:#555;font-size:.8rem;word-break:break-word}
.badge{color:#fff;border-radius:.6rem;padding:.05rem .5rem;font-size:.8rem}
.tag{font-size:.7rem;border:1px solid #999;border-radius:.3rem;padding:0 .2rem}
.bar{position:relative;height:.8rem;min-width:8rem;background:#e0e0e0;border-radius:.2rem;overflow:visible}
.fill{position:absolute;left:0;top:0;bottom:0;opacity:.75;border-radius:.2rem}
.mk{position:absolute;top:-.2rem;bottom:-.2rem;width:2px;display:inline-block}
.mk.now{background:#000}
.mk.due{background:#1565c0;width:3px}
.legend .mk{position:relative;height:.8rem;vertical-align:middle;margin-left:.8rem}
${(Object.keys(HEALTH_COLOURS) as Health[]).map((h) => `.h-${h}{--hc:${HEALTH_COLOURS[h]}}`).join('\n')}
.tile{border-color:var(--hc)}
.badge{background:var(--hc)}
.fill{background:var(--hc)}
@media (max-width:700px){
 thead{display:none}
 table,tbody,tr,td{display:block;width:auto}
 tr{margin:0 0 .8rem;border-left:.4rem solid var(--c,#999);box-shadow:0 1px 2px #0002}
 td{border:0;padding:.2rem .6rem}
 td::before{content:attr(data-label) ": ";font-weight:600;color:#555}
}
`;

/**
 * Sorting: a click sets the fragment, the fragment sorts the rows (also on load). compareCells is
 * the same function the unit tests exercise.
 */
const SORT_JS = `
(function(){
var compareCells=${compareCells.toString()};
var table=document.getElementById('status');
var tbody=table.tBodies[0];
Array.prototype.forEach.call(tbody.rows,function(tr){tr.style.setProperty('--c',tr.getAttribute('data-colour'));});
Array.prototype.forEach.call(document.querySelectorAll('[data-left]'),function(e){e.style.left=e.getAttribute('data-left')+'%';});
Array.prototype.forEach.call(document.querySelectorAll('[data-width]'),function(e){e.style.width=e.getAttribute('data-width')+'%';});
function apply(){
  var m=/sort=(-?)([a-z]+)/.exec(location.hash);
  if(!m)return;
  var desc=m[1]==='-',col=m[2];
  var th=table.querySelector('th[data-col="'+col+'"]');
  if(!th)return;
  var numeric=th.getAttribute('data-numeric')==='true';
  var rows=Array.prototype.slice.call(tbody.rows).map(function(tr,i){
    var v=tr.getAttribute('data-k-'+col);return {tr:tr,i:i,k:numeric?Number(v):v};});
  rows.sort(function(a,b){return compareCells(a.k,b.k,desc)||a.i-b.i;});
  rows.forEach(function(x){tbody.appendChild(x.tr);});
  Array.prototype.forEach.call(table.querySelectorAll('th[data-col]'),function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',desc?'descending':'ascending');
  document.body.setAttribute('data-sorted',(desc?'-':'')+col);
}
Array.prototype.forEach.call(table.querySelectorAll('th[data-col]'),function(th){
  function go(){var col=th.getAttribute('data-col');var cur=th.getAttribute('aria-sort');
    location.hash='sort='+(cur==='ascending'?'-':'')+col;}
  th.addEventListener('click',go);
  th.addEventListener('keydown',function(e){if(e.key==='Enter')go();});
});
window.addEventListener('hashchange',apply);
apply();
})();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * Nothing from anywhere (`default-src 'none'`: no image, font, frame, connection, form target or
 * base URL) but the page's own `<style>` and `<script>`, allowed by their hashes; no 'unsafe-inline'.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${sha256(CSS)}`,
  `script-src ${sha256(SORT_JS)}`,
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
