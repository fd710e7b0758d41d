/**
 * A real DynamoDB API on loopback for tests: dynalite (npm), in memory, in the test worker. It
 * honours condition expressions, sparse global secondary indexes and pagination, which is what
 * the state adapter relies on. Tables become ACTIVE at once (createTableMs 0).
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DynamoDBClient,
  type CreateTableCommandInput,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';

export interface DynamoServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** A new client for this server (any credentials do; no retries, so counts are exact). */
  client(extra?: DynamoDBClientConfig): DynamoDBClient;
  createTable(input: CreateTableCommandInput): Promise<void>;
  stop(): Promise<void>;
}

type Dynalite = (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;

export async function startDynalite(): Promise<DynamoServer> {
  const dynalite = createRequire(import.meta.url)('dynalite') as Dynalite;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // Clients keep idle connections across slow test steps (a CDK synth); Node's 5 s default
  // would close them under the client and surface as ECONNRESET.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = (extra: DynamoDBClientConfig = {}) =>
    new DynamoDBClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
      ...extra,
    });
  const admin = client();
  return {
    endpoint,
    client,
    createTable: async (input) => {
      await admin.send(new CreateTableCommand(input));
    },
    stop: async () => {
      admin.destroy();
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
