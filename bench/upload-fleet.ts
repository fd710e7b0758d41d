/**
 * Uploads a synthetic fleet's leaf bundles to S3 (s3rver in the benchmarks), 16 requests at a
 * time, as `certs/leaf-<i>.pem`: the set-up of the handler rows (renewal.bench.ts).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Server } from '../test/helpers/s3-server.js';
import type { Fleet } from './fleet.js';

/** Uploads the first `n` leaves of `fleet` under `certs/` in `bucket` on `s3` (a client of its own). */
export async function uploadFleet(s3: S3Server, bucket: string, fleet: Fleet, n: number): Promise<void> {
  const client = s3.client();
  let next = 0;
  const upload = async () => {
    for (let i = next++; i < n; i = next++) {
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `certs/leaf-${i}.pem`,
          Body: Buffer.from(fleet.leaves[i]!.bundle),
        }),
      );
    }
  };
  try {
    await Promise.all(Array.from({ length: 16 }, upload));
  } finally {
    client.destroy();
  }
}
