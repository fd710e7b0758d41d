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
import { StateMachine } from 'aws-local-stepfunctions';
import { LAMBDA_TRANSIENT_ERRORS } from '../infra/state-machine.js';
import { OcspRenewerStack } from '../infra/stack.js';
import './helpers/promise-with-resolvers.js';
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

/** The bucket's ARN as render() writes it, whichever way the template names it. */
const BUCKET_ARN = 'arn:aws:s3:::<bucket>';

/** Like literal(), with the renewer bucket's Ref and Arn both rendered as BUCKET_ARN's parts. */
function render(value: unknown): string {
  const v = value as Json;
  if (typeof v === 'object' && v && String(v.Ref ?? '').startsWith('RenewerBucket')) return '<bucket>';
  const getAtt = typeof v === 'object' && v ? (v['Fn::GetAtt'] as string[] | undefined) : undefined;
  if (getAtt?.[0]?.startsWith('RenewerBucket') && getAtt[1] === 'Arn') return BUCKET_ARN;
  if (typeof v === 'object' && v && v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  return literal(value);
}

const glob = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );

/**
 * IAM's answer for one action on one resource from a role's statements: an explicit deny wins,
 * then an allow; else implicitly denied. (Conditions are not evaluated: none of these has any.)
 */
function decide(statements: Statement[], action: string, resource: string): 'allow' | 'deny' | 'implicit' {
  const matches = (st: Statement) => {
    if (!asArray(st.Action).some((a) => glob(a).test(action))) return false;
    if (st.NotResource !== undefined)
      return !asArray(st.NotResource)
        .map(render)
        .some((r) => glob(r).test(resource));
    return asArray(st.Resource)
      .map(render)
      .some((r) => glob(r).test(resource));
  };
  if (statements.some((st) => st.Effect === 'Deny' && matches(st))) return 'deny';
  return statements.some((st) => st.Effect === 'Allow' && matches(st)) ? 'allow' : 'implicit';
}

