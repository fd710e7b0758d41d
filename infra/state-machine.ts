import { ArnFormat, Duration, Names, Stack, type CfnResource } from 'aws-cdk-lib';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  ItemBatcher,
  JitterType,
  JsonPath,
  LogLevel,
  OutputType,
  Pass,
  Result,
  ResultWriterV2,
  S3JsonItemReader,
  S3ObjectsItemReader,
  StateMachine,
  TaskInput,
  Transformation,
  type IChainable,
  type IItemReader,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { acknowledge, deployedScope, logicalIdOf, nagArn, removalPolicyOf } from './cdk-helpers.js';
import type { RenewerFunction } from './renewer-function.js';
import { MANIFESTS_FOLDER, MAP_RESULTS_FOLDER, type ResolvedProps } from './renewer-props.js';

/**
 * The transient errors of a Lambda invocation that Step Functions reports, retried with backoff
 * and full jitter: AWS's "Handle Lambda service exceptions" list plus the throttle
 * (`Lambda.TooManyRequestsException`, an account's or function's concurrency used up), which
 * would otherwise fail a child and drop its keys for that run.
 */
export const LAMBDA_TRANSIENT_ERRORS = [
  'Lambda.ClientExecutionTimeoutException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
] as const;

export interface RenewAllStateMachineProps {
  readonly bucket: Bucket;
  /** Each map child invokes it with `{"mode":"batch","keys":[…],"force":bool}`. */
  readonly renewer: RenewerFunction;
  readonly settings: ResolvedProps;
}

/**
 * The Step Functions state machine that renews every certificate (a force, the reconcile) or a
 * due run's manifest: Defaults, Source, two Distributed Maps whose children each invoke the
 * renewer with a batch of keys, Summarise. The map writes its results under the reports prefix
 * (AWS's documented ResultWriter policy there, denies elsewhere). Its log group and the state
 * machine are created in their deployed scope (cdk-helpers.ts `deployedScope`), the states under
 * this construct.
 */
export class RenewAllStateMachine extends Construct {
  readonly stateMachine: StateMachine;
  /**
   * The state machine's ARN built from its name, not a reference to it: the renewer, whose
   * function the definition names, can be given it without a dependency cycle.
   */
  readonly arnFromName: string;
  /** Renews every certificate, however many, through the Distributed Map (AWS CLI v2). */
  readonly forceAllCommand: string;

  constructor(scope: Construct, id: string, props: RenewAllStateMachineProps) {
    super(scope, id);
    const fleetScope = deployedScope(this, 'Fleet');
    const logGroup = new LogGroup(fleetScope, 'StateMachineLogs', {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: removalPolicyOf(props.settings.removalPolicy),
    });
    const stateMachineName = `${Names.uniqueResourceName(fleetScope, { maxLength: 60, separator: '-' })}-RenewAll`;
    this.arnFromName = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.stateMachine = new StateMachine(fleetScope, 'RenewAllStateMachine', {
      stateMachineName,
      comment:
        'ocsp-renewer: renew every certificate (input {"force": true|false}) or a due manifest ({"manifest": key})',
      definitionBody: DefinitionBody.fromChainable(this.definition(props)),
      tracingEnabled: true,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
    });
    this.grantResultsOnly(props);
    this.acknowledgeGrants(props);
    this.forceAllCommand = [
      `aws stepfunctions start-execution --state-machine-arn ${this.stateMachine.stateMachineArn}`,
      `--input '{"force":true}'`,
    ].join(' ');
  }

