import { CfnWebACL, CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

export interface WebAclProps {
  /** The ARN of what the web ACL guards: the ALB. */
  readonly resourceArn: string;
  /** Prefix of the CloudWatch metric names of its rules. */
  readonly metricPrefix: string;
  /**
   * Requests one client IP may send in any 5-minute window before it is blocked.
   * @default 2000
   */
  readonly rateLimit?: number;
}

/** AWS managed rule groups, cheapest first; a match blocks. */
const MANAGED_RULE_GROUPS = [
  // Addresses AWS's threat intelligence has seen attacking.
  'AWSManagedRulesAmazonIpReputationList',
  // OWASP-style generic attacks (XSS, path traversal, oversized headers …).
  'AWSManagedRulesCommonRuleSet',
  // Request patterns known to exploit vulnerabilities (Log4j, …).
  'AWSManagedRulesKnownBadInputsRuleSet',
] as const;

/**
 * An AWS WAF web ACL in front of the ALB: a rate-based rule per client IP
 * first, then AWS managed rule groups. The common rule set caps bodies at
 * 8 KB; item bodies may be up to 256 KB, so that one rule only counts.
 */
export class WebAcl extends Construct {
  public readonly webAcl: CfnWebACL;
  /** The `WebACL` dimension of its CloudWatch metrics (`AWS/WAFV2`): its visibility config's metric name. */
  public readonly metricName: string;

  constructor(scope: Construct, id: string, props: WebAclProps) {
    super(scope, id);
    this.metricName = `${props.metricPrefix}-all`;
    const visibility = (name: string): CfnWebACL.VisibilityConfigProperty => ({
      cloudWatchMetricsEnabled: true,
      sampledRequestsEnabled: true,
      metricName: `${props.metricPrefix}-${name}`,
    });

    this.webAcl = new CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('all'),
      rules: [
        {
          name: 'RatePerClientIp',
          priority: 0,
          action: { block: {} },
          statement: {
            rateBasedStatement: { aggregateKeyType: 'IP', limit: props.rateLimit ?? 2000, evaluationWindowSec: 300 },
          },
          visibilityConfig: visibility('rate-per-ip'),
        },
        ...MANAGED_RULE_GROUPS.map(
          (name, index): CfnWebACL.RuleProperty => ({
            name,
            priority: index + 1,
            overrideAction: { none: {} },
            statement: {
              managedRuleGroupStatement: {
                vendorName: 'AWS',
                name,
                ...(name === 'AWSManagedRulesCommonRuleSet' && {
                  ruleActionOverrides: [{ name: 'SizeRestrictions_BODY', actionToUse: { count: {} } }],
                }),
              },
            },
            visibilityConfig: visibility(name),
          }),
        ),
      ],
    });

    new CfnWebACLAssociation(this, 'Association', { resourceArn: props.resourceArn, webAclArn: this.webAcl.attrArn });
  }
}
