/**
 * The CDK stack, synthesized without bundling (`aws:cdk:bundling-stacks: []`) and with cdk.json's
 * context (feature flags and defaults), as `npx cdk synth` would. Each block asserts one promise
 * of the README's "Deploy" section; cdk-nag's AwsSolutions pack must find nothing unacknowledged.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Capture, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { OCSP_RENEWER_DEFAULTS, OcspRenewer } from '../infra/ocsp-renewer.js';
import { propsFromContext } from '../infra/props-from-context.js';
import { scheduleIntervalMinutes } from '../infra/schedule-interval.js';
import { OcspRenewerStack, type OcspRenewerStackProps } from '../infra/stack.js';
import { publishMetrics } from '../lambda/aws/run-output.js';
import { renewerLogger, renewerMetrics } from '../lambda/aws/telemetry.js';
import { capturing } from './helpers/lambda-output.js';
import { cdkApps } from './helpers/cdk-app.js';

const CDK_JSON = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
  app: string;
  context: Record<string, unknown>;
};

const newApp = cdkApps();

function makeApp(context: Record<string, unknown> = {}): App {
  return newApp({ ...CDK_JSON.context, ...context, 'aws:cdk:bundling-stacks': [] });
}

function synth(props: OcspRenewerStackProps = {}) {
  const app = makeApp();
  const stack = new OcspRenewerStack(app, 'OcspRenewer', props);
  return { app, stack, template: Template.fromStack(stack) };
}

type Json = Record<string, unknown>;
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

/** One of the template's resources by type; fails unless there is exactly one. */
function only(template: Template, type: string, props?: Json): { id: string; resource: Json } {
  const found = template.findResources(type, props ? { Properties: Match.objectLike(props) } : undefined);
  const ids = Object.keys(found);
  expect(ids, `${type} resources`).toHaveLength(1);
  return { id: ids[0]!, resource: found[ids[0]!] as Json };
}

/** The one resource of a type whose logical id starts with `prefix`. */
function byId(template: Template, type: string, prefix: string): { id: string; resource: Json } {
  const found = Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));
  expect(
    found.map(([id]) => id),
    `${type} ${prefix}*`,
  ).toHaveLength(1);
  return { id: found[0]![0], resource: found[0]![1] as Json };
}

/** A CloudFormation string value with its tokens written as ${Ref:X} / ${X.Attr}. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Json;
  if (v.Ref) return `\${Ref:${String(v.Ref)}}`;
  if (v['Fn::GetAtt']) return `\${${(v['Fn::GetAtt'] as string[]).join('.')}}`;
  if (v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

const asArray = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** Every statement that reaches the renewer function's role: inline, attached and managed. */
function functionRoleStatements(template: Template): { statements: Statement[]; managedArns: unknown[] } {
  const fn = only(template, 'AWS::Lambda::Function', { Runtime: 'nodejs24.x' });
  const roleId = ((fn.resource.Properties as Json).Role as Json)['Fn::GetAtt'] as string[];
  const role = template.toJSON().Resources[roleId[0]!] as { Properties: Json };
  const statements: Statement[] = [];
  for (const inline of (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]) ?? []) {
    statements.push(...inline.PolicyDocument.Statement);
  }
  const attached = {
    ...template.findResources('AWS::IAM::Policy'),
    ...template.findResources('AWS::IAM::ManagedPolicy'),
  };
  for (const policy of Object.values(attached)) {
    const props = policy.Properties as {
      Roles?: { Ref: string }[];
      PolicyDocument: { Statement: Statement[] };
    };
    if (props.Roles?.some((r) => r.Ref === roleId[0])) statements.push(...props.PolicyDocument.Statement);
  }
  return { statements, managedArns: (role.Properties.ManagedPolicyArns as unknown[]) ?? [] };
}

/** cdk-nag over a scope: the findings nobody acknowledged. */
function nagViolations(app: App, scope: IConstruct) {
  const report = new AwsSolutionsChecks(app).validateScope(scope);
  return { success: report.success, violations: report.violations.map((v) => v.ruleName) };
}