function machineRoleId(template: Template): string {
  const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0]!;
  return (((machine.Properties as Json).RoleArn as Json)['Fn::GetAtt'] as string[])[0]!;
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
    ).toThrow('reconcileSchedule must be rate(…), cron(…) or none, got "daily"');
  });

  it('should deploy the same design without the fleet prop: one function, the table, the queue, the map', () => {
    const plain = synth(false).template;
    plain.resourceCountIs('AWS::DynamoDB::Table', 1);
    plain.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    plain.resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    const renewers = Object.values(plain.findResources('AWS::Lambda::Function')).filter(
      (r) => (r.Properties as Json).Runtime === 'nodejs24.x',
    );
    expect(renewers).toHaveLength(1);
    expect(Object.keys(plain.toJSON().Resources as Json).sort()).toEqual(
      Object.keys(template.toJSON().Resources as Json).sort(),
    );
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
      ResultWriter: {
        Resource: 'arn:aws:states:::s3:putObject',
        Parameters: { Prefix: 'reports/map-runs/' },
        WriterConfig: { OutputType: 'JSON', Transformation: 'COMPACT' },
      },
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
      ResultWriter: { Parameters: { Prefix: 'reports/map-runs/' } },
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

  it('should schedule the renewer function with {"mode":"due"}, and let it start only this state machine', () => {
    const [machineId, machine] = Object.entries(
      template.findResources('AWS::StepFunctions::StateMachine'),
    )[0]!;
    const name = (machine.Properties as Json).StateMachineName as string;
    expect(name).toMatch(/^[A-Za-z0-9-]+-RenewAll$/);
    const [renewerId, renewer] = Object.entries(template.findResources('AWS::Lambda::Function')).find(
      ([, r]) => String((r.Properties as Json).Description).includes('renews OCSP staples'),
    )!;
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).map(
      (r) => (r.Properties as { Target: { Arn: unknown; Input: string } }).Target,
    );
    expect(schedules).toContainEqual(
      expect.objectContaining({ Arn: { 'Fn::GetAtt': [renewerId, 'Arn'] }, Input: '{"mode":"due"}' }),
    );
    expect(schedules).toContainEqual(expect.objectContaining({ Arn: { Ref: machineId } }));

    const env = ((renewer.Properties as Json).Environment as { Variables: Record<string, unknown> })
      .Variables;
    const arn = literal(env.STATE_MACHINE_ARN);
    expect(arn).toBe(`arn:aws:states:us-east-1:123456789012:stateMachine:${name}`);
    expect(env).toMatchObject({ INLINE_MAX_KEYS: '2000', REPORTS_PREFIX: 'reports/' });
    const roleId = (((renewer.Properties as Json).Role as Json)['Fn::GetAtt'] as string[])[0]!;
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
    // The state machine reads manifests (and its own results) and nothing else of the bucket.
    const machineRole = ((machine.Properties as Json).RoleArn as Json)['Fn::GetAtt'] as string[];
    const machineStatements = statementsOf(template, machineRole[0]!);
    expect(decide(machineStatements, 's3:GetObject', `${BUCKET_ARN}/reports/manifests/2026-x.json`)).toBe(
      'allow',
    );
    expect(decide(machineStatements, 's3:GetObject', `${BUCKET_ARN}/certs/a.pem`)).toBe('deny');
    expect(decide(machineStatements, 's3:GetObject', `${BUCKET_ARN}/reports/runs/x.json`)).toBe('deny');
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
    // The renewer function withholds revoked staples and retires the staples of removed certificates.
    expect(deletes.length).toBeGreaterThanOrEqual(1);
    for (const resource of deletes) expect(resource).toMatch(/^<RenewerBucket[0-9A-F]+\.Arn>\/staples\/\*$/);
  });

  it('should deny the state machine writes outside its results prefix', () => {
    const statements = statementsOf(template, machineRoleId(template));
    for (const key of ['staples/a.ocsp', 'certs/a.pem', 'reports/status.html', 'reports/runs/x.json']) {
      expect(decide(statements, 's3:PutObject', `${BUCKET_ARN}/${key}`), key).toBe('deny');
    }
  });

  it('should grant the renewer function DynamoDB item access on the table and its due index only', () => {
    const renewer = Object.entries(template.findResources('AWS::Lambda::Function')).find(([, r]) =>
      String((r.Properties as Json).Description).includes('renews OCSP staples'),
    )!;
    const roleId = (((renewer[1].Properties as Json).Role as Json)['Fn::GetAtt'] as string[])[0]!;
    const ddb = statementsOf(template, roleId).find((s) => s.Sid === 'CertificateState')!;
    expect(asArray(ddb.Action).sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:Scan',
    ]);
    expect(asArray(ddb.Resource).map(literal)[1]).toMatch(/\/index\/due$/);
    expect((renewer[1].Properties as Json).ReservedConcurrentExecutions).toBeUndefined();
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

describe('the fleet stack against AWS documented semantics (issue 21 review)', () => {
  let template: Template;
  let definition: Json;
  beforeAll(() => {
    ({ template } = synth(true));
    const machine = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0]!;
    definition = JSON.parse(literal((machine.Properties as Json).DefinitionString)) as Json;
  });

  it("should let the map's ResultWriter use every action of AWS's documented policy on its results", () => {
    const statements = statementsOf(template, machineRoleId(template));
    // AWS: "IAM policies for using Distributed Map states", writing results to S3.
    const documented = [
      's3:PutObject',
      's3:GetObject',
      's3:ListMultipartUploadParts',
      's3:AbortMultipartUpload',
    ];
    const results = statements.find((st) => st.Sid === 'WriteMapResults')!;
    expect(results).toMatchObject({ Effect: 'Allow' });
    expect(asArray(results.Action).sort()).toEqual([...documented].sort());
    expect(asArray(results.Resource).map(render)).toEqual([`${BUCKET_ARN}/reports/map-runs/*`]);
    // An explicit deny wins over any allow: none may cover a result object.
    const key = `${BUCKET_ARN}/reports/map-runs/0c1d-map-run/SUCCEEDED_0.json`;
    for (const action of documented) expect(decide(statements, action, key), action).toBe('allow');
  });

  it('should retry map children on Lambda throttling and transient errors, with backoff and full jitter', () => {
    const states = definition.States as Record<string, Json>;
    for (const [map, task] of [
      ['RenewAll', 'RenewBatch'],
      ['RenewDue', 'RenewDueBatch'],
    ] as const) {
      const child = (states[map]!.ItemProcessor as { States: Record<string, Json> }).States[task]!;
      const retry = child.Retry as Json[];
      expect(retry).toHaveLength(1);
      expect(retry[0]!.ErrorEquals).toEqual(expect.arrayContaining([...LAMBDA_TRANSIENT_ERRORS]));
      expect(retry[0]!.ErrorEquals).toContain('Lambda.TooManyRequestsException');
      expect(retry[0]).toMatchObject({
        JitterStrategy: 'FULL',
        BackoffRate: 2,
        MaxAttempts: 8,
        MaxDelaySeconds: 120,
      });
    }
  });

  it('should put no reserved character inside an intrinsic function', () => {
    const intrinsics: string[] = [];
    const walk = (v: unknown, key = ''): void => {
      if (typeof v === 'string' && key.endsWith('.$') && v.startsWith('States.')) intrinsics.push(v);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
    };
    walk(definition);
    // AWS reserves ' { } \ in intrinsic arguments; this definition needs no intrinsic at all.
    expect(intrinsics).toEqual([]);
  });

  it('should default force to false with a Choice and a Pass, keep a boolean, and refuse anything else', async () => {
    // The parent's head as synthesized, its two maps replaced by Succeed (aws-local-stepfunctions
    // runs no ItemReader): what reaches a map is the state the map would get.
    const States = {
      ...(definition.States as Record<string, Json>),
      RenewAll: { Type: 'Succeed' },
      RenewDue: { Type: 'Succeed' },
    };
    delete (States as Record<string, unknown>).Summarise;
    const head = new StateMachine({ StartAt: definition.StartAt as string, States } as never);
    const run = async (input: Json) => {
      const execution = head.run(input as never);
      return execution.result;
    };
    expect(await run({})).toEqual({ force: false });
    expect(await run({ force: true })).toEqual({ force: true });
    expect(await run({ manifest: 'reports/manifests/m.json' })).toEqual({
      manifest: 'reports/manifests/m.json',
      force: false,
    });
    await expect(run({ force: 'yes' })).rejects.toMatchObject({
      name: 'ExecutionError',
      cause: { name: 'InvalidInput', message: 'force must be true or false' },
    });
  });

  it('should let S3 send to the upload queue only for this bucket and this account', () => {
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    const fromS3 = policies
      .flatMap((p) => (p.Properties as { PolicyDocument: { Statement: Json[] } }).PolicyDocument.Statement)
      .filter((st) => JSON.stringify(st.Principal).includes('s3.amazonaws.com'));
    expect(fromS3).toHaveLength(1);
    expect(fromS3[0]).toMatchObject({
      Effect: 'Allow',
      Condition: {
        ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [expect.stringMatching(/^RenewerBucket/), 'Arn'] } },
        StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      },
    });
  });

  it('should alarm on dead-lettered uploads and on failed executions, and dead-letter the reconcile', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Json,
    );
    const topic = Object.keys(template.findResources('AWS::SNS::Topic'))[0]!;
    const uploadDlq = Object.entries(template.findResources('AWS::SQS::Queue')).find(([id]) =>
      id.includes('UploadDeadLetterQueue'),
    )![0];
    const onUploadDlq = alarms.find((a) => JSON.stringify(a.Dimensions ?? []).includes(uploadDlq))!;
    expect(onUploadDlq).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
      AlarmActions: [{ Ref: topic }],
    });
    const machineId = Object.keys(template.findResources('AWS::StepFunctions::StateMachine'))[0]!;
    const onExecutions = alarms.find((a) => JSON.stringify(a.Metrics ?? []).includes('ExecutionsFailed'))!;
    expect(JSON.stringify(onExecutions.Metrics)).toContain('ExecutionsTimedOut');
    expect(JSON.stringify(onExecutions.Metrics)).toContain(machineId);
    expect(onExecutions).toMatchObject({ Threshold: 1, AlarmActions: [{ Ref: topic }] });

    const reconcile = Object.values(template.findResources('AWS::Scheduler::Schedule'))
      .map((r) => (r.Properties as { Target: Json }).Target)
      .find((t) => JSON.stringify(t.Arn).includes(machineId))!;
    expect(reconcile.DeadLetterConfig).toEqual({
      Arn: { 'Fn::GetAtt': [expect.stringMatching(/DeadLetterQueue/), 'Arn'] },
    });
  });

  it('should expire map results and due manifests, whose objects would otherwise stay for ever', () => {
    const bucket = Object.entries(template.findResources('AWS::S3::Bucket')).find(([id]) =>
      id.startsWith('RenewerBucket'),
    )![1];
    const rules = ((bucket.Properties as Json).LifecycleConfiguration as { Rules: Json[] }).Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({
        Prefix: 'reports/map-runs/',
        Status: 'Enabled',
        ExpirationInDays: 30,
        NoncurrentVersionExpiration: { NoncurrentDays: 1 },
      }),
    );
    expect(rules).toContainEqual(
      expect.objectContaining({ Prefix: 'reports/manifests/', Status: 'Enabled', ExpirationInDays: 7 }),
    );
    // The map writes only there.
    const states = definition.States as Record<string, Json>;
    for (const map of ['RenewAll', 'RenewDue']) {
      expect((states[map]!.ResultWriter as { Parameters: Json }).Parameters.Prefix).toBe('reports/map-runs/');
    }
  });
});

describe('the renewer bundle', () => {
  it('should bundle handler.ts into one ES module that loads and exports handler', async () => {
    const outdir = await mkdtemp(join(tmpdir(), 'ocsp-renewer-fleet-cdk-'));
    try {
      const app = new App({ outdir, context: CDK_JSON.context });
      const stack = new OcspRenewerStack(app, 'OcspRenewer', { fleet: {} });
      const renewer = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function')).find(
        (r) => String((r.Properties as Json).Description).includes('renews OCSP staples'),
      )!;
      const key = ((renewer.Properties as Json).Code as { S3Key: string }).S3Key.replace(/\.zip$/, '');
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
