import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IGrantable, IPrincipal, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsCustomResource, AwsCustomResourcePolicy, type AwsSdkCall } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { executionRole } from './execution-role.ts';

export interface SdkCallProps {
  /** The call made when the resource is created and whenever its parameters change: it must be idempotent. */
  readonly onCreateOrUpdate: AwsSdkCall;
  /**
   * The call made when the resource (or its stack) is deleted.
   * @default - none
   */
  readonly onDelete?: AwsSdkCall;
  /**
   * Exactly what the calls need, as statements.
   * @default - none: the call is granted its rights as any grantee is (`table.grantWriteData(call)`)
   */
  readonly statements?: PolicyStatement[];
}

/**
 * One AWS SDK call made by CloudFormation on deploy (aws-cdk-lib's
 * AwsCustomResource) with the project's defaults: the runtime's SDK rather
 * than one downloaded at deploy time, a log group with retention, and a role
 * that writes only there and may make only the calls it is granted. One
 * per stack: the handler function is a singleton.
 */
export class SdkCall extends Construct implements IGrantable {
  public readonly resource: AwsCustomResource;
  /** The role the calls are made with: grant it what they need. */
  public readonly grantPrincipal: IPrincipal;

  constructor(scope: Construct, id: string, props: SdkCallProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = executionRole(this, 'Role', logGroup, `Deploy-time SDK call of ${this.node.path}`);
    this.resource = new AwsCustomResource(this, 'Resource', {
      onCreate: props.onCreateOrUpdate,
      onUpdate: props.onCreateOrUpdate,
      onDelete: props.onDelete,
      ...(props.statements && { policy: AwsCustomResourcePolicy.fromStatements(props.statements) }),
      role,
      logGroup,
      installLatestAwsSdk: false,
      timeout: Duration.minutes(1),
    });
    this.grantPrincipal = role;
    // Grants land in the role's default policy: the call waits for them.
    this.resource.node.addDependency(role);
  }
}