  /** Defaults (force false unless given) → Source (manifest or listing) → a map → Summarise. */
  private definition(props: RenewAllStateMachineProps): IChainable {
    const { bucket, settings: s } = props;
    // force defaults to false with Choice and Pass states, no intrinsic function (whose literal
    // arguments reserve braces). The input is {"force"} or {"manifest","force"}: nothing else is
    // kept.
    const forceDefault = new Pass(this, 'ForceDefault', {
      comment: 'no force in the input: false',
      result: Result.fromObject({ force: false }),
    });
    const manifestForceDefault = new Pass(this, 'ManifestForceDefault', {
      comment: 'a manifest without force: not forced',
      parameters: { force: false, 'manifest.$': '$.manifest' },
    });
    const badInput = new Fail(this, 'BadInput', {
      error: 'InvalidInput',
      cause: 'force must be true or false',
    });
    const map = this.batchMap(
      props,
      'RenewAll',
      'RenewBatch',
      'every certificate under the certificates prefix, in batches',
      new S3ObjectsItemReader({ bucket, prefix: s.certsPrefix }),
      { keys: JsonPath.listAt('$.Items[*].Key'), etags: JsonPath.listAt('$.Items[*].Etag') },
    );
    // A due run too large for one invocation: the keys come from its manifest (a JSON array).
    const dueMap = this.batchMap(
      props,
      'RenewDue',
      'RenewDueBatch',
      'the due certificates a due run listed in its manifest, in batches',
      new S3JsonItemReader({ bucket, key: JsonPath.stringAt('$.manifest') }),
      { keys: JsonPath.listAt('$.Items') },
    );
    const summary = new Pass(this, 'Summarise', {
      comment: 'where the results are; counts per child are in the result files',
      parameters: {
        'force.$': '$.force',
        'mapRunArn.$': '$.map.MapRunArn',
        'results.$': '$.map.ResultWriterDetails',
      },
    });
    const source = new Choice(this, 'Source', {
      comment: 'a manifest of due keys (a due run), or the certificates listing (force, reconcile)',
    })
      .when(Condition.isPresent('$.manifest'), dueMap.next(summary))
      .otherwise(map.next(summary));
    return (
      new Choice(this, 'Defaults', { comment: 'force defaults to false' })
        // A Choice rule over a missing field is a runtime error: IsPresent first.
        .when(Condition.and(Condition.isPresent('$.force'), Condition.isBoolean('$.force')), source)
        .when(Condition.isPresent('$.force'), badInput)
        .when(Condition.isPresent('$.manifest'), manifestForceDefault.next(source))
        .otherwise(forceDefault.next(source))
    );
  }

  /** A Distributed Map whose children each invoke the renewer with a batch of keys. */
  private batchMap(
    { renewer, bucket, settings: s }: RenewAllStateMachineProps,
    id: string,
    childId: string,
    comment: string,
    itemReader: IItemReader,
    keys: Record<string, unknown>,
  ): DistributedMap {
    // Each child's share of the per-host limit, so the children together stay within it.
    const perHostShare = Math.max(1, Math.floor(s.perHostLimit / s.maxConcurrency));
    const child = new LambdaInvoke(this, childId, {
      lambdaFunction: renewer,
      payload: TaskInput.fromObject({
        mode: 'batch',
        ...keys,
        force: JsonPath.stringAt('$.BatchInput.force'),
        perHostConcurrency: perHostShare,
      }),
      // The batch summary only: the result files stay small.
      resultSelector: { 'summary.$': '$.Payload' },
      retryOnServiceExceptions: false,
    });
    child.addRetry({
      errors: [...LAMBDA_TRANSIENT_ERRORS],
      interval: Duration.seconds(2),
      backoffRate: 2,
      maxAttempts: 8,
      maxDelay: Duration.minutes(2),
      jitterStrategy: JitterType.FULL,
    });
    const map = new DistributedMap(this, id, {
      comment,
      itemReader,
      itemBatcher: new ItemBatcher({
        maxItemsPerBatch: s.keysPerBatch,
        batchInput: { 'force.$': '$.force' },
      }),
      maxConcurrency: s.maxConcurrency,
      toleratedFailurePercentage: s.toleratedFailurePercentage,
      // The children's outputs only (COMPACT), not their inputs: 250 keys each would dwarf them.
      resultWriterV2: new ResultWriterV2({
        bucket,
        prefix: `${s.reportsPrefix}${MAP_RESULTS_FOLDER}`,
        writerConfig: { outputType: OutputType.JSON, transformation: Transformation.COMPACT },
      }),
      resultPath: '$.map',
    });
    map.itemProcessor(child);
    return map;
  }