describe('OcspRenewerStack with the defaults', () => {
  let app: App;
  let stack: OcspRenewerStack;
  let template: Template;
  let bucketId: string;
  let functionId: string;
  let queueId: string;
  let topicId: string;

  beforeAll(() => {
    ({ app, stack, template } = synth());
    bucketId = only(template, 'AWS::S3::Bucket').id;
    functionId = only(template, 'AWS::Lambda::Function', { Runtime: 'nodejs24.x' }).id;
    queueId = byId(template, 'AWS::SQS::Queue', 'RenewerDeadLetterQueue').id;
    topicId = only(template, 'AWS::SNS::Topic').id;
  });

  it('should keep the bucket private, encrypted, versioned, owner-enforced and retained', () => {
    const bucket = only(template, 'AWS::S3::Bucket').resource;
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 30 } }),
          // One run report object per run, kept a month.
          Match.objectLike({
            Status: 'Enabled',
            Prefix: 'reports/runs/',
            ExpirationInDays: 30,
            NoncurrentVersionExpiration: { NoncurrentDays: 1 },
          }),
          Match.objectLike({
            Status: 'Enabled',
            Prefix: 'state/',
            NoncurrentVersionExpiration: { NoncurrentDays: 1 },
          }),
        ]),
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  it('should deny non-TLS and TLS < 1.2 requests in the bucket policy', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      },
    });
  });

  it('should pin the function to nodejs24.x on arm64 with its memory, timeout, concurrency, logging and env', () => {
    const logGroupId = byId(template, 'AWS::Logs::LogGroup', 'RenewerFunctionLogs').id;
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 1024,
      Timeout: 300,
      ReservedConcurrentExecutions: Match.absent(),
      LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: logGroupId } },
      Environment: {
        Variables: {
          BUCKET: { Ref: bucketId },
          CERTS_PREFIX: 'certs/',
          STAPLES_PREFIX: 'staples/',
          STATE_PREFIX: 'state/',
          ON_REVOKED: 'publish',
          NODE_OPTIONS: '--enable-source-maps',
        },
      },
    });
    const env = only(template, 'AWS::Lambda::Function', { Runtime: 'nodejs24.x' }).resource
      .Properties as Json;
    expect((env.Environment as { Variables: Json }).Variables).not.toHaveProperty('SECRETS_PREFIX');
  });

  it('should keep the function logs 3 months, and keep the log group', () => {
    const logGroup = byId(template, 'AWS::Logs::LogGroup', 'RenewerFunctionLogs').resource;
    expect((logGroup.Properties as Json).RetentionInDays).toBe(90);
    expect(logGroup.DeletionPolicy).toBe('Retain');
    // The log group is passed in: no LogRetention custom resource.
    template.resourceCountIs('Custom::LogRetention', 0);
  });

  it('should run the function every 15 minutes with {"mode":"due"}, retries and a dead-letter queue', () => {
    const input = new Capture();
    const role = new Capture();
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [functionId, 'Arn'] },
        Input: input,
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [queueId, 'Arn'] } },
        RoleArn: { 'Fn::GetAtt': [role, 'Arn'] },
      },
    });
    expect(JSON.parse(input.asString())).toEqual({ mode: 'due' });
    const scheduleRole = template.toJSON().Resources[role.asString()] as { Properties: Json };
    expect(scheduleRole.Properties.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        },
      ],
    });
  });

  it('should encrypt the dead-letter queue, keep messages 14 days and deny non-TLS access', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('should retry failed asynchronous runs twice within an hour, then send them to the dead-letter queue', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionId },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
  });

  it('should send every certificate created or removed under certs/ to the upload queue, one filter per suffix', () => {
    const configs = new Capture();
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: bucketId },
      NotificationConfiguration: { QueueConfigurations: configs },
    });
    const uploadQueue = byId(template, 'AWS::SQS::Queue', 'RenewerFleetUploadQueue').id;
    const filters = (configs.asArray() as Json[]).map((c) => {
      expect(c.QueueArn).toEqual({ 'Fn::GetAtt': [uploadQueue, 'Arn'] });
      const rules = ((c.Filter as Json).Key as { FilterRules: { Name: string; Value: string }[] })
        .FilterRules;
      return { event: (c.Events as string[])[0], ...Object.fromEntries(rules.map((r) => [r.Name, r.Value])) };
    });
    for (const event of ['s3:ObjectCreated:*', 's3:ObjectRemoved:*']) {
      for (const suffix of ['.pem', '.crt', '.cert']) {
        expect(filters).toContainEqual({ event, prefix: 'certs/', suffix });
      }
    }
    expect(filters).toHaveLength(6);
    template.resourceCountIs('AWS::Lambda::Permission', 0); // nothing invokes the function but its mapping
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('should grant the function role least privilege: delete on staples only, no wildcard resource, listing by prefix', () => {
    const { statements, managedArns } = functionRoleStatements(template);
    expect(managedArns).toEqual([]);
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      expect(s.Effect).toBe('Allow');
      for (const action of asArray(s.Action)) {
        // Only the exact s3:DeleteObject (no DeleteObjectVersion, no wildcard), in a statement of its own.
        if (action.startsWith('s3:Delete')) expect(asArray(s.Action)).toEqual(['s3:DeleteObject']);
        expect(action).not.toMatch(/\*$/);
      }
      expect(asArray(s.Resource)).not.toContain('*');
    }
    const granted = (action: string) =>
      statements
        .filter((s) => asArray(s.Action).includes(action))
        .flatMap((s) => asArray(s.Resource).map(render));
    const bucketArn = `\${${bucketId}.Arn}`;
    // The old state object is read (seeding the state table), never written.
    expect(granted('s3:GetObject').sort()).toEqual(
      [`${bucketArn}/certs/*`, `${bucketArn}/staples/*`, `${bucketArn}/state/*`].sort(),
    );
    expect(granted('s3:PutObject').sort()).toEqual(
      [
        `${bucketArn}/staples/*`,
        `${bucketArn}/reports/*`,
        `${bucketArn}/reports/runs/*`,
        `${bucketArn}/reports/manifests/*`,
      ].sort(),
    );
    // The status page and the run reports: written, never read back, under reports/ only.
    expect(granted('s3:GetObject')).not.toContain(`${bucketArn}/reports/*`);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ STATUS_PAGE_KEY: 'reports/status.html', REPORTS_PREFIX: 'reports/' }),
      },
    });
    // Withholding a revoked certificate's staple deletes it; certificates and the state never.
    expect(granted('s3:DeleteObject')).toEqual([`${bucketArn}/staples/*`]);
    const list = statements.filter((s) => asArray(s.Action).includes('s3:ListBucket'));
    expect(list).toHaveLength(1);
    expect(asArray(list[0]!.Resource).map(render)).toEqual([bucketArn]);
    expect(list[0]!.Condition?.StringLike?.['s3:prefix']).toEqual(
      expect.arrayContaining(['certs/', 'certs/*', 'staples/', 'staples/*']),
    );
    expect(
      statements.flatMap((s) => asArray(s.Action)).filter((a) => a.startsWith('secretsmanager:')),
    ).toEqual([]);
  });

  it('should create a host policy that reads the staples only', () => {
    const policy = only(template, 'AWS::IAM::ManagedPolicy').resource.Properties as {
      PolicyDocument: { Statement: Statement[] };
      Roles?: unknown;
    };
    const statements = policy.PolicyDocument.Statement;
    expect(statements.flatMap((s) => asArray(s.Action)).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
    const get = statements.find((s) => s.Action === 's3:GetObject')!;
    expect(render(get.Resource)).toBe(`\${${bucketId}.Arn}/staples/*`);
    const list = statements.find((s) => s.Action === 's3:ListBucket')!;
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['staples/', 'staples/*'] } });
    expect(policy.Roles).toBeUndefined();
    template.resourceCountIs('AWS::IAM::User', 0);
    template.resourceCountIs('AWS::IAM::AccessKey', 0);
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it('should raise ten alarms, each notifying the topic', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 10);
    const alarm = (metricName: string, expected: Json) =>
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metricName,
        EvaluationPeriods: 1,
        AlarmActions: [{ Ref: topicId }],
        ...expected,
      });
    alarm('Errors', {
      Namespace: 'AWS/Lambda',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    alarm('ApproximateNumberOfMessagesVisible', {
      Namespace: 'AWS/SQS',
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    // The function's METRICS_SERVICE, one per deployment, is the alarms' dimension.
    const service = [{ Name: 'Service', Value: 'ocsp-renewer/OcspRenewer/Renewer' }];
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ METRICS_SERVICE: 'ocsp-renewer/OcspRenewer/Renewer' }) },
    });
    alarm('LeastValidityHours', {
      Namespace: 'OcspRenewer',
      Dimensions: service,
      Statistic: 'Minimum',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 24,
      TreatMissingData: 'notBreaching',
    });
    alarm('Revoked', {
      Namespace: 'OcspRenewer',
      Dimensions: service,
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    alarm('Renewed', {
      Namespace: 'OcspRenewer',
      Dimensions: service,
      Statistic: 'SampleCount',
      Period: 3600,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    // Certificates failing with no staple give no LeastValidityHours sample: their own alarm.
    alarm('FailingWithoutStaple', {
      Namespace: 'OcspRenewer',
      Dimensions: service,
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    // Work left for later: certificates not reached in two runs in a row (one period per run,
    // 15 minutes by default) ...
    alarm('NotReached', {
      Namespace: 'OcspRenewer',
      Dimensions: service,
      Statistic: 'Maximum',
      Period: 900,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    // ... or a run that takes 80 % of the 10-minute timeout (Lambda's own Duration metric).
    alarm('Duration', {
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 240_000,
      TreatMissingData: 'notBreaching',
    });
  });

  it('should build a dashboard: runs, least validity against the alarm, duration against the timeout, alarms, last failures', () => {
    const dashboard = only(template, 'AWS::CloudWatch::Dashboard').resource.Properties as {
      DashboardBody: unknown;
    };
    const body = JSON.parse(render(dashboard.DashboardBody)) as {
      widgets: { type: string; properties: Json }[];
    };
    const widget = (title: string) => {
      const found = body.widgets.find((w) => w.properties.title === title);
      expect(found, title).toBeDefined();
      return found!.properties as Json & {
        metrics?: unknown[][];
        annotations?: { horizontal: { value: number; label: string }[] };
        alarms?: unknown[];
        query?: string;
      };
    };
    const names = (w: { metrics?: unknown[][] }) =>
      w.metrics!.map((m) => m.filter((x) => typeof x === 'string')[1]);
    expect(names(widget('Certificates per run'))).toEqual([
      'Renewed',
      'Failed',
      'NotReached',
      'FailingWithoutStaple',
    ]);
    const validity = widget('Least validity left (hours)');
    expect(names(validity)).toEqual(['LeastValidityHours']);
    expect(validity.annotations!.horizontal).toEqual([expect.objectContaining({ value: 24 })]);
    const duration = widget('Run duration (ms) against the timeout');
    expect(names(duration)).toEqual(['Duration']);
    expect(duration.annotations!.horizontal).toEqual([
      expect.objectContaining({ value: 300_000, label: 'timeout 5 minutes' }),
      expect.objectContaining({ value: 240_000, label: 'alarm at 80 %' }),
    ]);
    const alarms = widget('Alarms');
    expect(body.widgets.find((w) => w.properties.title === 'Alarms')!.type).toBe('alarm');
    expect(alarms.alarms).toHaveLength(10);
    const failures = widget('Last failing certificates');
    expect(body.widgets.find((w) => w.properties.title === 'Last failing certificates')!.type).toBe('log');
    expect(failures.query).toContain('filter message = "certificate failed"');
    expect(failures.query).toMatch(/^SOURCE '\$\{Ref:RenewerFunctionLogs[0-9A-F]+\}'/);
  });

  it('should require TLS on the alarm topic, let CloudWatch publish, and subscribe nobody by default', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
          }),
        ]),
      },
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('should output the bucket, the function, the force-all command, the host policy and the pull settings', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.BucketName!.Value).toEqual({ Ref: bucketId });
    expect(outputs.FunctionName!.Value).toEqual({ Ref: functionId });
    const machineId = only(template, 'AWS::StepFunctions::StateMachine').id;
    expect(render(outputs.ForceAllCommand!.Value)).toBe(
      `aws stepfunctions start-execution --state-machine-arn \${Ref:${machineId}} --input '{"force":true}'`,
    );
    const description = (template.toJSON().Outputs as Record<string, { Description: string }>)
      .ForceAllCommand!.Description;
    expect(description).toContain('reports/map-runs/');
    expect(description).toContain(`'{"mode":"force"}'`);
    expect(outputs.HostPolicyArn!.Value).toEqual({ Ref: only(template, 'AWS::IAM::ManagedPolicy').id });
    expect(render(outputs.PullScriptSettings!.Value)).toBe(
      `OCSP_BUCKET=\${Ref:${bucketId}} OCSP_PREFIX=staples/ AWS_REGION=\${Ref:AWS::Region}`,
    );
    expect(outputs).not.toHaveProperty('HostUserSecretArn');
    expect(render(outputs.StatusPageCommand!.Value)).toBe(
      `aws s3 presign s3://\${Ref:${bucketId}}/reports/status.html --expires-in 3600`,
    );
    // The table `status --state dynamodb:<table>` reads.
    expect(outputs.StateTableName!.Value).toEqual({ Ref: only(template, 'AWS::DynamoDB::Table').id });
    expect(render(outputs.DashboardUrl!.Value)).toMatch(
      /#dashboards:name=\$\{Ref:RenewerDashboard[0-9A-F]+\}$/,
    );
  });

  it('should pass cdk-nag AwsSolutions with nothing left unacknowledged', () => {
    expect(nagViolations(app, stack)).toEqual({ success: true, violations: [] });
  });

  it('should acknowledge only findings cdk-nag actually makes', () => {
    expect(staleAcknowledgements(app, stack)).toEqual([]);
  });
});

