/** Memoises a downloader per URL for the life of the returned function (one run, one daemon). */
export function cachedDownload(download: (url: string) => Promise<Uint8Array>) {
  const cache = new Map<string, Promise<Uint8Array>>();
  return (url: string) => {
    let pending = cache.get(url);
    if (!pending) {
      pending = download(url);
      pending.catch(() => cache.delete(url));
      cache.set(url, pending);
    }
    return pending;
  };
}
