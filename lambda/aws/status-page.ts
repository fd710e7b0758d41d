import { PutObjectCommand } from '@aws-sdk/client-s3';
import { errorMessage } from '../core/errors.js';
import { StatusBuilder } from '../core/status.js';
import { MAX_PAGE_ROWS, renderStatusPage } from '../report/status-page.js';
import { stapleKeyFor } from '../renew/ports.js';
import type { Invocation } from './invocation.js';

/** The page is rebuilt at most this often: each rebuild reads the whole state table. */
export const STATUS_PAGE_EVERY_MS = 60 * 60 * 1000;
/** The marker item that says when the page was last written. */
export const STATUS_PAGE_MARKER = 'status-page';

/**
 * Writes the HTML status page (STATUS_PAGE_KEY, the stack's `reports/status.html`) after a
 * scheduled run, from the state table. One GetItem (the `#status-page` marker) says when the page
 * was last written; once that is an hour ago (or never), a Scan streams every item into a
 * StatusBuilder that counts them all and keeps only the MAX_PAGE_ROWS most urgent rows. So a
 * scheduled run costs one GetItem more, and once an hour the page costs one Scan of the table:
 * at 10^6 certificates some 350 pages of 1 MB (eventually consistent, ~45 000 read request units)
 * with memory bounded by the rows kept; at 10^2, one page. The page is a view: failing to write
 * it is logged, never a failed run.
 */
export async function writeStatusPage(inv: Invocation): Promise<boolean> {
  const { config, s3, logger } = inv;
  const key = config.statusPageKey;
  if (!key) return false;
  try {
    const now = inv.clock();
    const last = await inv.stateStore().markerAt(STATUS_PAGE_MARKER);
    if (last && now.getTime() - last.getTime() < STATUS_PAGE_EVERY_MS) return false;
    const builder = new StatusBuilder(now, { keep: MAX_PAGE_ROWS });
    await inv
      .stateStore()
      .scan((certificate, state) =>
        builder.add({ certificate, staple: stapleKeyFor(certificate, config.naming), state }),
      );
    await s3.send(
      new PutObjectCommand({
        Bucket: config.bucket,
        Key: key,
        Body: Buffer.from(renderStatusPage(builder.report(), `ocsp-renewer status: s3://${config.bucket}`)),
        ContentType: 'text/html; charset=utf-8',
        CacheControl: 'no-cache',
      }),
    );
    await inv.stateStore().putMarker(STATUS_PAGE_MARKER, now);
    return true;
  } catch (err) {
    logger.warn('cannot write the status page', { key, error: errorMessage(err) });
    return false;
  }
}
