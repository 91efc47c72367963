import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { FlowLogDestination, Peer, Port, SecurityGroup, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import {
  ApplicationLoadBalancer,
  ApplicationProtocol,
  ListenerAction,
  SslPolicy,
  type ApplicationTargetGroup,
} from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { LambdaTarget } from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays, LogGroup } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface FrontDoorProps {
  /** The function every request goes to: the router. */
  readonly router: IFunction;
  /**
   * An ACM certificate: the ALB then serves HTTPS on 443 and redirects HTTP to it.
   * @default - HTTP on port 80 only
   */
  readonly certificateArn?: string;
  /**
   * Empty the access-log bucket when the stack is deleted, so that the
   * deletion succeeds. Decided when the bucket is built, unlike its removal
   * policy (lib/stage-policies.ts), which refuses a kept bucket that empties
   * itself.
   * @default true
   */
  readonly autoDeleteAccessLogs?: boolean;
  /**
   * How long ALB access logs are kept.
   * @default Duration.days(90)
   */
  readonly accessLogExpiry?: Duration;
}

/**
 * The public front door: a VPC with public subnets only in two zones (no NAT
 * gateway: nothing in it needs outbound traffic), an internet-facing ALB
 * with access logs, and the router as its one Lambda target, health-checked
 * on `/health`. The target group runs with multi-value headers off, so
 * requests and responses use `headers`.
 */
export class FrontDoor extends Construct {
  public readonly vpc: Vpc;
  public readonly loadBalancer: ApplicationLoadBalancer;
  public readonly targetGroup: ApplicationTargetGroup;
  /** `http://` or `https://` and the ALB's DNS name. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: FrontDoorProps) {
    super(scope, id);

    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 24 }],
      flowLogs: {
        rejected: {
          destination: FlowLogDestination.toCloudWatchLogs(
            new LogGroup(this, 'FlowLogs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY }),
          ),
        },
      },
    });

    const securityGroup = new SecurityGroup(this, 'AlbSecurityGroup', {
      vpc: this.vpc,
      description: 'Public front door: HTTP and HTTPS from anywhere',
      allowAllOutbound: false,
    });
    securityGroup.addIngressRule(Peer.anyIpv4(), Port.tcp(80), 'HTTP from anywhere');
    if (props.certificateArn) securityGroup.addIngressRule(Peer.anyIpv4(), Port.tcp(443), 'HTTPS from anywhere');
    Validations.of(securityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: 'The internet-facing front door of a public API accepts requests from any address',
    });

    this.loadBalancer = new ApplicationLoadBalancer(this, 'Alb', {
      vpc: this.vpc,
      internetFacing: true,
      securityGroup,
      dropInvalidHeaderFields: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
    });

    const accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED, // the only encryption ALB log delivery supports
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [{ expiration: props.accessLogExpiry ?? Duration.days(90) }],
      removalPolicy: RemovalPolicy.DESTROY,
      autoDeleteObjects: props.autoDeleteAccessLogs ?? true,
    });
    Validations.of(accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'This bucket is the access-log destination itself; logging it would recurse',
    });
    this.loadBalancer.logAccessLogs(accessLogs, 'alb');

    const target = new LambdaTarget(props.router);
    if (props.certificateArn) {
      const https = this.loadBalancer.addListener('Https', {
        port: 443,
        protocol: ApplicationProtocol.HTTPS,
        certificates: [Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn)],
        sslPolicy: SslPolicy.RECOMMENDED_TLS,
      });
      this.targetGroup = https.addTargets('Router', { targets: [target], healthCheck: healthCheck() });
      this.loadBalancer.addListener('Http', {
        port: 80,
        protocol: ApplicationProtocol.HTTP,
        defaultAction: ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
      });
      this.url = `https://${this.loadBalancer.loadBalancerDnsName}`;
    } else {
      const http = this.loadBalancer.addListener('Http', { port: 80, protocol: ApplicationProtocol.HTTP });
      this.targetGroup = http.addTargets('Router', { targets: [target], healthCheck: healthCheck() });
      this.url = `http://${this.loadBalancer.loadBalancerDnsName}`;
    }
    this.targetGroup.setAttribute('lambda.multi_value_headers.enabled', 'false');
  }
}

/** Lambda targets are not health-checked unless asked; the router answers `/health` itself. */
function healthCheck() {
  return {
    enabled: true,
    path: '/health',
    interval: Duration.seconds(60),
    timeout: Duration.seconds(10),
    healthyThresholdCount: 2,
    unhealthyThresholdCount: 3,
  };
}
