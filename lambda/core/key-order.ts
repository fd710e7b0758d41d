/**
 * The one order of certificate keys: by UTF-16 code units, as `<` compares strings. The same on
 * every host and Node version (no locale, no ICU collation: `localeCompare` put `aa.pem` after
 * `z.pem` under LANG=da_DK), cheaper than a collator, and S3's listing order (UTF-8 bytes) for
 * every key without characters beyond U+FFFF. It decides the run report's row order, which
 * certificates a run's deadline leaves unreached, and the CLI state document's order.
 * @example ['b.pem', 'B.pem', 'a_b.pem', 'a-b.pem'].sort(compareKeys) // B.pem, a-b.pem, a_b.pem, b.pem
 */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
