import type { StapleMeta, StapleStore, StoredStaple } from './ports.js';

/** How many times a write is decided again before giving up (each time someone else wrote). */
export const MAX_WRITE_ATTEMPTS = 5;

type StoreOutcome =
  | { written: true; tag: string | undefined }
  /** Another writer stored a staple that is at least as good: it stays, ours is dropped. */
  | { written: false; current: StoredStaple | undefined };

/**
 * Stores a staple without losing a concurrent writer's newer one. The write is conditional on the
 * staple read before (`read`, or none); when another writer changed it meanwhile, the staple is
 * read again and `stillReplaces` decides afresh (the replace rule against what is stored now):
 * yes, try again conditional on the new tag; no, keep theirs. A store without conditional writes
 * (a custom port) gets a plain put, as before.
 */
export async function storeStaple(
  store: StapleStore,
  key: string,
  der: Buffer,
  meta: StapleMeta,
  read: StoredStaple | undefined,
  stillReplaces: (current: StoredStaple | undefined) => boolean,
): Promise<StoreOutcome> {
  if (!store.putIfUnchanged || (read && read.tag === undefined)) {
    return { written: true, tag: await store.put(key, der, meta) };
  }
  let expected: string | null = read?.tag ?? null;
  for (let attempt = 1; attempt <= MAX_WRITE_ATTEMPTS; attempt++) {
    const put = await store.putIfUnchanged(key, der, meta, expected);
    if (put.written) return put;
    const current = await store.get(key);
    if (current && current.der.equals(der)) return { written: true, tag: current.tag };
    if (!stillReplaces(current)) return { written: false, current };
    expected = current ? (current.tag ?? null) : null;
  }
  throw new Error(`the staple changed under ${MAX_WRITE_ATTEMPTS} writes in a row; not written`);
}
