/** Size at which prettyJsonPieces hands over what it has gathered. */
const PIECE_CHARS = 64 * 1024;

/**
 * `JSON.stringify(value, null, 2)` of a plain object, in pieces of about 64 KiB: the elements of
 * its top-level arrays (a run report's rows) are stringified one at a time, so a report of N rows
 * is never one string (at 10 000 rows that was 4 MB, copied once more to add the newline). Every
 * piece but the last ends with a newline; joined, they are exactly what JSON.stringify gives.
 *
 * @example [...prettyJsonPieces({ a: [1] })].join('') === '{\n  "a": [\n    1\n  ]\n}'
 */
export function* prettyJsonPieces(value: object): Generator<string> {
  // What JSON.stringify keeps of an object's own properties: the rest (undefined, functions,
  // symbols) is left out. A toJSON would change the shape: none of our reports has one.
  const entries = Object.entries(value).filter(([, v]) => JSON.stringify(v) !== undefined);
  if (entries.length === 0) {
    yield '{}';
    return;
  }
  let text = '{\n';
  for (const [i, [key, v]] of entries.entries()) {
    const end = i < entries.length - 1 ? ',\n' : '\n';
    if (Array.isArray(v) && v.length > 0) {
      text += `  ${JSON.stringify(key)}: [\n`;
      for (const [j, item] of v.entries()) {
        const json = JSON.stringify(item, null, 2) ?? 'null';
        text += `    ${json.replace(/\n/g, '\n    ')}${j < v.length - 1 ? ',\n' : '\n'}`;
        if (text.length >= PIECE_CHARS) {
          yield text;
          text = '';
        }
      }
      text += `  ]${end}`;
    } else {
      text += `  ${JSON.stringify(key)}: ${JSON.stringify(v, null, 2).replace(/\n/g, '\n  ')}${end}`;
    }
  }
  yield `${text}}`;
}
