/**
 * The fleet building blocks in the CDK stack (infra/fleet.ts, `fleet` prop of OcspRenewer),
 * synthesized without bundling: the state table matches the adapter's schema, uploads go to a
 * queue consumed in batches, the Distributed Map state machine is valid ASL (asl-validator) with
 * the batching, concurrency and result settings, privileges stay least, and cdk-nag is clean.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { STATE_TABLE, stateTableDefinition } from '../lambda/adapters/dynamo-state.js';
import { OcspRenewerStack } from '../infra/stack.js';
import { cdkApps } from './helpers/cdk-app.js';

const CDK_JSON = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};

type Json = Record<string, unknown>;
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  NotResource?: unknown;
}

const newApp = cdkApps();

function synth(fleet: boolean) {
  const app = newApp({ ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [] });
  const stack = new OcspRenewerStack(app, 'OcspRenewer', fleet ? { fleet: {} } : {});
  return { app, stack, template: Template.fromStack(stack) };
}

/** A CloudFormation value with its tokens replaced by plausible literal values. */
function literal(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Json;
  if (v.Ref === 'AWS::Partition') return 'aws';
  if (v.Ref === 'AWS::Region') return 'us-east-1';
  if (v.Ref === 'AWS::AccountId') return '123456789012';
  if (v.Ref) return `ref-${String(v.Ref).toLowerCase()}`;
  if (v['Fn::GetAtt']) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  if (v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(literal).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** Every statement of the policies attached to a role, by the role's logical id. */
function statementsOf(template: Template, roleId: string): Statement[] {
  const out: Statement[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    const props = policy.Properties as {
      Roles: { Ref: string }[];
      PolicyDocument: { Statement: Statement[] };
    };
    if (props.Roles.some((r) => r.Ref === roleId)) out.push(...props.PolicyDocument.Statement);
  }
  return out;
}

describe('OcspRenewerStack with fleet', () => {
  let template: Template;
  let app: App;
  let stack: OcspRenewerStack;
  let definition: Json;
  beforeAll(() => {
    ({ app, stack, template } = synth(true));
    const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0]!;
    definition = JSON.parse(literal((machine.Properties as Json).DefinitionString)) as Json;
  });

  it('should create the state table as the adapter expects it: on demand, PITR, retained, due index', () => {
    const tables = template.findResources('AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toHaveLength(1);
    const table = Object.values(tables)[0]!;
    expect(table.DeletionPolicy).toBe('Retain');
    const props = table.Properties as Json;
    const want = stateTableDefinition('x');
    expect(props).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      KeySchema: want.KeySchema,
      GlobalSecondaryIndexes: [
        {
          IndexName: STATE_TABLE.dueIndex,
          KeySchema: want.GlobalSecondaryIndexes![0]!.KeySchema,
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    });
    expect(new Set(props.AttributeDefinitions as unknown[])).toEqual(new Set(want.AttributeDefinitions));
  });

  it('should send certificate uploads and removals to a queue with its own dead-letter queue, not to the function', () => {
    const notifications = Object.values(template.findResources('Custom::S3BucketNotifications'))[0]!;
    const config = (notifications.Properties as Json).NotificationConfiguration as Json;
    expect(config.LambdaFunctionConfigurations).toBeUndefined();
    const queueConfigs = config.QueueConfigurations as { Events: string[]; Filter: Json }[];
    expect(queueConfigs.map((c) => c.Events[0]).sort()).toEqual([
      ...Array(3).fill('s3:ObjectCreated:*'),
      ...Array(3).fill('s3:ObjectRemoved:*'),
    ]);
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { maxReceiveCount: 3, deadLetterTargetArn: Match.anyValue() },
      SqsManagedSseEnabled: true,
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 100,
      MaximumBatchingWindowInSeconds: 60,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  it('should start the state machine unforced once a day (reconcile), never with an empty setting', () => {
    const machineId = Object.keys(template.findResources('AWS::StepFunctions::StateMachine'))[0]!;
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 day)',
      Target: { Arn: { Ref: machineId }, Input: '{"force":false}', RetryPolicy: { MaximumRetryAttempts: 2 } },
    });
    const app2 = newApp({ ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [] });
    const none = new OcspRenewerStack(app2, 'NoReconcile', { fleet: { reconcileSchedule: '' } });
    Template.fromStack(none).resourceCountIs('AWS::Scheduler::Schedule', 1); // the renewer's own
    expect(
      () =>
        new OcspRenewerStack(newApp({ 'aws:cdk:bundling-stacks': [] }), 'Bad', {
          fleet: { reconcileSchedule: 'daily' },
        }),
    ).toThrow('fleet reconcileSchedule must be rate(…) or cron(…), got "daily"');
  });

  it('should keep the default stack as it was: no table, uploads invoke the function', () => {
    const plain = synth(false).template;
    plain.resourceCountIs('AWS::DynamoDB::Table', 0);
    plain.resourceCountIs('AWS::StepFunctions::StateMachine', 0);
    const notifications = Object.values(plain.findResources('Custom::S3BucketNotifications'))[0]!;
    const config = (notifications.Properties as Json).NotificationConfiguration as Json;
    expect(config.LambdaFunctionConfigurations).toHaveLength(3);
  });

  it('should synthesize a state machine definition that asl-validator accepts', () => {
    const validate = createRequire(import.meta.url)('asl-validator') as (d: unknown) => {
      isValid: boolean;
      errorsText: (sep?: string) => string;
    };
    const result = validate(definition);
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('should list the certificates prefix, batch 250 keys, run 4 children, tolerate 5 %, write results to reports/', () => {
    const states = definition.States as Record<string, Json>;
    expect(definition.StartAt).toBe('Defaults');
    expect(states.Defaults!.Next).toBe('Source');
    expect(states.Source).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.manifest', IsPresent: true, Next: 'RenewDue' }],
      Default: 'RenewAll',
    });
    expect(states.RenewAll).toMatchObject({
      Type: 'Map',
      Next: 'Summarise',
      MaxConcurrency: 4,
      ToleratedFailurePercentage: 5,
      ItemReader: { Resource: 'arn:aws:states:::s3:listObjectsV2', Parameters: { Prefix: 'certs/' } },
      ItemBatcher: { MaxItemsPerBatch: 250, BatchInput: { 'force.$': '$.force' } },
      ResultWriter: { Resource: 'arn:aws:states:::s3:putObject', Parameters: { Prefix: 'reports/' } },
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED' } },
    });
    const child = (states.RenewAll!.ItemProcessor as { States: Record<string, Json> }).States.RenewBatch!;
    expect(child).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: {
        Payload: {
          mode: 'batch',
          'keys.$': '$.Items[*].Key',
          'etags.$': '$.Items[*].Etag',
          'force.$': '$.BatchInput.force',
          perHostConcurrency: 1,
        },
      },
      ResultSelector: { 'summary.$': '$.Payload' },
    });
    expect(states.Summarise).toMatchObject({ Type: 'Pass', End: true });
  });

  it('should read a due manifest (a JSON array of keys) when the input names one, batched the same way', () => {
    const states = definition.States as Record<string, Json>;
    expect(states.RenewDue).toMatchObject({
      Type: 'Map',
      Next: 'Summarise',
      MaxConcurrency: 4,
      ToleratedFailurePercentage: 5,
      ItemReader: {
        Resource: 'arn:aws:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { 'Key.$': '$.manifest' },
      },
      ItemBatcher: { MaxItemsPerBatch: 250, BatchInput: { 'force.$': '$.force' } },
      ResultWriter: { Parameters: { Prefix: 'reports/' } },
      ItemProcessor: { ProcessorConfig: { Mode: 'DISTRIBUTED' } },
    });
    const child = (states.RenewDue!.ItemProcessor as { States: Record<string, Json> }).States.RenewDueBatch!;
    expect(child).toMatchObject({
      Type: 'Task',
      // 4 children share the per-host limit of 4: one request in flight to a host each.
      Parameters: {
        Payload: {
          mode: 'batch',
          'keys.$': '$.Items',
          'force.$': '$.BatchInput.force',
          perHostConcurrency: 1,
        },
      },
    });
  });

  it('should schedule the worker with {"mode":"due"}, and let it start only this state machine', () => {
    const [machineId, machine] = Object.entries(
      template.findResources('AWS::StepFunctions::StateMachine'),
    )[0]!;
    const name = (machine.Properties as Json).StateMachineName as string;
    expect(name).toMatch(/^[A-Za-z0-9-]+-RenewAll$/);
    const [workerId, worker] = Object.entries(template.findResources('AWS::Lambda::Function')).find(([, r]) =>
      String((r.Properties as Json).Description).includes('fleet worker'),
    )!;
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).map(
      (r) => (r.Properties as { Target: { Arn: unknown; Input: string } }).Target,
    );
    expect(schedules).toContainEqual(
      expect.objectContaining({ Arn: { 'Fn::GetAtt': [workerId, 'Arn'] }, Input: '{"mode":"due"}' }),
    );
    expect(schedules.filter((t) => JSON.stringify(t.Arn).includes('RenewerFunction'))).toEqual([]);
    expect(schedules).toContainEqual(expect.objectContaining({ Arn: { Ref: machineId } }));

    const env = ((worker.Properties as Json).Environment as { Variables: Record<string, unknown> }).Variables;
    const arn = literal(env.STATE_MACHINE_ARN);
    expect(arn).toBe(`arn:aws:states:us-east-1:123456789012:stateMachine:${name}`);
    expect(env).toMatchObject({ INLINE_MAX_KEYS: '2000', REPORTS_PREFIX: 'reports/' });
    const roleId = (((worker.Properties as Json).Role as Json)['Fn::GetAtt'] as string[])[0]!;
    const statements = statementsOf(template, roleId);
    const start = statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('states:')));
    expect(start).toHaveLength(1);
    expect(start[0]).toMatchObject({
      Sid: 'StartDueMapRun',
      Effect: 'Allow',
      Action: 'states:StartExecution',
    });
    expect(asArray(start[0]!.Resource).map(literal)).toEqual([arn]);
    const writes = statements.find((st) => st.Sid === 'WriteRunReportsAndManifests')!;
    expect(asArray(writes.Resource).map(literal).sort()).toEqual([
      expect.stringMatching(/\/reports\/manifests\/\*$/),
      expect.stringMatching(/\/reports\/runs\/\*$/),
    ]);
    // The state machine reads manifests and nothing else of the bucket.
    const machineRole = ((machine.Properties as Json).RoleArn as Json)['Fn::GetAtt'] as string[];
    const deny = statementsOf(template, machineRole[0]!).find((st) => st.Sid === 'ReadManifestsOnly');
    expect(deny).toMatchObject({ Effect: 'Deny', Action: 's3:GetObject' });
    expect(asArray(deny!.NotResource).map(literal)[0]).toMatch(/\/reports\/manifests\/\*$/);
  });

  it('should let no role delete certificates or the state: deletes are on staples only', () => {
    const deletes: string[] = [];
    for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
      for (const st of (policy.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument
        .Statement) {
        if (
          st.Effect === 'Allow' &&
          asArray(st.Action).some((a) => a === 's3:DeleteObject' || a === 's3:*')
        ) {
          deletes.push(...asArray(st.Resource).map(literal));
        }
      }
    }
    // The renewer and the worker withhold revoked staples; the worker also retires removed ones.
    expect(deletes.length).toBeGreaterThanOrEqual(1);
    for (const resource of deletes) expect(resource).toMatch(/^<RenewerBucket[0-9A-F]+\.Arn>\/staples\/\*$/);
  });

  it('should deny the state machine writes outside reports/', () => {
    const roleId = (
      (Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0]!.Properties as Json)
        .RoleArn as Json
    )['Fn::GetAtt'] as string[];
    const deny = statementsOf(template, roleId[0]!).find((s) => s.Sid === 'WriteReportsOnly');
    expect(deny).toMatchObject({ Effect: 'Deny', Action: 's3:PutObject' });
    expect(asArray(deny!.NotResource).map(literal)[0]).toMatch(/\/reports\/\*$/);
  });

  it('should grant the worker DynamoDB item access on the table and its due index only', () => {
    const worker = Object.entries(template.findResources('AWS::Lambda::Function')).find(([, r]) =>
      String((r.Properties as Json).Description).includes('fleet worker'),
    )!;
    const roleId = (((worker[1].Properties as Json).Role as Json)['Fn::GetAtt'] as string[])[0]!;
    const ddb = statementsOf(template, roleId).find((s) => s.Sid === 'CertificateState')!;
    expect(asArray(ddb.Action).sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
    ]);
    expect(asArray(ddb.Resource).map(literal)[1]).toMatch(/\/index\/due$/);
    expect((worker[1].Properties as Json).ReservedConcurrentExecutions).toBeUndefined();
  });

  it('should acknowledge only findings cdk-nag actually makes', () => {
    class EveryFinding extends AwsSolutionsChecks {}
    Object.defineProperty(EveryFinding.prototype, 'isAcknowledged', { value: () => false });
    const findings = new EveryFinding(app)
      .validateScope(stack)
      .violations.flatMap((v) =>
        v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath! })),
      );
    const stale: string[] = [];
    for (const construct of stack.node.findAll()) {
      if (!construct.node.path.includes('/Fleet/')) continue;
      for (const entry of construct.node.metadata) {
        if (entry.type !== 'aws:cdk:acknowledged-rules') continue;
        for (const key of Object.keys(entry.data as Json)) {
          const rule = key.replace(/^annotation::/i, '');
          const path = construct.node.path;
          if (!findings.some((f) => f.rule === rule && (f.path === path || f.path.startsWith(`${path}/`)))) {
            stale.push(`${path} ${rule}`);
          }
        }
      }
    }
    expect(stale).toEqual([]);
  });

  it('should pass cdk-nag AwsSolutions with nothing left unacknowledged', () => {
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(
      report.violations.map(
        (v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(',')}`,
      ),
    ).toEqual([]);
  });
});

describe('the fleet worker bundle', () => {
  it('should bundle batch-handler.ts into one ES module that loads and exports handler', async () => {
    const outdir = await mkdtemp(join(tmpdir(), 'ocsp-renewer-fleet-cdk-'));
    try {
      const app = new App({ outdir, context: CDK_JSON.context });
      const stack = new OcspRenewerStack(app, 'OcspRenewer', { fleet: {} });
      const worker = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function')).find(
        (r) => String((r.Properties as Json).Description).includes('fleet worker'),
      )!;
      const key = ((worker.Properties as Json).Code as { S3Key: string }).S3Key.replace(/\.zip$/, '');
      const bundlePath = join(outdir, `asset.${key}`, 'index.mjs');
      const bundle = readFileSync(bundlePath, 'utf8');
      expect(bundle).toContain('upload batch');
      const imports = [...bundle.matchAll(/\bfrom\s*"([^"]+)"/g)].map((m) => m[1]!);
      expect(imports.filter((s) => !s.startsWith('node:'))).toEqual([]);
      const mod = (await import(pathToFileURL(bundlePath).href)) as { handler?: unknown };
      expect(typeof mod.handler).toBe('function');
    } finally {
      await rm(outdir, { recursive: true, force: true });
    }
  }, 120_000);
});
