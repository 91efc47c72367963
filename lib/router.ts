import { Arn, ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import { CfnInsightRule } from 'aws-cdk-lib/aws-cloudwatch';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { encodeBuckets } from '../routing/bucket-codec.ts';
import { evenSplit } from '../routing/routing.ts';
import { cellApiInvokeName, type AppIdentity } from '../layers/shared/src/contracts/names.ts';
import { MAX_SHIPPED_ROUTING_BYTES, SHIPPED_ROUTING_VARIABLE, type ShippedRouting } from '../layers/shared/src/contracts/shipped-routing.ts';
import type { TenantQuota } from '../layers/shared/src/contracts/quotas.ts';
import type { ControlPlaneTable } from './control-plane-table.ts';
import type { Identity } from './identity.ts';
import { nagResourceName } from './nag.ts';
import { ServiceFunction } from './service-function.ts';
import type { RouterFleetTable } from './router-fleet.ts';
import type { SharedLayer } from './shared-layer.ts';

export interface RouterProps {
  /** The app and stage: the cells' API functions are found by their names. */
  readonly app: AppIdentity;
  /** The cells the deploy knows, for the routing shipped with the router. */
  readonly cells: readonly string[];
  readonly sharedLayer: SharedLayer;
  /** The control-plane table: the registry and the bucket map the router reads. */
  readonly table: ControlPlaneTable;
  /** Whose tokens the router accepts. */
  readonly identity: Pick<Identity, 'userPool' | 'resourceServerId'>;
  /**
   * How often each instance re-reads the registry and the map, in seconds.
   * @default 10
   */
  readonly refreshSeconds?: number;
  /** Where its instances count each other, to share every tenant's quota. */
  readonly fleet: RouterFleetTable;
  /** Every tenant's quota unless the control plane holds the tenant's own. */
  readonly defaultQuota: TenantQuota;
  /**
   * The router's reserved concurrency.
   * @default - none
   */
  readonly reservedConcurrency?: number;
}

/**
 * The routing shipped in the router's environment: version 1 as the seed
 * writes it (the buckets split evenly over the cells), each cell reached by
 * its function's well-known name and serving alias.
 */
export function shippedRouting(app: AppIdentity, cells: readonly string[]): ShippedRouting {
  const shipped: ShippedRouting = {
    version: 1,
    functions: Object.fromEntries(cells.map((cellId) => [cellId, cellApiInvokeName(app, cellId)])),
    ...encodeBuckets(evenSplit(cells)),
    overrides: {},
  };
  const bytes = JSON.stringify(shipped).length;
  if (bytes > MAX_SHIPPED_ROUTING_BYTES) {
    throw new Error(`the routing shipped with the router is ${bytes} bytes, over ${MAX_SHIPPED_ROUTING_BYTES}: fewer cells or shorter cell ids`);
  }
  return shipped;
}

/**
 * The router (functions/router): checks each request's token and sends it to
 * its tenant's cell. It reads the control-plane table, verifies tokens of
 * the identity's user pool, and invokes cell APIs, found by their naming
 * pattern since cells come and go without a control-plane deploy.
 */
export class Router extends ServiceFunction {
  constructor(scope: Construct, id: string, props: RouterProps) {
    super(scope, id, {
      entry: 'functions/router/index.ts',
      description: 'Routes each request to the cell that owns its tenant',
      serviceName: 'router',
      sharedLayer: props.sharedLayer,
      // Its own bundle holds all it loads: one module to compile at a cold start (BENCHMARKS.md, "Bundling").
      sharedCode: 'bundled',
      reservedConcurrency: props.reservedConcurrency,
      environment: {
        TENANT_RATE: String(props.defaultQuota.rate),
        TENANT_BURST: String(props.defaultQuota.burst),
        ROUTING_REFRESH_SECONDS: String(props.refreshSeconds ?? 10),
        [SHIPPED_ROUTING_VARIABLE]: JSON.stringify(shippedRouting(props.app, props.cells)),
        USER_POOL_ID: props.identity.userPool.userPoolId,
        AUTH_RESOURCE_SERVER: props.identity.resourceServerId,
      },
    });
    this.bindTable('CONTROL_PLANE_TABLE', props.table.table, (grantee) => props.table.grantRoutingRead(grantee));
    this.bindTable('FLEET_TABLE', props.fleet.table, (grantee) => props.fleet.grantHeartbeat(grantee));
    grantInvokeCells(this, props.app);
    // The tenants refused most, without a metric dimension per tenant: a rule over the router's "over quota" lines costs per line
    // matched, whatever the number of tenants.
    new CfnInsightRule(this, 'QuotaRefusalsByTenant', {
      ruleName: `${props.app.appName}-${props.app.stage}-quota-refusals-by-tenant`,
      ruleState: 'ENABLED',
      ruleBody: JSON.stringify({
        Schema: { Name: 'CloudWatchLogRule', Version: 1 },
        LogGroupNames: [this.logGroup.logGroupName],
        LogFormat: 'JSON',
        Contribution: { Keys: ['$.tenantId'], Filters: [{ Match: '$.refusal', In: ['quota'] }] },
        AggregateOn: 'Count',
      }),
    });
  }
}

/**
 * Invoking the serving alias of any cell API function of the app and stage,
 * by the name every cell's API takes, and no other function or version: a
 * qualified Invoke is allowed by the qualified ARN only.
 */
function grantInvokeCells(router: ServiceFunction, app: AppIdentity): Grant {
  const stack = Stack.of(router);
  const cellApis = Arn.format(
    { service: 'lambda', resource: 'function', resourceName: cellApiInvokeName(app, '*'), arnFormat: ArnFormat.COLON_RESOURCE_NAME },
    stack,
  );
  const grant = Grant.addToPrincipal({ grantee: router as IGrantable, actions: ['lambda:InvokeFunction'], resourceArns: [cellApis] });
  Validations.of(router.role!).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${nagResourceName(stack, cellApis)}]`,
    reason: 'Cells register at run time; the router may invoke only the serving alias of functions named like a cell API of this app and stage',
  });
  return grant;
}
