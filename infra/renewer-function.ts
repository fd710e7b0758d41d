import { fileURLToPath } from 'node:url';
import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { Construct, IConstruct } from 'constructs';
import { acknowledge, nagArn } from './cdk-helpers.js';

/** Resolved from this file, not from the working directory, so any caller finds the handler. */
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const HANDLER_ENTRY = fileURLToPath(new URL('../lambda/aws/handler.ts', import.meta.url));
const LOCK_FILE = fileURLToPath(new URL('../package-lock.json', import.meta.url));
/** The function's memory unless the caller sets `memorySize` (the bench uses it too). */
export const DEFAULT_MEMORY_MB = 1024;
/** The function's NODE_OPTIONS unless the caller's `environment` sets its own. */
export const DEFAULT_NODE_OPTIONS = '--enable-source-maps';

/** Where the renewer reads certificates and writes staples and its state, each ending in `/`. */
export interface StapleLayout {
  certsPrefix: string;
  staplesPrefix: string;
  statePrefix: string;
}

export interface RenewerFunctionProps extends Omit<
  NodejsFunctionProps,
  | 'entry'
  | 'handler'
  | 'runtime'
  | 'architecture'
  | 'projectRoot'
  | 'depsLockFilePath'
  | 'bundling'
  | 'logGroup'
