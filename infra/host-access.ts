import { SecretValue } from 'aws-cdk-lib';
import { AccessKey, ManagedPolicy, PolicyStatement, User } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge, deployedScope, nagArn } from './cdk-helpers.js';
import type { HostAccess } from './renewer-props.js';

export interface HostStapleAccessProps {
  readonly bucket: IBucket;
  readonly staplesPrefix: string;
  readonly hostAccess: HostAccess;
}

/**
 * What hosts read staples with (`hostAccess`): a managed policy that reads the staples and lists
 * their prefix, nothing else (`policy`); with `policy-and-user`, also an IAM user with only that
 * policy, its access key kept in a Secrets Manager secret; nothing with `none`. Created in their
 * deployed scope (cdk-helpers.ts `deployedScope`).
 */
export class HostStapleAccess extends Construct {
  /** Reads the staples: attach it to instance roles or IAM Roles Anywhere roles. */
  readonly hostPolicy?: ManagedPolicy;
  /** With hostAccess 'policy-and-user': the user whose key hosts outside AWS use. */
  readonly hostUser?: User;
  /** With hostAccess 'policy-and-user': `{"accessKeyId": …, "secretAccessKey": …}`. */
  readonly hostUserSecret?: Secret;

  constructor(scope: Construct, id: string, props: HostStapleAccessProps) {
    super(scope, id);
    const { bucket, staplesPrefix, hostAccess } = props;
    const renewer = deployedScope(this);
    if (hostAccess === 'none') return;
    const hostPolicy = (this.hostPolicy = new ManagedPolicy(renewer, 'HostPolicy', {
      description: `ocsp-renewer: read the staples under ${staplesPrefix} (for the hosts that serve them)`,
      statements: [
        new PolicyStatement({
          sid: 'ReadStaples',
          actions: ['s3:GetObject'],
          resources: [bucket.arnForObjects(`${staplesPrefix}*`)],
        }),
        new PolicyStatement({
          sid: 'ListStaples',
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: { StringLike: { 's3:prefix': [staplesPrefix, `${staplesPrefix}*`] } },
        }),
      ],
    }));
    acknowledge(hostPolicy, `AwsSolutions-IAM5[Resource::${nagArn(bucket)}/${staplesPrefix}*]`, [
      `A host reads every staple under ${staplesPrefix} (one per certificate); read-only, this`,
      'bucket only.',
    ]);
    if (hostAccess !== 'policy-and-user') return;
    this.hostUser = new User(renewer, 'HostUser', { managedPolicies: [hostPolicy] });
    const key = new AccessKey(renewer, 'HostUserAccessKey', { user: this.hostUser });
    this.hostUserSecret = new Secret(renewer, 'HostUserKey', {
      description: 'ocsp-renewer: access key of the host user (reads staples only)',
      secretObjectValue: {
        accessKeyId: SecretValue.unsafePlainText(key.accessKeyId),
        secretAccessKey: key.secretAccessKey,
      },
    });
    acknowledge(this.hostUserSecret, 'AwsSolutions-SMG4', [
      'The secret holds an IAM access key created by CloudFormation; rotating it means a new key',
      '(redeploy), not a Secrets Manager rotation Lambda. The key can only read staples, which are',
      'public OCSP responses.',
    ]);
  }
}