/** Acknowledgements (construct path + rule id) that match no finding: each must earn its place. */
function staleAcknowledgements(app: App, scope: IConstruct): string[] {
  class EveryFinding extends AwsSolutionsChecks {}
  Object.defineProperty(EveryFinding.prototype, 'isAcknowledged', { value: () => false });
  const findings = new EveryFinding(app)
    .validateScope(scope)
    .violations.flatMap((v) =>
      v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath! })),
    );
  const stale: string[] = [];
  for (const construct of scope.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== 'aws:cdk:acknowledged-rules') continue;
      for (const key of Object.keys(entry.data as Json)) {
        const rule = key.replace(/^annotation::/i, '');
        const path = construct.node.path;
        const used = findings.some(
          (f) => f.rule === rule && (f.path === path || f.path.startsWith(`${path}/`)),
        );
        if (!used) stale.push(`${path} ${rule}`);
      }
    }
  }
  return stale;
}

describe('OcspRenewerStack options', () => {
  it('should read certificates from Secrets Manager under the prefix only when secretsPrefix is set', () => {
    const { app, stack, template } = synth({ secretsPrefix: 'tls/' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ SECRETS_PREFIX: 'tls/' }) },
    });
    const { statements } = functionRoleStatements(template);
    const get = statements.filter((s) => asArray(s.Action).includes('secretsmanager:GetSecretValue'));
    expect(get).toHaveLength(1);
    expect(asArray(get[0]!.Resource).map(render)).toEqual([
      'arn:${Ref:AWS::Partition}:secretsmanager:${Ref:AWS::Region}:${Ref:AWS::AccountId}:secret:tls/*',
    ]);
    // ListSecrets supports no resource-level permissions: the only "*" resource, alone in its statement.
    const wildcard = statements.filter((s) => asArray(s.Resource).includes('*'));
    expect(wildcard).toHaveLength(1);
    expect(wildcard[0]!.Action).toBe('secretsmanager:ListSecrets');
    // The renewer reads them (test/secrets-manager.test.ts): no "grant kept, not read" warning.
    expect(JSON.stringify(Annotations.fromStack(stack).findWarning('*', Match.anyValue()))).not.toContain(
      'secrets',
    );
    expect(nagViolations(app, stack)).toEqual({ success: true, violations: [] });
    expect(staleAcknowledgements(app, stack)).toEqual([]);
  });

  it('should add a host user whose key is kept in a secret with hostAccess policy-and-user', () => {
    const { app, stack, template } = synth({ hostAccess: 'policy-and-user' });
    const policyId = only(template, 'AWS::IAM::ManagedPolicy').id;
    const user = only(template, 'AWS::IAM::User');
    expect((user.resource.Properties as Json).ManagedPolicyArns).toEqual([{ Ref: policyId }]);
    const key = only(template, 'AWS::IAM::AccessKey', { UserName: { Ref: user.id } });
    const secret = only(template, 'AWS::SecretsManager::Secret').resource.Properties as Json;
    const secretString = render(secret.SecretString);
    expect(secretString).toContain(`"accessKeyId":"\${Ref:${key.id}}"`);
    expect(secretString).toContain(`"secretAccessKey":"\${${key.id}.SecretAccessKey}"`);
    expect(template.toJSON().Outputs).toHaveProperty('HostUserSecretArn');
    expect(nagViolations(app, stack)).toEqual({ success: true, violations: [] });
    expect(staleAcknowledgements(app, stack)).toEqual([]);
  });

  it('should create no host policy with hostAccess none', () => {
    const { template } = synth({ hostAccess: 'none' });
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
    template.resourceCountIs('AWS::IAM::User', 0);
    expect(template.toJSON().Outputs).not.toHaveProperty('HostPolicyArn');
  });

  it('should delete the bucket, its objects and the logs with removalPolicy destroy', () => {
    const { app, stack, template } = synth({ removalPolicy: 'destroy' });
    expect(only(template, 'AWS::S3::Bucket').resource.DeletionPolicy).toBe('Delete');
    for (const id of ['RenewerFunctionLogs', 'RenewerFleetStateMachineLogs']) {
      expect(byId(template, 'AWS::Logs::LogGroup', id).resource.DeletionPolicy).toBe('Delete');
    }
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 1);
    expect(nagViolations(app, stack)).toEqual({ success: true, violations: [] });
  });

  it('should subscribe alarmEmail to the alarm topic', () => {
    const { template } = synth({ alarmEmail: 'ops@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: only(template, 'AWS::SNS::Topic').id },
    });
  });

  it('should reserve no concurrency when reservedConcurrency is 0', () => {
    const { template } = synth({ reservedConcurrency: 0 });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      ReservedConcurrentExecutions: Match.absent(),
    });
  });

  it('should pass the prefixes, onRevoked and the alarm threshold through', () => {
    const { template } = synth({
      certsPrefix: 'in/',
      staplesPrefix: 'out/',
      statePrefix: 'run/',
      onRevoked: 'withhold',
      validityAlarmHours: 0.5,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          CERTS_PREFIX: 'in/',
          STAPLES_PREFIX: 'out/',
          STATE_PREFIX: 'run/',
          ON_REVOKED: 'withhold',
        }),
      },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'LeastValidityHours',
      Threshold: 0.5,
    });
    const { statements } = functionRoleStatements(template);
    const list = statements.find((s) => asArray(s.Action).includes('s3:ListBucket'))!;
    expect(list.Condition?.StringLike?.['s3:prefix']).toEqual(
      expect.arrayContaining(['in/', 'in/*', 'out/', 'out/*']),
    );
  });

  it('should keep run reports, their expiry, the status page and its grant under a custom reportsPrefix', () => {
    const { app, stack, template } = synth({ reportsPrefix: 'out/' });
    const bucket = only(template, 'AWS::S3::Bucket').resource;
    const rules = (
      bucket.Properties as { LifecycleConfiguration: { Rules: { Id: string; Prefix?: string }[] } }
    ).LifecycleConfiguration.Rules;
    expect(rules.find((r) => r.Id === 'expire-run-reports')?.Prefix).toBe('out/runs/');
    const fn = only(template, 'AWS::Lambda::Function', { Runtime: 'nodejs24.x' }).resource;
    expect((fn.Properties as { Environment: { Variables: Json } }).Environment.Variables).toMatchObject({
      STATUS_PAGE_KEY: 'out/status.html',
      REPORTS_PREFIX: 'out/',
    });
    const { statements } = functionRoleStatements(template);
    const page = statements.find((st) => st.Sid === 'WriteStatusPage')!;
    expect(asArray(page.Resource).map(render)).toEqual([
      expect.stringMatching(/^\$\{RenewerBucket\w+\.Arn\}\/out\/\*$/),
    ]);
    // Nothing the function may do names reports/ any more.
    expect(JSON.stringify(statements)).not.toContain('reports/');
    expect(render(template.toJSON().Outputs.StatusPageCommand.Value)).toMatch(
      /\/out\/status\.html --expires-in 3600$/,
    );
    expect(nagViolations(app, stack)).toEqual({ success: true, violations: [] });
  });

  it('should schedule a cron in its time zone and widen the no-run window to twice its interval', () => {
    const { template } = synth({ schedule: 'cron(0 */2 * * ? *)', timeZone: 'Europe/Berlin' });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 */2 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Berlin',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'Renewed', Period: 4 * 3600 });
  });

  it.each([
    [{ certsPrefix: 'certs' }, /certsPrefix must be a key prefix ending in "\/"/],
    [{ staplesPrefix: '/staples/' }, /staplesPrefix must be a key prefix/],
    [
      { staplesPrefix: 'certs/staples/' },
      /staplesPrefix \(certs\/staples\/\) must not be inside certsPrefix/,
    ],
    [{ schedule: 'cron(0 3 ? * MON *)' }, /must run every day/],
    [{ schedule: 'rate(2 days)' }, /at least once a day/],
    [{ schedule: 'at(2030-01-01T00:00:00)' }, /expected rate\(…\) or cron\(…\)/],
    [{ timeZone: 'Mars/Olympus' }, /timeZone must be an IANA time zone/],
    [{ hostAccess: 'everyone' as never }, /hostAccess must be policy, policy-and-user or none/],
    [{ removalPolicy: 'snapshot' as never }, /removalPolicy must be retain or destroy/],
    [{ onRevoked: 'ignore' as never }, /onRevoked must be publish or withhold/],
    [{ validityAlarmHours: 0 }, /validityAlarmHours must be a positive number/],
    [{ reservedConcurrency: 1.5 }, /reservedConcurrency must be a whole number/],
    [{ alarmEmail: 'ops' }, /alarmEmail is not an address/],
  ])('should refuse %o', (props, error) => {
    expect(() => synth(props)).toThrow(error);
  });

  it('should find the handler from any working directory', () => {
    const cwd = process.cwd();
    process.chdir(tmpdir());
    try {
      const { template } = synth();
      template.resourceCountIs('AWS::Lambda::Function', 2); // the renewer and CDK's notifications handler
    } finally {
      process.chdir(cwd);
    }
  });
});

