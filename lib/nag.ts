import type { Stack } from 'aws-cdk-lib';

/** A resource ARN the way cdk-nag names it in a finding: tokens as `<Ref>`. */
export function nagResourceName(stack: Stack, arn: string): string {
  const resolved: unknown = stack.resolve(arn);
  if (typeof resolved === 'string') return resolved;
  const [, parts] = (resolved as { 'Fn::Join': [string, Array<string | { Ref: string }>] })['Fn::Join'];
  return parts.map((part) => (typeof part === 'string' ? part : `<${part.Ref}>`)).join('');
}
