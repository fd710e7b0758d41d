import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { OcspRenewer, type OcspRenewerProps } from './ocsp-renewer.js';

export interface OcspRenewerStackProps extends StackProps, OcspRenewerProps {}

/** ocsp-renewer on its own: the OcspRenewer construct and what an operator needs from it. */
export class OcspRenewerStack extends Stack {
  readonly renewer: OcspRenewer;

  constructor(scope: Construct, id: string, props: OcspRenewerStackProps = {}) {
    super(scope, id, {
      description: 'ocsp-renewer: keeps OCSP staples fresh in S3',
      ...props,
    });
    const renewer = (this.renewer = new OcspRenewer(this, 'Renewer', props));

    new CfnOutput(this, 'BucketName', {
      description: 'Upload certificates under the certs prefix; staples appear under the staples prefix.',
      value: renewer.bucket.bucketName,
    });
    new CfnOutput(this, 'FunctionName', { value: renewer.function.functionName });
    new CfnOutput(this, 'ForceAllCommand', {
      description: `Renews every certificate now through the state machine's Distributed Map: the map's results go under ${renewer.reportsPrefix}map-runs/, each batch's run report under ${renewer.reportsPrefix}runs/. aws lambda invoke --function-name <FunctionName> --payload '{"mode":"force"}' does the same and answers with the execution and where its results go.`,
      value: renewer.forceAllCommand,
    });
    if (renewer.hostPolicy) {
      new CfnOutput(this, 'HostPolicyArn', {
        description:
          'Attach to the instance role (or IAM Roles Anywhere role) of each host that serves staples.',
        value: renewer.hostPolicy.managedPolicyArn,
      });
    }
    if (renewer.hostUserSecret) {
      new CfnOutput(this, 'HostUserSecretArn', {
        description: 'The host user access key, for hosts outside AWS (aws secretsmanager get-secret-value).',
        value: renewer.hostUserSecret.secretArn,
      });
    }
    new CfnOutput(this, 'PullScriptSettings', {
      description: 'The environment of host/pull-staples.sh.',
      value: renewer.pullScriptSettings,
    });
    new CfnOutput(this, 'StatusPageCommand', {
      description: `Prints a one-hour link to the status page (${renewer.statusPageKey}, rebuilt from the state table at most once an hour by the scheduled run); AWS CLI v2.`,
      value: renewer.statusPageCommand,
    });
    new CfnOutput(this, 'StateTableName', {
      description:
        "The per-certificate state. ocsp-renewer status s3://<bucket>/<staples prefix> --state dynamodb:<this> shows each certificate's failures and next due time.",
      value: renewer.table.tableName,
    });
    new CfnOutput(this, 'DashboardUrl', {
      description: 'The CloudWatch dashboard: renewals, least validity, run duration, alarms, last failures.',
      value: `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${renewer.dashboard.dashboardName}`,
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      description: 'Subscribe to it (or pass -c alarmEmail=…) to hear about failing renewals.',
      value: renewer.alarmTopic.topicArn,
    });
  }
}
