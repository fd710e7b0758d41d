/**
 * Counts the requests an AWS SDK v3 client (S3, DynamoDB, …) sends, by command. The middleware
 * sits in the finalizeRequest step, after the retry middleware, so every attempt that goes on the
 * wire is counted once.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';

export interface RequestCounter {
  /** Requests sent (each HTTP attempt, retries included). */
  total: number;
  /** By command name: `{ ListObjectsV2Command: 2, GetObjectCommand: 1 }`. */
  byCommand: Record<string, number>;
  reset(): void;
}

let middlewareSeq = 0;

export function countRequests(client: S3Client | DynamoDBClient): RequestCounter {
  const counter: RequestCounter = {
    total: 0,
    byCommand: {},
    reset() {
      counter.total = 0;
      counter.byCommand = {};
    },
  };
  (client as S3Client).middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? 'unknown';
      counter.total++;
      counter.byCommand[name] = (counter.byCommand[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'finalizeRequest', name: `countRequests${++middlewareSeq}` },
  );
  return counter;
}
