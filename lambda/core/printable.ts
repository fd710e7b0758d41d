/**
 * Text from outside (file names, keys, URLs, a certificate's or a responder's names and words)
 * shown on a terminal: every control character (C0, DEL, C1) and Unicode's line and paragraph
 * separators (U+2028, U+2029) written as a `\uXXXX` escape, so no escape sequence reaches the
 * terminal and no name forges a line. The escape is JSON's own, so JSON passed through
 * `printableLines` still parses to the same value.
 */

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// eslint-disable-next-line no-control-regex -- the same, but for the line feed
const CONTROL_BUT_LINE_FEED = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

const escape = (ch: string) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * One cell, value or line: every control character escaped, line feeds too. Every field taken
 * from a certificate or a response goes through it before it is printed.
 * @example printable('a\x1b]0;x\x07\n.pem') === 'a\\u001b]0;x\\u0007\\u000a.pem'
 */
export function printable(text: string): string {
  return text.replace(CONTROL, escape);
}

/**
 * The backstop at stdout and stderr (lines of a table, JSON): every control character escaped but
 * the line feeds, which it cannot tell from the output's own: fields are `printable` before that.
 */
export function printableLines(text: string): string {
  return text.replace(CONTROL_BUT_LINE_FEED, escape);
}