  /**
   * ResultWriter: AWS's documented policy ("IAM policies for using Distributed Map states"), on
   * the results prefix. The results are written by multipart upload, hence the read and the
   * multipart actions. CDK's ResultWriterV2 and S3JsonItemReader grant these on the whole bucket;
   * the two denies keep the state machine to its results and manifests.
   */
  private grantResultsOnly({ bucket, settings: s }: RenewAllStateMachineProps): void {
    const resultsPrefix = `${s.reportsPrefix}${MAP_RESULTS_FOLDER}`;
    const manifestsPrefix = `${s.reportsPrefix}${MANIFESTS_FOLDER}`;
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteMapResults',
        actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [bucket.arnForObjects(`${resultsPrefix}*`)],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteMapResultsOnly',
        effect: Effect.DENY,
        actions: ['s3:PutObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        notResources: [bucket.arnForObjects(`${resultsPrefix}*`)],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadManifestsAndMapResultsOnly',
        effect: Effect.DENY,
        actions: ['s3:GetObject'],
        notResources: [
          bucket.arnForObjects(`${manifestsPrefix}*`),
          bucket.arnForObjects(`${resultsPrefix}*`),
        ],
      }),
    );
  }

  /** The state machine's cdk-nag acknowledgements, each with its reason. */
  private acknowledgeGrants({ bucket, renewer, settings: s }: RenewAllStateMachineProps): void {
    const resultsPrefix = `${s.reportsPrefix}${MAP_RESULTS_FOLDER}`;
    const machinePolicy = this.stateMachine.role.node.findChild('DefaultPolicy');
    acknowledge(machinePolicy, `AwsSolutions-IAM5[Resource::${nagArn(bucket)}/${resultsPrefix}*]`, [
      `A map run writes its result files under ${resultsPrefix}<map run id>/ (AWS's documented`,
      'ResultWriter actions); the wildcard is an object-key prefix in this bucket only.',
    ]);
    acknowledge(machinePolicy, `AwsSolutions-IAM5[Resource::${nagArn(renewer)}:*]`, [
      'CDK’s LambdaInvoke also names the renewer function’s versions and aliases (<arn>:*); one function only.',
    ]);
    acknowledge(machinePolicy, 'AwsSolutions-IAM5[Resource::*]', [
      'Step Functions delivers logs through CloudWatch Logs log delivery and traces through X-Ray;',
      'neither supports resource-level permissions (CDK’s StateMachine grants them on *).',
    ]);
    const machineName = JSON.stringify({
      'Fn::Select': [
        6,
        { 'Fn::Split': [':', { Ref: logicalIdOf(this.stateMachine.node.defaultChild as CfnResource) }] },
      ],
    });
    for (const execution of [`${machineName}:*`, `${machineName}/*:*`]) {
      acknowledge(
        this.stateMachine.node.findChild('DistributedMapPolicy'),
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${execution}]`,
        [
          'CDK’s DistributedMap lets the state machine describe and stop the executions of its own',
          'map runs (execution:<this state machine>…); no other state machine.',
        ],
      );
    }
    const bucketObjects = `arn:<AWS::Partition>:s3:::<${logicalIdOf(bucket.node.defaultChild as CfnResource)}>/*`;
    acknowledge(machinePolicy, `AwsSolutions-IAM5[Resource::${bucketObjects}]`, [
      `The map run writes its result files under ${resultsPrefix}: CDK's ResultWriterV2 and`,
      'S3JsonItemReader grant on the bucket’s objects; the WriteMapResultsOnly and',
      'ReadManifestsAndMapResultsOnly statements deny everything outside the results and manifests.',
    ]);
  }
}
