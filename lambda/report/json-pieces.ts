/** Size at which jsonPieces hands over what it has gathered. */
const PIECE_CHARS = 64 * 1024;

/**
 * `JSON.stringify(value, null, indent)` of a plain object, in pieces of about 64 KiB: the elements
 * of its top-level arrays (a run report's rows) are stringified one at a time, so a report of N
 * rows is never one string (at 10 000 rows that was 3–4 MB; near 1.7 million rows it would pass
 * V8's longest string). Joined, the pieces are exactly what JSON.stringify gives; with `indent` 2
 * every piece but the last ends with a newline. `renew --json` prints them (indent 2), the Lambda
 * writes its run report object from them (compact).
 *
 * @example [...jsonPieces({ a: [1] }, 2)].join('') === '{\n  "a": [\n    1\n  ]\n}'
 */
export function* jsonPieces(value: object, indent: 0 | 2 = 0): Generator<string> {
  // What JSON.stringify keeps of an object's own properties: the rest (undefined, functions,
  // symbols) is left out. A toJSON would change the shape: none of our reports has one.
  const entries = Object.entries(value).filter(([, v]) => JSON.stringify(v) !== undefined);
  if (entries.length === 0) {
    yield '{}';
    return;
  }
  const newline = indent ? '\n' : '';
  const pad = ' '.repeat(indent);
  const colon = indent ? ': ' : ':';
  /** A value's JSON, its inner lines indented by `by` more (it sits that deep in the whole). */
  const nested = (v: unknown, by: string) =>
    (JSON.stringify(v, null, indent) ?? 'null').replace(/\n/g, `\n${by}`);
  let text = `{${newline}`;
  for (const [i, [key, v]] of entries.entries()) {
    const end = i < entries.length - 1 ? `,${newline}` : newline;
    if (Array.isArray(v) && v.length > 0) {
      text += `${pad}${JSON.stringify(key)}${colon}[${newline}`;
      for (const [j, item] of v.entries()) {
        text += `${pad}${pad}${nested(item, pad + pad)}${j < v.length - 1 ? `,${newline}` : newline}`;
        if (text.length >= PIECE_CHARS) {
          yield text;
          text = '';
        }
      }
      text += `${pad}]${end}`;
    } else {
      text += `${pad}${JSON.stringify(key)}${colon}${nested(v, pad)}${end}`;
    }
  }
  yield `${text}}`;
}
