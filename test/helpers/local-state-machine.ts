/**
 * The renewer's state machine, as synthesized, run on this machine by aws-local-stepfunctions,
 * every Lambda task bound to a local function (the real handler, in the tests and the demo).
 *
 * aws-local-stepfunctions runs inline Maps only: it has no ItemReader, ItemBatcher or
 * ResultWriter. So each Distributed Map of the definition becomes two states, from its own
 * values: a Task under the map's name that does what the ItemReader and ItemBatcher do (lists its
 * prefix through the given S3 client, every page, at most ReaderConfig.MaxItems; cuts the items
 * into batches of MaxItemsPerBatch with its BatchInput), then an inline Map over those batches
 * with the map's MaxConcurrency, ItemProcessor (its Task and Retry) and ResultPath unchanged. A
 * failed child fails the local map at once (ToleratedFailurePercentage is not emulated). Where
 * Step Functions would put the ResultWriter's details, the map's ResultPath gets the children's
 * outputs, so Summarise (which reads those details) returns them: `{force, children}`. Everything
 * else is the synthesized definition: the Defaults Choice and Pass, the Source Choice, the child
 * Task with its Retry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { OcspRenewerStack } from '../../infra/stack.js';
import { renderCfnValue } from './cdk-app.js';
import './promise-with-resolvers.js'; // aws-local-stepfunctions on Node 20

type Json = Record<string, unknown>;

export interface StateMachineDefinition {
  StartAt: string;
  States: Record<string, Json>;
  [field: string]: unknown;
}

export interface DistributedMap {
  Type: 'Map';
  ItemReader: {
    Resource: string;
    Parameters: { Bucket: string; Prefix: string };
    ReaderConfig?: { MaxItems?: number };
  };
  ItemBatcher: { MaxItemsPerBatch: number; BatchInput: Record<string, string> };
  ItemProcessor: { ProcessorConfig?: { Mode?: string }; StartAt: string; States: Record<string, Json> };
  [field: string]: unknown;
}

/** A map's batch, as its ItemBatcher hands it to a child. */
export interface Batch {
  Items: { Key: string; Etag?: string; Size?: number }[];
  BatchInput: Json;
}

/**
 * The state machine of OcspRenewerStack with default settings, synthesized without bundling
 * (context `aws:cdk:bundling-stacks: []`) or CloudFormation validation into a temporary
 * directory that is removed before this returns (no cdk.out* is left), its tokens rendered
 * (renderCfnValue: the bucket's Ref is `bucket`).
 */
