import { Annotations, AspectPriority, Aspects, RemovalPolicy, Stack, type IAspect } from 'aws-cdk-lib';
import { CfnUserPool } from 'aws-cdk-lib/aws-cognito';
import { CfnGlobalTable } from 'aws-cdk-lib/aws-dynamodb';
import { CfnLogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnBucket } from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import { ServiceFunction } from './service-function.ts';

export interface StagePoliciesProps {
  /**
   * Stateful resources (tables, user pools, log groups, buckets) outlive
   * their stack, and tables and user pools refuse deletion.
   */
  readonly retainData: boolean;
  /** How long every log group keeps its events. */
  readonly logRetention: RetentionDays;
  /** The CloudWatch namespace of every function's metrics (Powertools' `POWERTOOLS_METRICS_NAMESPACE`). */
  readonly metricsNamespace: string;
}

/**
 * What a stage decides for every resource of a kind, applied in one place
 * instead of threaded through each construct's props: removal policies and
 * deletion protection of stateful resources, log retention, and the metrics
 * namespace. Constructs keep their own defaults (a bare `Stack` in a test
 * gets those); the app applies these over them.
 */
export class StagePolicies implements IAspect {
  static applyTo(scope: IConstruct, props: StagePoliciesProps): void {
    Aspects.of(scope).add(new StagePolicies(props), { priority: AspectPriority.MUTATING });
  }

  private constructor(private readonly props: StagePoliciesProps) {}

  visit(node: IConstruct): void {
    const { retainData, logRetention, metricsNamespace } = this.props;
    const removal = retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    if (node instanceof CfnLogGroup) {
      node.retentionInDays = logRetention;
      node.applyRemovalPolicy(removal);
    } else if (node instanceof CfnGlobalTable) {
      node.applyRemovalPolicy(removal);
      const replicas = Stack.of(node).resolve(node.replicas) as unknown[];
      for (const index of replicas.keys()) node.addPropertyOverride(`Replicas.${index}.DeletionProtectionEnabled`, retainData);
    } else if (node instanceof CfnUserPool) {
      node.applyRemovalPolicy(removal);
      node.deletionProtection = retainData ? 'ACTIVE' : 'INACTIVE';
    } else if (node instanceof CfnBucket) {
      node.applyRemovalPolicy(removal);
      // Emptying on deletion is decided when the bucket is built; a kept bucket must not be emptied.
      if (retainData && node.node.scope?.node.tryFindChild('AutoDeleteObjectsCustomResource')) {
        Annotations.of(node).addError('this bucket is kept when its stack is deleted, yet empties itself then (autoDeleteObjects)');
      }
    } else if (node instanceof ServiceFunction) {
      node.addEnvironment('POWERTOOLS_METRICS_NAMESPACE', metricsNamespace);
    }
  }
}
