import { Duration } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { STATE_TABLE } from '../lambda/adapters/dynamo-state.js';
import { acknowledge, deployedScope, removalPolicyOf } from './cdk-helpers.js';
import {
  MANIFEST_DAYS,
  MANIFESTS_FOLDER,
  MAP_RESULT_DAYS,
  MAP_RESULTS_FOLDER,
  RUN_REPORT_DAYS,
  RUN_REPORTS_FOLDER,
  type ResolvedProps,
} from './renewer-props.js';

/**
 * What the renewer keeps: the private, versioned bucket (certificates, staples, reports; what
 * expires when) and the state table (one item per certificate and the sparse, sharded due index,
 * lambda/adapters/dynamo-state.ts). Both retained unless `removalPolicy` is destroy. Created in
 * their deployed scopes (cdk-helpers.ts `deployedScope`).
 */
export class RenewerStorage extends Construct {
  readonly bucket: Bucket;
  readonly table: Table;

  constructor(scope: Construct, id: string, p: ResolvedProps) {
    super(scope, id);
    const destroy = p.removalPolicy === 'destroy';
    this.bucket = new Bucket(deployedScope(this), 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      versioned: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          // Replaced staples and certificates stay recoverable for a month.
          id: 'expire-replaced-versions',
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
          expiredObjectDeleteMarker: true,
        },
        {
          // One report object per run (~300 B a certificate): kept a month, and gone a day later.
          id: 'expire-run-reports',
          prefix: `${p.reportsPrefix}${RUN_REPORTS_FOLDER}`,
          expiration: Duration.days(RUN_REPORT_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // The state is a cache rewritten by most runs (~4 MB for 10 000 certificates): a month of
          // its old versions would be gigabytes. S3 honours the shorter of overlapping expirations.
          id: 'expire-replaced-state',
          prefix: p.statePrefix,
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          // Map results (every child's summary) and manifests are for reading soon after a run;
          // on a versioned bucket they would otherwise stay for ever.
          id: 'expire-map-results',
          prefix: `${p.reportsPrefix}${MAP_RESULTS_FOLDER}`,
          expiration: Duration.days(MAP_RESULT_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'expire-due-manifests',
          prefix: `${p.reportsPrefix}${MANIFESTS_FOLDER}`,
          expiration: Duration.days(MANIFEST_DAYS),
          noncurrentVersionExpiration: Duration.days(1),
        },
      ],
      removalPolicy: removalPolicyOf(p.removalPolicy),
      autoDeleteObjects: destroy,
    });
    acknowledge(this.bucket, 'AwsSolutions-S1', [
      'Server access logs would need a second bucket for a bucket that holds public certificates and',
      'OCSP responses; every write is the renewer (logged in its run report) or an upload by the',
      'operator. Enable CloudTrail S3 data events on this bucket if an access trail is required.',
    ]);

    this.table = new Table(deployedScope(this, 'Fleet'), 'StateTable', {
      partitionKey: { name: STATE_TABLE.partitionKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: removalPolicyOf(p.removalPolicy),
    });
    this.table.addGlobalSecondaryIndex({
      indexName: STATE_TABLE.dueIndex,
      partitionKey: { name: STATE_TABLE.dueShard, type: AttributeType.NUMBER },
      sortKey: { name: STATE_TABLE.nextDue, type: AttributeType.STRING },
      projectionType: ProjectionType.ALL,
    });
  }
}
