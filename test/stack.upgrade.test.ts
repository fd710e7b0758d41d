/**
 * A deployed stack must update in place. CloudFormation identifies a resource by its logical ID,
 * which CDK derives from the construct path: a resource whose ID changes is a new resource, and
 * the old one is deleted — a new, empty bucket or state table, a named state machine that fails to
 * create, or the bucket-notifications custom resource wiping the notifications when the old one is
 * deleted after the new one was created. test/fixtures/stack-logical-ids.json is every resource's
 * logical ID, type and explicit physical name as the stack was deployed before infra/ was split
 * into small constructs (synthesized from that code); the synthesized stack must match it exactly.
 * Never regenerate the fixture: a resource added on purpose is added to it by hand.
 */
import { readFileSync } from 'node:fs';
import { Stack, type App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { OcspRenewer } from '../infra/ocsp-renewer.js';
import { OcspRenewerStack } from '../infra/stack.js';
import { cdkApps } from './helpers/cdk-app.js';

type Ids = Record<string, string | { Type: string; [name: string]: string }>;
const FIXTURE = JSON.parse(
  readFileSync(new URL('fixtures/stack-logical-ids.json', import.meta.url), 'utf8'),
) as Record<string, Ids>;
const CDK_JSON = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
  context: Record<string, unknown>;
};
/** The properties that give a resource an explicit physical name (a change replaces it). */
const NAME_PROPERTIES = [
  'BucketName',
  'TableName',
  'QueueName',
  'StateMachineName',
  'LogGroupName',
  'FunctionName',
  'RoleName',
  'ManagedPolicyName',
  'UserName',
  'Name',
  'TopicName',
  'DashboardName',
  'AlarmName',
];

const newApp = cdkApps();

/** The stacks the fixture was made from: the defaults, every optional resource, and embedding. */
const VARIANTS: Record<string, (app: App) => Stack> = {
  default: (app) => new OcspRenewerStack(app, 'OcspRenewer', {}),
  options: (app) =>
    new OcspRenewerStack(app, 'OcspRenewer', {
      secretsPrefix: 'tls/',
      hostAccess: 'policy-and-user',
      alarmEmail: 'ops@example.com',
      removalPolicy: 'destroy',
    }),
  none: (app) =>
    new OcspRenewerStack(app, 'OcspRenewer', {
      hostAccess: 'none',
      reservedConcurrency: 3,
      schedule: 'cron(0 */2 * * ? *)',
      timeZone: 'Europe/Berlin',
      certsPrefix: 'c/',
      staplesPrefix: 's/',
      statePrefix: 'st/',
      onRevoked: 'withhold',
      validityAlarmHours: 2,
    }),
  embedded: (app) => {
    const stack = new Stack(app, 'Host');
    new OcspRenewer(stack, 'Staples', { secretsPrefix: 'tls/', hostAccess: 'policy-and-user' });
    return stack;
  },
};

/** Logical ID → type, with the explicit physical names (string-valued) where there are any. */
function logicalIds(stack: Stack): Ids {
  const resources = Template.fromStack(stack).toJSON().Resources as Record<
    string,
    { Type: string; Properties?: Record<string, unknown> }
  >;
  const ids: Ids = {};
  for (const id of Object.keys(resources).sort()) {
    const { Type, Properties = {} } = resources[id]!;
    const names = Object.fromEntries(
      NAME_PROPERTIES.filter((n) => typeof Properties[n] === 'string').map((n) => [
        n,
        Properties[n] as string,
      ]),
    );
    ids[id] = Object.keys(names).length > 0 ? { Type, ...names } : Type;
  }
  return ids;
}

describe('updating a deployed stack', () => {
  it('should cover every variant the fixture holds', () => {
    expect(Object.keys(VARIANTS).sort()).toEqual(Object.keys(FIXTURE).sort());
  });

  for (const [name, make] of Object.entries(VARIANTS)) {
    it(`should keep every logical ID, type and physical name (${name})`, () => {
      const stack = make(newApp({ ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [] }));
      expect(logicalIds(stack)).toEqual(FIXTURE[name]);
    });
  }
});
