/**
 * A count with its noun, singular for one: `1 certificate`, `3 certificates`, `0 failures`.
 * @example plural(1, 'failure') === '1 failure'
 */
export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : many}`;
}