describe('OcspRenewer embedded in another stack', () => {
  it('should pass cdk-nag there too (acknowledgements follow the logical ids)', () => {
    const app = makeApp();
    const stack = new Stack(app, 'Platform');
    new OcspRenewer(stack, 'Staples', { secretsPrefix: 'tls/', hostAccess: 'policy-and-user' });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Scheduler::Schedule', 2); // the due run and the reconcile
    expect(template.toJSON().Outputs).toBeUndefined();
    expect(nagViolations(app, stack)).toEqual({ success: true, violations: [] });
  });
});

describe('propsFromContext', () => {
  it('should carry the construct defaults in cdk.json, with the optional props empty', () => {
    expect(CDK_JSON.app).toBe('npx tsx infra/app.ts');
    const { alarmEmail, secretsPrefix, ...defaults } = Object.fromEntries(
      Object.entries(CDK_JSON.context).filter(([key]) => !key.includes(':')),
    );
    expect(defaults).toEqual(OCSP_RENEWER_DEFAULTS);
    expect({ alarmEmail, secretsPrefix }).toEqual({ alarmEmail: '', secretsPrefix: '' });
    expect(propsFromContext(makeApp().node)).toEqual({
      ...OCSP_RENEWER_DEFAULTS,
      alarmEmail: undefined,
      secretsPrefix: undefined,
      fleet: undefined,
    });
  });

  it('should parse -c values, which arrive as strings', () => {
    const props = propsFromContext(
      makeApp({
        reservedConcurrency: '0',
        validityAlarmHours: '0.5',
        alarmEmail: 'ops@example.com',
        hostAccess: 'none',
      }).node,
    );
    expect(props).toMatchObject({
      reservedConcurrency: 0,
      validityAlarmHours: 0.5,
      alarmEmail: 'ops@example.com',
      hostAccess: 'none',
    });
    expect(() => propsFromContext(makeApp({ validityAlarmHours: 'a day' }).node)).toThrow(
      /context validityAlarmHours must be a number/,
    );
  });

  it('should accept -c fleet=true|false for a release, deploy the same stack, and warn that it is ignored', () => {
    expect(propsFromContext(makeApp({ fleet: 'true' }).node).fleet).toBe(true);
    expect(propsFromContext(makeApp({ fleet: 'false' }).node).fleet).toBe(false);
    expect(() => propsFromContext(makeApp({ fleet: 'yes' }).node)).toThrow(
      'context fleet must be true or false, got "yes"',
    );
    const shapes = ['true', 'false', undefined].map((fleet) => {
      const app = makeApp(fleet === undefined ? {} : { fleet });
      const stack = new OcspRenewerStack(app, 'OcspRenewer', propsFromContext(app.node));
      const template = Template.fromStack(stack);
      template.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
      template.resourceCountIs('AWS::DynamoDB::Table', 1);
      const warnings = Annotations.fromStack(stack).findWarning(
        '*',
        Match.stringLikeRegexp('fleet is no longer a switch'),
      );
      expect(warnings.length, `fleet=${fleet}`).toBe(fleet === undefined ? 0 : 1);
      return Object.keys(template.toJSON().Resources as Json).sort();
    });
    expect(shapes[0]).toEqual(shapes[2]);
    expect(shapes[1]).toEqual(shapes[2]);
  });
});

