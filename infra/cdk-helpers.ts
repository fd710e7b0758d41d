import { Stack, Validations, type CfnResource } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * The props that are set: undefined ones dropped (so `{ ...DEFAULTS, ...definedOnly(props) }`
 * keeps a default), and with `emptyIsUnset` the empty strings too (context values from `-c`).
 */
export function definedOnly<T extends object>(props: T, emptyIsUnset = false): Partial<T> {
  return Object.fromEntries(
    Object.entries(props).filter(([, v]) => v !== undefined && !(emptyIsUnset && v === '')),
  ) as Partial<T>;
}

/** A resource's logical id as a plain string (for cdk-nag acknowledgement ids). */
export function logicalIdOf(resource: CfnResource): string {
  return Stack.of(resource).resolve(resource.logicalId) as string;
}

/** Acknowledges a cdk-nag finding on `scope`, with the reason in words. */
export function acknowledge(scope: IConstruct, id: string, reason: string[]): void {
  Validations.of(scope).acknowledge({ id, reason: reason.join(' ') });
}
