import { Template } from 'aws-cdk-lib/assertions';
import { UserPool } from 'aws-cdk-lib/aws-cognito';
import { describe, expect, it } from 'vitest';
import { evenSplit } from '../../routing/routing.ts';
import { snapshotFromShipped } from '../../functions/router/routing-cache.ts';
import { ControlPlaneTable } from '../../lib/control-plane-table.ts';
import { RouterFleetTable } from '../../lib/router-fleet.ts';
import { Router, shippedRouting } from '../../lib/router.ts';
import { SharedLayer } from '../../lib/shared-layer.ts';
import { bareStacks, app, rights, functionOf } from '../support/bare-stack.ts';

const bareStack = bareStacks();

describe('Router', () => {
  function router(cells: readonly string[]) {
    const stack = bareStack();
    const sharedLayer = new SharedLayer(stack, 'SharedLayer');
    const table = new ControlPlaneTable(stack, 'Registry');
    const userPool = new UserPool(stack, 'Pool');
    const fleet = new RouterFleetTable(stack, 'Fleet');
    new Router(stack, 'Router', {
      app,
      cells,
      sharedLayer,
      table,
      identity: { userPool, resourceServerId: 'shop' },
      refreshSeconds: 3,
      fleet,
      defaultQuota: { rate: 40, burst: 90 },
      reservedConcurrency: 300,
    });
    return Template.fromStack(stack);
  }

  it("ships the seed's map, reads the table for the rest, and verifies the pool's tokens", () => {
    const env = functionOf(router(['north', 'south']), 'Router').Properties.Environment.Variables;
    expect(env).toMatchObject({
      CONTROL_PLANE_TABLE: { Ref: expect.stringMatching(/^RegistryTable/) },
      ROUTING_REFRESH_SECONDS: '3',
      USER_POOL_ID: { Ref: expect.stringMatching(/^Pool/) },
      AUTH_RESOURCE_SERVER: 'shop',
      FLEET_TABLE: { Ref: expect.stringMatching(/^FleetTable/) },
      TENANT_RATE: '40',
      TENANT_BURST: '90',
    });
    expect(env.CELL_ID).toBeUndefined();
    const shipped = snapshotFromShipped(env.SHIPPED_ROUTING);
    expect(shipped).toMatchObject({ version: 1, source: 'shipped', overrides: {} });
    expect(shipped.map).toEqual(evenSplit(['north', 'south']));
    expect([...shipped.cells.values()].map((cell) => cell.functionName)).toEqual(['shop-dev-north-api:live', 'shop-dev-south-api:live']);
  });

  it('reserves its concurrency, and counts its instances in a table whose heartbeats expire', () => {
    const template = router(['north']);
    expect(functionOf(template, 'Router').Properties.ReservedConcurrentExecutions).toBe(300);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', { TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } });
  });

  it('ranks the tenants refused over quota by a Contributor Insights rule on its log lines, not by a metric dimension per tenant', () => {
    const [rule] = Object.values(router(['north']).findResources('AWS::CloudWatch::InsightRule')) as Array<{ Properties: { RuleBody: unknown } }>;
    const body = JSON.stringify(rule!.Properties.RuleBody);
    expect(body).toContain('\\"Keys\\":[\\"$.tenantId\\"]');
    expect(body).toContain('\\"Match\\":\\"$.refusal\\",\\"In\\":[\\"quota\\"]');
  });

  it("may read the registry and the map, beat and count in its fleet table, and invoke functions named like this stage's cell APIs, nothing else", () => {
    const granted = rights(router(['north']), 'RouterRole').filter((r) => !/^(logs|xray):/.test(r.actions[0]!));
    expect(granted).toEqual([
      { actions: ['dynamodb:GetItem', 'dynamodb:Query'], resource: expect.stringMatching(/RegistryTable.*"Arn"/) },
      { actions: ['dynamodb:PutItem', 'dynamodb:Query'], resource: expect.stringMatching(/FleetTable.*"Arn"/) },
      { actions: ['lambda:InvokeFunction'], resource: expect.stringMatching(/:function:shop-dev-\*-api:live"/) },
    ]);
  });

  it('refuses to ship a routing that leaves the environment no room', () => {
    const many = Array.from({ length: 200 }, (_, i) => `cell-${i}-of-many`);
    expect(() => shippedRouting(app, many)).toThrow(/over 3000: fewer cells or shorter cell ids/);
  });
});
