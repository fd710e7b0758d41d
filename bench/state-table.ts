/**
 * The renewer's state table for the handler benchmarks: dynalite on loopback (as the tests use
 * it), one table per run, and the environment a child process needs to reach it (the SDK's own
 * service-specific endpoint variable).
 */
import { stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { startDynalite, type DynamoServer } from '../test/helpers/dynalite.js';

export interface StateTables {
  /** Creates `name` and returns the env that points a handler at it. */
  table(name: string): Promise<NodeJS.ProcessEnv>;
  stop(): Promise<void>;
}

export async function startStateTables(): Promise<StateTables> {
  const dynamo: DynamoServer = await startDynalite();
  return {
    table: async (name) => {
      await dynamo.createTable(stateTableDefinition(name));
      return { STATE_TABLE: name, AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint };
    },
    stop: () => dynamo.stop(),
  };
}
