import { Aws, Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  AccountRecovery,
  FeaturePlan,
  LambdaVersion,
  Mfa,
  ResourceServerScope,
  UserPool,
  UserPoolOperation,
  type UserPoolResourceServer,
  type UserPoolDomain,
} from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import { SCOPES } from '../layers/shared/src/contracts/scopes.ts';
import type { ControlPlaneTable } from './control-plane-table.ts';
import { ServiceFunction } from './service-function.ts';
import type { SharedLayer } from './shared-layer.ts';

const SCOPE_DESCRIPTIONS: Record<(typeof SCOPES)[number], string> = {
  'items.read': 'Read the tenant’s catalogue and stock',
  'items.write': 'Create, change and delete the tenant’s items',
  'orders.write': 'Place the tenant’s orders and read them',
};

export interface IdentityProps {
  /** The control-plane table: client bindings live in it. */
  readonly table: ControlPlaneTable;
  /** The control plane's shared layer, for the token-claims trigger. */
  readonly sharedLayer: SharedLayer;
  /** Identifier of the resource server: tokens carry scopes as `<identifier>/<scope>`. */
  readonly resourceServerId: string;
  /**
   * Prefix of the Cognito domain that serves the token endpoint; unique in the
   * region across all AWS accounts.
   */
  readonly domainPrefix: string;
}

/**
 * Who may call the service: a Cognito user pool for machine clients only
 * (no self sign-up, no users), a resource server with the service's scopes,
 * the domain whose `/oauth2/token` endpoint grants client credentials, and
 * a pre-token-generation trigger (V3_0, the event version that covers
 * client credentials; it needs the Essentials feature plan) that writes
 * each client's tenant into its access tokens. App clients are made per
 * tenant by `npm run cells -- tenant create`.
 */
export class Identity extends Construct {
  public readonly userPool: UserPool;
  public readonly resourceServer: UserPoolResourceServer;
  public readonly domain: UserPoolDomain;
  /** The client-credentials token endpoint. */
  public readonly tokenUrl: string;
  public readonly claimsFunction: ServiceFunction;
  /** The resource server's identifier, the prefix of every scope. */
  public readonly resourceServerId: string;

  constructor(scope: Construct, id: string, props: IdentityProps) {
    super(scope, id);
    this.resourceServerId = props.resourceServerId;

    this.userPool = new UserPool(this, 'UserPool', {
      featurePlan: FeaturePlan.ESSENTIALS,
      selfSignUpEnabled: false,
      // Machine clients only; the settings below keep any user an operator adds in line.
      passwordPolicy: { minLength: 14, requireDigits: true, requireLowercase: true, requireUppercase: true, requireSymbols: true },
      mfa: Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      accountRecovery: AccountRecovery.NONE,
      // Kept, and protected from deletion, where the stage's policies say so (lib/stage-policies.ts).
      deletionProtection: false,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    for (const id of ['AwsSolutions-COG3', 'AwsSolutions-COG8']) {
      Validations.of(this.userPool).acknowledge({
        id,
        reason: 'The Plus plan adds threat protection for user sign-in; this pool has machine clients only, authenticated by secret',
      });
    }

    this.resourceServer = this.userPool.addResourceServer('ResourceServer', {
      identifier: props.resourceServerId,
      userPoolResourceServerName: props.resourceServerId,
      scopes: SCOPES.map((name) => new ResourceServerScope({ scopeName: name, scopeDescription: SCOPE_DESCRIPTIONS[name] })),
    });

    this.domain = this.userPool.addDomain('Domain', { cognitoDomain: { domainPrefix: props.domainPrefix } });
    this.tokenUrl = Fn.join('', [this.domain.baseUrl(), '/oauth2/token']);

    this.claimsFunction = new ServiceFunction(this, 'TenantClaims', {
      entry: 'functions/tenant-claims/index.ts',
      description: 'Writes the tenant a client is bound to into its access tokens',
      serviceName: 'tenant-claims',
      sharedLayer: props.sharedLayer,
      memorySize: 256,
      timeout: Duration.seconds(5),
    });
    this.claimsFunction.bindTable('CONTROL_PLANE_TABLE', props.table.table, (grantee) => props.table.grantClientLookup(grantee));
    this.userPool.addTrigger(UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG, this.claimsFunction, LambdaVersion.V3_0);
  }

  /** Region-unique domain prefix: app, stage and account. */
  static domainPrefix(appName: string, stage: string): string {
    return Fn.join('-', [appName, stage, Aws.ACCOUNT_ID]);
  }
}
