import pLimit from 'p-limit';

/** At most `perHost` requests in flight to one responder host. */
export function perHostLimiter(perHost: number): (url: string) => ReturnType<typeof pLimit> {
  const limits = new Map<string, ReturnType<typeof pLimit>>();
  return (url) => {
    let host = url;
    try {
      host = new URL(url).host;
    } catch {
      /* an invalid URL fails in the transport */
    }
    let limit = limits.get(host);
    if (!limit) limits.set(host, (limit = pLimit(perHost)));
    return limit;
  };
}
