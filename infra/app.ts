import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { propsFromContext } from './props-from-context.js';
import { OcspRenewerStack } from './stack.js';

// Environment-agnostic: deploys into the account and region of the CLI's credentials.
const app = new App();
new OcspRenewerStack(app, 'OcspRenewer', propsFromContext(app.node));
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