> {
  /**
   * What happens to the log group when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly logGroupRemovalPolicy?: RemovalPolicy;
}

/**
 * The renewer Lambda (`lambda/aws/handler.ts`, export `handler`), bundled locally by esbuild — no
 * Docker. Runtime, architecture, entry and bundling are fixed; the rest are defaults:
 *
 * - `runtime` pinned to `Runtime.NODEJS_24_X` (never `NODEJS_LATEST`: a runtime change is a
 *   reviewed change), `architecture` `ARM_64`;
 * - bundle: ES module (`index.mjs`, `mainFields` module,main, a banner that creates `require` with
 *   `createRequire` for CommonJS dependencies), minified, with a source map, and the AWS SDK
 *   bundled (`bundleAwsSDK`) so the SDK that runs is the one in package-lock.json that the tests
 *   ran against, not whichever the runtime ships;
 * - `NODE_OPTIONS=--enable-source-maps` so stack traces name the TypeScript sources;
 * - `memorySize` 1024 MB: parsing and validation are CPU-bound (~4 000–5 000 certificates/s per
 *   core cold, `npm run bench`) and Lambda allots CPU in proportion to memory;
 * - `timeout` 5 minutes: a due run of up to INLINE_MAX_KEYS (2 000) certificates, an upload batch
 *   or a map child's 250 keys, with room for slow responders; the handler stops taking
 *   certificates before the deadline anyway (the upload queue's visibility is 6 × this);
 * - no reserved concurrency: conditional writes make overlapping invocations safe;
 * - a log group of its own, kept 3 months (`RetentionDays.THREE_MONTHS`), passed as `logGroup`
 *   (no LogRetention custom resource), with `loggingFormat` JSON;
 * - a role of its own that may write to that log group and nothing else, until `bindStaples()`,
 *   `bindSecrets()`, `bindStatusPage()`, `bindTable()` and `bindDueRun()` add exactly what the
 *   renewer needs (no `AWSLambdaBasicExecutionRole`), each with the cdk-nag acknowledgements of
 *   its object-prefix wildcards.
 *
 * Other NodejsFunction props (memorySize, timeout, environment, role, …) override these.
 */
export class RenewerFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: RenewerFunctionProps = {}) {
    const { logGroupRemovalPolicy, ...rest } = props;
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: RetentionDays.THREE_MONTHS,
      removalPolicy: logGroupRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    const role =
      props.role ??
      new Role(scope, `${id}Role`, {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
        description: 'ocsp-renewer: writes its log group; reads certificates, writes staples and state',
      });
    super(scope, id, {
      description: 'ocsp-renewer: renews OCSP staples for the certificates in S3',
      memorySize: DEFAULT_MEMORY_MB,
      timeout: Duration.minutes(5),
      loggingFormat: LoggingFormat.JSON,
      ...rest,
      logGroup,
      role,
      environment: {
        NODE_OPTIONS: DEFAULT_NODE_OPTIONS,
        ...props.environment,
      },
      entry: HANDLER_ENTRY,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      projectRoot: REPO_ROOT,
      depsLockFilePath: LOCK_FILE,
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        bundleAwsSDK: true,
      },
    });
    logGroup.grantWrite(role);
  }

  /**
   * Points the renewer at a bucket (BUCKET, CERTS_PREFIX, STAPLES_PREFIX, STATE_PREFIX) and grants
   * it exactly that: read certificates; read and write staples; read the old state object
   * (seeding); list the certificate and staple prefixes; delete under the staples prefix only (a
   * revoked certificate's staple, with ON_REVOKED=withhold, and its `.withheld` marker once a new
   * staple is written). Never a delete of a certificate or of the state.
   *
   * The list grant also covers object keys under the state prefix: for a GET of a missing key S3
   * answers 404 rather than 403 only to a caller allowed to list that key (evaluated with
   * `s3:prefix` = the key), and a first run finds no state object.
   */
  bindStaples(bucket: IBucket, layout: StapleLayout): void {
    const { certsPrefix, staplesPrefix, statePrefix } = layout;
    this.addEnvironment('BUCKET', bucket.bucketName);
    this.addEnvironment('CERTS_PREFIX', certsPrefix);
    this.addEnvironment('STAPLES_PREFIX', staplesPrefix);
    this.addEnvironment('STATE_PREFIX', statePrefix);
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadCertificates',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${certsPrefix}*`)],
      }),
    );
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadWriteStaples',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [bucket.arnForObjects(`${staplesPrefix}*`)],
      }),
    );
    // The old design's state object, read once by the first due run to seed the state table.
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadOldState',
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${statePrefix}*`)],
      }),
    );
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'RemoveWithheldStaples',
        actions: ['s3:DeleteObject'],
        resources: [bucket.arnForObjects(`${staplesPrefix}*`)],
      }),
    );
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListCertificatesAndStaples',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: {
          StringLike: {
            's3:prefix': [
              certsPrefix,
              `${certsPrefix}*`,
              staplesPrefix,
              `${staplesPrefix}*`,
              `${statePrefix}*`,
            ],
          },
        },
      }),
    );
    for (const prefix of [certsPrefix, staplesPrefix, statePrefix]) this.acknowledgePrefix(bucket, prefix);
  }

  /**
   * Has the renewer write its HTML status page to `key` (STATUS_PAGE_KEY) after a scheduled run,
   * at most hourly (aws/status-page.ts), and each run's full report under the key's folder
   * (REPORTS_PREFIX, `reports/runs/…json`), with PutObject on that folder only (`reports/*`): no
   * read, no delete.
   */
  bindStatusPage(bucket: IBucket, key: string): void {
    const folder = key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : key;
    this.addEnvironment('STATUS_PAGE_KEY', key);
    if (folder.endsWith('/')) this.addEnvironment('REPORTS_PREFIX', folder);
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteStatusPage',
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(folder.endsWith('/') ? `${folder}*` : folder)],
      }),
    );
    if (folder.endsWith('/')) this.acknowledgePrefix(bucket, folder);
  }

  /** The state table (STATE_TABLE): one item per certificate and its due index, no table admin. */
  bindTable(table: ITable, dueIndex: string): void {
    this.addEnvironment('STATE_TABLE', table.tableName);
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'CertificateState',
        actions: [
          'dynamodb:GetItem',
          'dynamodb:BatchGetItem',
          'dynamodb:PutItem',
          'dynamodb:DeleteItem',
          'dynamodb:Query',
          'dynamodb:Scan', // the status page (aws/status-page.ts), at most hourly
        ],
        resources: [table.tableArn, `${table.tableArn}/index/${dueIndex}`],
      }),
    );
  }

  /**
   * What the due run hands over: run reports and due manifests under `reportsPrefix`
   * (REPORTS_PREFIX; PutObject only, no read or delete), the state machine it starts for a large
   * set (STATE_MACHINE_ARN, StartExecution on it only), and how many it renews itself
   * (INLINE_MAX_KEYS).
   */
  bindDueRun(
    bucket: IBucket,
    run: { reportsPrefix: string; stateMachineArn: string; inlineMaxKeys: number },
  ) {
    const { reportsPrefix, stateMachineArn, inlineMaxKeys } = run;
    this.addEnvironment('REPORTS_PREFIX', reportsPrefix);
    this.addEnvironment('STATE_MACHINE_ARN', stateMachineArn);
    this.addEnvironment('INLINE_MAX_KEYS', String(inlineMaxKeys));
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'WriteRunReportsAndManifests',
        actions: ['s3:PutObject'],
        resources: [
          bucket.arnForObjects(`${reportsPrefix}runs/*`),
          bucket.arnForObjects(`${reportsPrefix}manifests/*`),
        ],
      }),
    );
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'StartDueMapRun',
        actions: ['states:StartExecution'],
        resources: [stateMachineArn],
      }),
    );
    for (const folder of ['runs', 'manifests']) {
      acknowledge(
        this.rolePolicy(),
        `AwsSolutions-IAM5[Resource::${nagArn(bucket)}/${reportsPrefix}${folder}/*]`,
        [
          `The renewer writes one object per run under ${reportsPrefix}${folder}/ (PutObject only, no`,
          'read or delete); the wildcard is an object-key prefix in this bucket only.',
        ],
      );
    }
  }

  /**
   * Also reads certificates from the Secrets Manager secrets whose name starts with `prefix`
   * (SECRETS_PREFIX): GetSecretValue on those secrets only, and ListSecrets on `*`, because
   * ListSecrets supports no resource-level permissions. Secrets encrypted with a customer managed
   * KMS key also need `kms:Decrypt` on that key, which is not granted here.
   */
  bindSecrets(prefix: string): void {
    this.addEnvironment('SECRETS_PREFIX', prefix);
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadCertificateSecrets',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [
          Stack.of(this).formatArn({
            service: 'secretsmanager',
            resource: 'secret',
            resourceName: `${prefix}*`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    this.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListSecretsHasNoResourceLevelPermissions',
        actions: ['secretsmanager:ListSecrets'],
        resources: ['*'],
      }),
    );
    const secretArn = `arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${prefix}*`;
    acknowledge(this.rolePolicy(), `AwsSolutions-IAM5[Resource::${secretArn}]`, [
      `Certificates are every secret whose name starts with ${prefix}; GetSecretValue is`,
      'limited to that name prefix (the trailing * also covers the random suffix of secret ARNs).',
    ]);
    acknowledge(this.rolePolicy(), 'AwsSolutions-IAM5[Resource::*]', [
      'secretsmanager:ListSecrets supports no resource-level permissions; the statement holds only',
      'that action, and secret values stay limited to the prefix.',
    ]);
  }

  /** The role's DefaultPolicy, where cdk-nag reports the grants above. */
  private rolePolicy(): IConstruct {
    return this.role!.node.findChild('DefaultPolicy');
  }

  /** Acknowledges the object-prefix wildcard of a grant on `prefix` in this bucket. */
  private acknowledgePrefix(bucket: IBucket, prefix: string): void {
    acknowledge(this.rolePolicy(), `AwsSolutions-IAM5[Resource::${nagArn(bucket)}/${prefix}*]`, [
      `The renewer works on every object under ${prefix} (one object per certificate, named by`,
      'the operator); the wildcard is an object-key prefix in this bucket only, with GetObject',
      '(and PutObject for staples and the status page; DeleteObject for staples only, to withhold a revoked',
      "certificate's staple), never a write or delete of a certificate or of the old state object.",
    ]);
  }
}