describe('the map and queue settings, and the deprecated fleet prop', () => {
  /** The state machine's definition pieces and the upload mapping's batch size. */
  function mapAndQueue(template: Template): { definition: string; batchSize: unknown } {
    const definition = JSON.stringify(template.findResources('AWS::StepFunctions::StateMachine'));
    const mapping = only(template, 'AWS::Lambda::EventSourceMapping').resource;
    return { definition, batchSize: (mapping.Properties as Json).BatchSize };
  }
  const fleetWarnings = (stack: Stack) =>
    Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('fleet is no longer a switch'));

  it('should take the settings as props of their own, with no warning', () => {
    const { stack, template } = synth({ keysPerBatch: 7, uploadBatchSize: 10 });
    const { definition, batchSize } = mapAndQueue(template);
    expect(definition).toContain('\\"MaxItemsPerBatch\\":7,');
    expect(batchSize).toBe(10);
    expect(fleetWarnings(stack)).toHaveLength(0);
  });

  it('should still apply the deprecated fleet object for a release, without the "ignored" warning', () => {
    const { stack, template } = synth({ fleet: { keysPerBatch: 9, uploadBatchSize: 20 } });
    const { definition, batchSize } = mapAndQueue(template);
    expect(definition).toContain('\\"MaxItemsPerBatch\\":9,');
    expect(batchSize).toBe(20);
    expect(fleetWarnings(stack)).toHaveLength(0);
    // The props of the same names win over the object.
    expect(mapAndQueue(synth({ fleet: { keysPerBatch: 9 }, keysPerBatch: 8 }).template).definition).toContain(
      '\\"MaxItemsPerBatch\\":8,',
    );
  });

  it('should warn that fleet is ignored only when it is the old switch', () => {
    for (const fleet of [true, false]) {
      const { stack, template } = synth({ fleet });
      expect(fleetWarnings(stack), `fleet: ${fleet}`).toHaveLength(1);
      expect(mapAndQueue(template).definition).toContain('\\"MaxItemsPerBatch\\":250,');
    }
  });

  it('should read reconcileSchedule from the context (-c): a rate or cron in UTC, or none', () => {
    const reconcile = (context: Record<string, unknown>) => {
      const app = makeApp(context);
      const stack = new OcspRenewerStack(app, 'OcspRenewer', propsFromContext(app.node));
      const machine = only(Template.fromStack(stack), 'AWS::StepFunctions::StateMachine').id;
      return Object.values(Template.fromStack(stack).findResources('AWS::Scheduler::Schedule'))
        .map(
          (r) =>
            r.Properties as { ScheduleExpression: string; ScheduleExpressionTimezone?: string; Target: Json },
        )
        .filter((r) => JSON.stringify(r.Target.Arn) === JSON.stringify({ Ref: machine }))
        .map((r) => `${r.ScheduleExpression} ${r.ScheduleExpressionTimezone}`);
    };
    expect(reconcile({})).toEqual(['rate(1 day) Etc/UTC']);
    expect(reconcile({ reconcileSchedule: 'rate(6 hours)' })).toEqual(['rate(6 hours) Etc/UTC']);
    expect(reconcile({ reconcileSchedule: 'cron(30 3 * * ? *)' })).toEqual(['cron(30 3 * * ? *) Etc/UTC']);
    expect(reconcile({ reconcileSchedule: 'none' })).toEqual([]);
    expect(() => reconcile({ reconcileSchedule: 'daily' })).toThrow(
      'reconcileSchedule must be rate(…), cron(…) or none, got "daily"',
    );
  });
});