export function synthesizedStateMachine(bucket: string): StateMachineDefinition {
  const outdir = mkdtempSync(path.join(tmpdir(), 'ocsp-renewer-cdk-local-'));
  try {
    // Only the definition is read: CDK's CloudFormation validation (a WebAssembly engine, most of
    // a first synthesis's time) is left to the stack's own tests.
    const app = new App({
      outdir,
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const machines = Template.fromStack(new OcspRenewerStack(app, 'Local', {})).findResources(
      'AWS::StepFunctions::StateMachine',
    );
    const machine = Object.values(machines)[0]!.Properties as Json;
    return JSON.parse(renderCfnValue(machine.DefinitionString, bucket)) as StateMachineDefinition;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * An error as Step Functions reports a Lambda service exception (`Lambda.TooManyRequestsException`
 * for a throttle): aws-local-stepfunctions matches a local task's thrown error by its `name`
 * against the Retry's and Catch's ErrorEquals.
 */
export class LambdaServiceError extends Error {
  constructor(name: `Lambda.${string}`, message: string) {
    super(message);
    this.name = name;
  }
}

export interface LocalRunOptions {
  /** The client the ItemReaders list through (the bucket's Ref is rendered as its name). */
  s3: S3Client;
  /**
   * The function every `arn:aws:states:::lambda:invoke` task invokes: the task's Payload in, the
   * function's response out. A throw fails the task with the error's name (LambdaServiceError).
   */
  invoke: (payload: unknown) => Promise<unknown>;
  /**
   * Milliseconds before each retry, instead of the Retry's own backoff (IntervalSeconds 2,
   * BackoffRate 2, full jitter: seconds to minutes), through aws-local-stepfunctions'
   * retryIntervalOverrides. @default 0
   */
  retryIntervalMs?: number;
}

/** Runs the definition locally (see the module comment) with this input; resolves to its output. */
export async function runLocally(
  definition: StateMachineDefinition,
  input: Json,
  options: LocalRunOptions,
): Promise<Json> {
  const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
  const retries: Record<string, number> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (!isDistributedMap(state)) continue;
    handlers[name] = (mapInput) => batchesFor(options.s3, state, mapInput as Json);
    for (const [taskName, task] of Object.entries(state.ItemProcessor.States)) {
      if (task.Type !== 'Task' || task.Resource !== 'arn:aws:states:::lambda:invoke') continue;
      retries[taskName] = options.retryIntervalMs ?? 0;
      handlers[taskName] = async (taskInput) => ({
        StatusCode: 200,
        Payload: await options.invoke((taskInput as { Payload: unknown }).Payload),
      });
    }
  }
  const machine = new StateMachine(localDefinition(definition) as never, {
    validationOptions: { checkArn: false },
  });
  const execution = machine.run(input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never, retryIntervalOverrides: retries },
  });
  return (await execution.result) as Json;
}

export interface LocalStepFunctions {
  /** An SDK client of this endpoint: the handler's `sfn`. */
  client: SFNClient;
  /** Each execution started, in order: its name, its input and its output (runLocally's). */
  executions: { name: string; input: Json; output: Promise<Json> }[];
  stop(): Promise<void>;
}

/**
 * Step Functions' StartExecution on loopback, for the handler's own SDK call (a force of
 * everything; a due run's manifest is not read here, so such an execution fails): each execution
 * runs this definition with runLocally and these options, and the answer is Step Functions'
 * (`executionArn`, `startDate`) at once, as the service answers before the run ends. Any other
 * action is refused.
 */
export async function startLocalStepFunctions(
  definition: StateMachineDefinition,
  options: LocalRunOptions,
): Promise<LocalStepFunctions> {
  const executions: LocalStepFunctions['executions'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (req.headers['x-amz-target'] !== 'AWSStepFunctions.StartExecution') {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: 'UnknownOperationException' }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>;
      const input = JSON.parse(body.input ?? '{}') as Json;
      const output = runLocally(definition, input, options);
      output.catch(() => undefined); // whoever reads `executions` sees the failure
      executions.push({ name: body.name!, input, output });
      const arn = `${body.stateMachineArn!.replace(':stateMachine:', ':execution:')}:${body.name}`;
      res.end(JSON.stringify({ executionArn: arn, startDate: Date.now() / 1000 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new SFNClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    client,
    executions,
    stop: async () => {
      client.destroy();
      await Promise.allSettled(executions.map((e) => e.output));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The ItemReader (ListObjectsV2, every page, MaxItems) and ItemBatcher, as Step Functions does them. */
async function batchesFor(s3: S3Client, map: DistributedMap, input: Json): Promise<Batch[]> {
  if (map.ItemReader.Resource !== 'arn:aws:states:::s3:listObjectsV2') {
    throw new Error(`this ItemReader is not emulated here: ${map.ItemReader.Resource}`);
  }
  const max = map.ItemReader.ReaderConfig?.MaxItems ?? Infinity;
  const items: Batch['Items'] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: map.ItemReader.Parameters.Bucket,
        Prefix: map.ItemReader.Parameters.Prefix,
        ContinuationToken: token,
      }),
    );
    items.push(...(page.Contents ?? []).map((o) => ({ Key: o.Key!, Etag: o.ETag, Size: o.Size })));
    token = page.NextContinuationToken;
  } while (token && items.length < max);
  items.splice(max);
  // BatchInput's `field.$` paths, as Step Functions reads them from the map's input.
  const batchInput = Object.fromEntries(
    Object.entries(map.ItemBatcher.BatchInput).map(([k, p]) => [k.replace(/\.\$$/, ''), input[p.slice(2)]]),
  );
  const batches: Batch[] = [];
  for (let i = 0; i < items.length; i += map.ItemBatcher.MaxItemsPerBatch) {
    batches.push({ Items: items.slice(i, i + map.ItemBatcher.MaxItemsPerBatch), BatchInput: batchInput });
  }
  return batches;
}

/** Where the reader Task puts a map's batches, for the inline Map's ItemsPath. */
const BATCHES = 'localBatches';

/** The definition with each Distributed Map as a reader Task and an inline Map (module comment). */
function localDefinition(definition: StateMachineDefinition): StateMachineDefinition {
  const states: Record<string, Json> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (!isDistributedMap(state)) {
      states[name] = state;
      continue;
    }
    const {
      ItemReader: _reader,
      ItemBatcher: _batcher,
      ResultWriter: _writer,
      ToleratedFailurePercentage: _tolerated,
      ...map
    } = state;
    const { ProcessorConfig: _config, ...processor } = state.ItemProcessor;
    // The reader Task keeps the map's name (the Choice states lead to it); runLocally binds it
    // to batchesFor over the map's own ItemReader and ItemBatcher.
    states[name] = {
      Type: 'Task',
      Resource: state.ItemReader.Resource,
      ResultPath: `$.${BATCHES}`,
      Next: `${name}Inline`,
    };
    states[`${name}Inline`] = { ...map, ItemsPath: `$.${BATCHES}`, ItemProcessor: processor };
  }
  // Summarise reads the ResultWriter's details; here the map's result is the children's outputs.
  if (states.Summarise) {
    states.Summarise = {
      Type: 'Pass',
      Parameters: { 'force.$': '$.force', 'children.$': '$.map' },
      End: true,
    };
  }
  return { ...definition, States: states };
}

function isDistributedMap(state: Json): state is Json & DistributedMap {
  return (
    state.Type === 'Map' &&
    (state.ItemProcessor as DistributedMap['ItemProcessor'] | undefined)?.ProcessorConfig?.Mode ===
      'DISTRIBUTED'
  );
}