describe('OcspRenewerStack with fleet: the schedule, the alarms and the force-all command', () => {
  let template: Template;
  beforeAll(() => {
    template = synth({ fleet: {} }).template;
  });

  it("should give the alarms the renewer function's metrics dimension, and alarm on metrics it emits", async () => {
    const functions = Object.entries(template.findResources('AWS::Lambda::Function'));
    const serviceOf = (match: string) =>
      (
        (
          functions.find(([, r]) => String((r.Properties as Json).Description).includes(match))![1]
            .Properties as Json
        ).Environment as { Variables: Record<string, unknown> }
      ).Variables.METRICS_SERVICE;
    const renewerService = serviceOf('renews OCSP staples');
    expect(renewerService).toBe('ocsp-renewer/OcspRenewer/Renewer');
    // What the function writes for a run, through Powertools Metrics, with the stack's METRICS_SERVICE.
    const logger = renewerLogger();
    const { output } = await capturing(async () =>
      publishMetrics(
        renewerMetrics(logger),
        {
          startedAt: '',
          finishedAt: '',
          dryRun: false,
          counts: { renewed: 0, skipped: 0, failed: 0 } as never,
          revoked: 0,
          leastValidityHours: 5,
          results: [],
          notReached: [],
        },
        new Date(),
        String(renewerService),
      ),
    );
    type Emf = {
      _aws: {
        CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
      };
    };
    const [emf] = output.records().filter((r) => '_aws' in r) as unknown as (Emf & Record<string, unknown>)[];
    const [directive] = emf!._aws.CloudWatchMetrics;
    const emitted = directive!.Metrics.map((m) => m.Name);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => a.Properties as Json)
      .filter((a) => a.Namespace === 'OcspRenewer');
    expect(alarms.map((a) => a.MetricName).sort()).toEqual([
      'FailingWithoutStaple',
      'LeastValidityHours',
      'NotReached',
      'Renewed',
      'Revoked',
    ]);
    for (const a of alarms) {
      expect(a.Dimensions).toEqual([{ Name: 'Service', Value: renewerService }]);
      expect(emitted).toContain(a.MetricName);
      // An alarm matches the exact dimension set: what is emitted must be [Service], that value.
      expect(directive!.Namespace).toBe(a.Namespace);
      expect(directive!.Dimensions).toEqual([(a.Dimensions as { Name: string }[]).map((d) => d.Name)]);
      expect(emf![(a.Dimensions as { Name: string }[])[0]!.Name]).toBe(renewerService);
    }
    // An invocation that fails as a whole (any event kind: one function) alarms too.
    const functionId = only(template, 'AWS::Lambda::Function', { Runtime: 'nodejs24.x' }).id;
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId } }],
    });
  });

  it('should output the state machine start-execution command as ForceAllCommand (AWS CLI v2)', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const machineId = only(template, 'AWS::StepFunctions::StateMachine').id;
    expect(render(outputs.ForceAllCommand!.Value)).toBe(
      `aws stepfunctions start-execution --state-machine-arn \${Ref:${machineId}} --input '{"force":true}'`,
    );
    // The renewer function is still there for `aws lambda invoke … {"mode":"force"}`.
    const functionId = only(template, 'AWS::Lambda::Function', {
      Description: 'ocsp-renewer: renews OCSP staples for the certificates in S3',
    }).id;
    expect(outputs.FunctionName!.Value).toEqual({ Ref: functionId });
  });
});

describe('scheduleIntervalMinutes', () => {
  it.each([
    ['rate(15 minutes)', 15],
    ['rate(1 minute)', 1],
    ['rate(1 hour)', 60],
    ['rate(6 hours)', 360],
    ['rate(1 day)', 1440],
    ['cron(0/15 * * * ? *)', 15],
    ['cron(*/10 * * * ? *)', 10],
    ['cron(5 * * * ? *)', 60],
    ['cron(0 3 * * ? *)', 1440],
    ['cron(0 6,18 ? * * *)', 720],
    ['cron(0/20 8-17 * * ? *)', 860],
  ])('should give %s a longest gap of %i minutes', (expression, minutes) => {
    expect(scheduleIntervalMinutes(expression)).toBe(minutes);
  });

  it.each([
    'rate(0 minutes)',
    'rate(1 minutes)',
    'rate(5 minute)',
    'cron(0 3 * *)',
    'cron(61 * * * ? *)',
    'daily',
  ])('should refuse %s', (expression) => {
    expect(() => scheduleIntervalMinutes(expression)).toThrow(/schedule/);
  });
});
