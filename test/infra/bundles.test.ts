import { isBuiltin } from 'node:module';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { ALBResult, Context, PreTokenGenerationV3TriggerEvent } from 'aws-lambda';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ControlPlaneStore } from '../../control-plane/store.ts';
import { CellData } from '../../control-plane/cell-data.ts';
import { MoveStore } from '../../control-plane/move-store.ts';
import { MoveEngine } from '../../control-plane/move-engine.ts';
import { routeTenant } from '../../routing/routing.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb-local.ts';
import { layOutFunction } from '../../local/function-layout.ts';
import { albEvent, lambdaContext } from '../support/alb.ts';
import { eventually } from '../support/eventually.ts';
import { startHangingServer } from '../support/hanging-server.ts';
import { buildTestApp } from '../support/synth.ts';
import { createCellTable } from '../support/tables.ts';
import { clientCredentialsEvent } from '../support/cognito.ts';
import { scopeOf, TEST_POOL_ID, TEST_RESOURCE_SERVER, testIssuer } from '../support/tokens.ts';
import { DeployTimeCalls } from '../support/deploy-time.ts';

/**
 * Runs the bundles that deploy, not the sources: each function's asset from
 * the cloud assembly, with the shared layer's `nodejs/node_modules` made
 * resolvable as Lambda makes `/opt/nodejs/node_modules`, and the runtime's
 * AWS SDK beside them as Lambda provides it, though the bundles carry their
 * own (the layout the local runtime uses too).
 */
let built: ReturnType<typeof buildTestApp>;
let workDir: string;
let entries: Record<'cell-api' | 'router' | 'tenant-claims' | 'publisher' | 'mover', string>;

type Handler<T = ALBResult> = (event: unknown, context: Context) => Promise<T>;

beforeAll(() => {
  built = buildTestApp({ 'aws:cdk:enable-asset-metadata': true });
  built.app.synth();
  workDir = mkdtempSync(path.join(tmpdir(), 'item-master-bundles-'));
  entries = {
    'cell-api': install(built.stacks.cells[0]!, 'cell-api'),
    router: install(built.stacks.controlPlane, 'router'),
    'tenant-claims': install(built.stacks.controlPlane, 'tenant-claims'),
    publisher: install(built.stacks.cells[0]!, 'publisher'),
    mover: install(built.stacks.controlPlane, 'mover'),
  };
});
afterAll(() => {
  built?.cleanup();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function assetPath(template: Template, type: string, match: (props: any) => boolean): string {
  const resource = Object.values(template.findResources(type)).find((r) => match(r.Properties));
  if (!resource) throw new Error(`no ${type} found`);
  return path.join(built.outdir, resource.Metadata['aws:asset:path']);
}

/** Lays out a function's asset with its stack's layer beside it, as Lambda does. */
function install(stack: Parameters<typeof Template.fromStack>[0], service: string): string {
  const template = Template.fromStack(stack);
  const code = assetPath(template, 'AWS::Lambda::Function', (p) => p.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === service);
  const layer = assetPath(template, 'AWS::Lambda::LayerVersion', () => true);
  return layOutFunction(path.join(workDir, service), code, [layer]);
}

async function loadHandler<T = ALBResult>(entry: string, env: Record<string, string>): Promise<Handler<T>> {
  Object.assign(process.env, env);
  const module = (await import(pathToFileURL(entry).href)) as { handler: Handler<T> };
  return module.handler;
}

/**
 * Runs a bundle in a fresh process, as Lambda starts one (the SDK reads the
 * environment when it loads; a module-level client is made once), invokes it
 * with each event in turn and returns its answers.
 */
async function invokeInFreshProcess(entry: string, events: unknown[], env: Record<string, string>): Promise<ALBResult[]> {
  const invoke = `
    const { handler } = await import(${JSON.stringify(pathToFileURL(entry).href)});
    const context = { functionName: 'fn', awsRequestId: 'r-1', getRemainingTimeInMillis: () => 10000 };
    for (const event of JSON.parse(process.env.EVENTS)) process.stdout.write(\`result=\${JSON.stringify(await handler(event, context))}\\n\`);`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', invoke], {
    env: {
      PATH: process.env.PATH,
      EVENTS: JSON.stringify(events),
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
      ...env,
    },
  });
  // Besides the metrics (EMF) and logs the function prints.
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('result='))
    .map((line) => JSON.parse(line.slice('result='.length)) as ALBResult);
}

describe('deployed bundles', () => {
  it('bundle the AWS SDK clients they use and keep the layer module external, but the cell API, which bundles its shared code', () => {
    for (const [service, entry] of Object.entries(entries)) {
      // The router makes no SDK client: its own test below.
      if (service === 'router') continue;
      const code = readFileSync(entry, 'utf8');
      const layerImport = /from\s*"@item-master\/shared"/;
      if (service === 'cell-api') expect(code).not.toMatch(layerImport);
      else expect(code).toMatch(layerImport);
      // An X-Ray SDK bundled here keeps its context in AsyncLocalStorage: cls-hooked's async hooks are not in it.
      expect(code).not.toContain('createHook');
      // Bundled (the faster cold start, BENCHMARKS.md): nothing is loaded from the runtime's SDK but
      // the CRT signer, which the SDK requires inside a try only for SigV4a (multi-region access points).
      const sdkImports = [...code.matchAll(/(?:from\s*|import\(\s*|require\(\s*)"(@aws-sdk\/[^"]+)"/g)].map((match) => match[1]);
      expect(sdkImports.filter((name) => name !== '@aws-sdk/signature-v4-crt')).toEqual([]);
      // Every one of them calls DynamoDB: its protocol's target prefix is in the bundle.
      expect(code).toContain('DynamoDB_20120810');
      // Powertools' logger lives in the layer only, for the functions that take it.
      if (service !== 'cell-api') expect(code).not.toContain('POWERTOOLS_LOG_LEVEL');
    }
  });

  it('cell API: the bundle serves items against DynamoDB Local and starts order executions', async () => {
    const table = await createCellTable(inject('dynamoEndpoint'));
    // Stands in for Step Functions: records the StartExecution calls it gets.
    const starts: Array<{ target: string; body: { stateMachineArn: string; name: string; input: string } }> = [];
    const sfn = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        starts.push({ target: String(req.headers['x-amz-target']), body: JSON.parse(Buffer.concat(chunks).toString()) });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify({ executionArn: 'arn:x', startDate: 1 }));
      });
    });
    await new Promise<void>((resolve) => sfn.listen(0, '127.0.0.1', resolve));
    const machine = 'arn:aws:states:us-east-1:000000000000:stateMachine:orders';
    try {
      const handler = await loadHandler(entries['cell-api'], {
        TABLE_NAME: table.tableName,
        STATE_MACHINE_ARN: machine,
        AWS_ENDPOINT_URL_SFN: `http://127.0.0.1:${(sfn.address() as AddressInfo).port}`,
        CELL_ID: 'cell-1',
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
      });
      const body = { title: 'Bolt', price: { amount: 5, currency: 'USD' }, stock: 3 };
      const put = await handler(albEvent('PUT', '/tenants/t-1/items/bolt', { body }), lambdaContext);
      expect(put.statusCode).toBe(201);
      expect(Object.values(put.headers ?? {}).every((value) => typeof value === 'string')).toBe(true);
      const get = await handler(albEvent('GET', '/tenants/t-1/items/bolt'), lambdaContext);
      expect(get.statusCode).toBe(200);
      expect(JSON.parse(get.body ?? '')).toMatchObject({ ...body, version: 1 });

      const order = { lines: [{ itemId: 'bolt', quantity: 2 }], customerId: 'c', payment: { token: 'tok_ok' } };
      const placed = await handler(albEvent('POST', '/tenants/t-1/orders', { body: order, headers: { 'idempotency-key': 'k-1' } }), lambdaContext);
      expect(placed.statusCode).toBe(202);
      const { orderId } = JSON.parse(placed.body ?? '');
      expect(starts).toHaveLength(1);
      expect(starts[0]).toMatchObject({ target: 'AWSStepFunctions.StartExecution', body: { stateMachineArn: machine, name: orderId } });
      expect(JSON.parse(starts[0]!.body.input)).toMatchObject({ tenantId: 't-1', orderId, payment: { token: 'tok_ok' } });
    } finally {
      sfn.close();
      await table.drop();
    }
  });

  it('cell API: traced as on Lambda, its DynamoDB calls are subsegments of its handler, with no async hooks in the layer', async () => {
    const layerCode = readFileSync(path.join(path.dirname(entries['cell-api']), 'node_modules', '@item-master', 'shared', 'index.mjs'), 'utf8');
    expect(layerCode).not.toContain('createHook');
    const table = await createCellTable(inject('dynamoEndpoint'));
    // Stands in for the X-Ray daemon: on Lambda the SDK sends each subsegment as it closes.
    const daemon = createSocket('udp4');
    const segments: Array<{ name: string; id: string; parent_id?: string; trace_id: string }> = [];
    daemon.on('message', (datagram) => segments.push(JSON.parse(datagram.toString().split('\n')[1]!)));
    await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
    const root = '1-67891233-abcdef012345678912345678';
    const facade = '53995c3f42cd8ad8';
    try {
      const results = await invokeInFreshProcess(
        entries['cell-api'],
        [
          albEvent('PUT', '/tenants/t-1/items/traced', { body: { title: 'Traced', price: { amount: 5, currency: 'USD' }, stock: 1 } }),
          albEvent('GET', '/tenants/t-1/items/traced'),
        ],
        {
          LAMBDA_TASK_ROOT: path.dirname(entries['cell-api']),
          AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
          AWS_LAMBDA_FUNCTION_NAME: 'api',
          _HANDLER: 'index.handler',
          _X_AMZN_TRACE_ID: `Root=${root};Parent=${facade};Sampled=1`,
          AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`,
          POWERTOOLS_SERVICE_NAME: 'cell-api',
          POWERTOOLS_LOG_LEVEL: 'ERROR',
          TABLE_NAME: table.tableName,
          STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:orders',
          CELL_ID: 'cell-1',
          AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
        },
      );
      expect(results.map((r) => r.statusCode)).toEqual([201, 200]);
      // The first request reads the cell's ownership record, records the tenant in the cell's directory, then puts;
      // the second, within the lease and for a recorded tenant, only gets.
      await eventually(async () => expect(segments.filter((s) => s.name === 'DynamoDB')).toHaveLength(4));
      const handlers = segments.filter((s) => s.name === '## index.handler');
      expect(handlers).toHaveLength(2);
      for (const segment of handlers) expect(segment).toMatchObject({ trace_id: root, parent_id: facade });
      const dynamo = segments.filter((s) => s.name === 'DynamoDB');
      expect(dynamo.map((s) => s.parent_id)).toEqual([handlers[0]!.id, handlers[0]!.id, handlers[0]!.id, handlers[1]!.id]);
      expect(dynamo[0]!.trace_id).toBe(root);
    } finally {
      daemon.close();
      await table.drop();
    }
  });

  it('router: the bundle reads the registry and the map at init, and refuses a request without a valid token', async () => {
    const template = Template.fromStack(built.stacks.controlPlane);
    const [router] = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (r) => r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'router',
    );
    const control = await createCellTable(inject('dynamoEndpoint'), 'control');
    const fleet = await createCellTable(inject('dynamoEndpoint'), 'fleet');
    const issuer = await testIssuer();
    try {
      const deploy = new DeployTimeCalls(control.client, control.tableName);
      await deploy.seed(['cell-1', 'cell-2']);
      await deploy.register({ cellId: 'cell-1', weight: 1, apiFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:c1', tableName: 't1' });
      const handler = await loadHandler(entries.router, {
        CONTROL_PLANE_TABLE: control.tableName,
        FLEET_TABLE: fleet.tableName,
        TENANT_RATE: router!.Properties.Environment.Variables.TENANT_RATE,
        TENANT_BURST: router!.Properties.Environment.Variables.TENANT_BURST,
        SHIPPED_ROUTING: router!.Properties.Environment.Variables.SHIPPED_ROUTING,
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
        USER_POOL_ID: TEST_POOL_ID,
        AUTH_RESOURCE_SERVER: TEST_RESOURCE_SERVER,
        AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: issuer.url,
      });
      const forged = await issuer.forge({ clientId: 'c', scope: scopeOf('items.read'), claims: { tenant_id: 'acme' }, expiresInSeconds: 60 });
      const refused = await handler(albEvent('GET', '/tenants/acme/items', { headers: { authorization: `Bearer ${forged}` } }), lambdaContext);
      expect(refused.statusCode).toBe(401);
      expect(refused.headers?.['www-authenticate']).toContain('invalid_token');
      const health = await handler(albEvent('GET', '/health'), lambdaContext);
      expect(health.statusCode).toBe(200);
      expect(JSON.parse(health.body ?? '')).toEqual({
        status: 'ok',
        cells: [{ cellId: 'cell-1', status: 'active' }],
        routing: { version: 1, source: 'store' },
      });
    } finally {
      await control.drop();
      await fleet.drop();
      await issuer.close();
    }
  });

  it('router: one module of its own, with no SDK client, no X-Ray SDK and no middy, that calls Lambda and DynamoDB by their APIs', () => {
    const code = readFileSync(entries.router, 'utf8');
    // Nothing is imported but Node.js's own modules: no layer, no runtime SDK.
    const imports = [...code.matchAll(/(?:from\s*|import\(\s*|require\(\s*)"([^"]+)"/g)].map((match) => match[1]!);
    expect(imports.filter((name) => !isBuiltin(name))).toEqual([]);
    for (const absent of ['middlewareStack', 'aws-xray-sdk', 'AWSXRay', '@middy']) expect([absent, code.includes(absent)]).toEqual([absent, false]);
    expect(code).toContain('DynamoDB_20120810.Query');
    expect(code).toContain('/2015-03-31/functions/');
  });

  it("router and token hook: the bundles carry the control plane's reads, none of the operator's writes", () => {
    for (const entry of [entries.router, entries['tenant-claims']]) {
      const code = readFileSync(entry, 'utf8');
      expect(code).toMatch(/readRouting|clientBinding/);
      for (const operation of ['writeVersion', 'setStatus', 'bindClient', 'unbindClient', 'deregister', 'listVersions']) {
        expect([entry, code.includes(operation)]).toEqual([entry, false]);
      }
    }
  });

  it('router: a cold start against a control plane that never answers gives up and serves the shipped map', async () => {
    const template = Template.fromStack(built.stacks.controlPlane);
    const [router] = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (r) => r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'router',
    );
    const hung = await startHangingServer();
    try {
      const [health] = await invokeInFreshProcess(entries.router, [albEvent('GET', '/health')], {
        CONTROL_PLANE_TABLE: 'control',
        FLEET_TABLE: 'fleet',
        TENANT_RATE: router!.Properties.Environment.Variables.TENANT_RATE,
        TENANT_BURST: router!.Properties.Environment.Variables.TENANT_BURST,
        SHIPPED_ROUTING: router!.Properties.Environment.Variables.SHIPPED_ROUTING,
        AWS_ENDPOINT_URL_DYNAMODB: hung.url,
        USER_POOL_ID: TEST_POOL_ID,
        AUTH_RESOURCE_SERVER: TEST_RESOURCE_SERVER,
        AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: hung.url,
      });
      expect(health!.statusCode).toBe(200);
      expect(JSON.parse(health!.body ?? '')).toMatchObject({ status: 'ok', routing: { version: 1, source: 'shipped' } });
      expect(hung.connections()).toBeGreaterThan(0);
    } finally {
      await hung.close();
    }
  });

  it('tenant-claims: the bundle adds the bound tenant to a client-credentials token and refuses an unbound client', async () => {
    const control = await createCellTable(inject('dynamoEndpoint'), 'control');
    try {
      const store = new ControlPlaneStore(control.client, control.tableName);
      await store.bindClient({ clientId: 'client-acme', tenantId: 'acme', scopes: ['items.read'], createdAt: '2026-01-01T00:00:00Z', by: 'test' });
      const handler = await loadHandler<PreTokenGenerationV3TriggerEvent>(entries['tenant-claims'], {
        CONTROL_PLANE_TABLE: control.tableName,
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
      });
      const answered = await handler(clientCredentialsEvent('client-acme'), lambdaContext);
      expect(answered.response.claimsAndScopeOverrideDetails?.accessTokenGeneration?.claimsToAddOrOverride).toEqual({ tenant_id: 'acme' });
      await expect(handler(clientCredentialsEvent('client-nobody'), lambdaContext)).rejects.toThrow(
        'app client client-nobody is not bound to a tenant',
      );
    } finally {
      await control.drop();
    }
  });

  it('mover: the bundle takes a move step by step to its end, as the move workflow calls it', async () => {
    const endpoint = inject('dynamoEndpoint');
    const control = await createCellTable(endpoint, 'control');
    const cells = { one: await createCellTable(endpoint, 'one'), two: await createCellTable(endpoint, 'two') };
    try {
      const deploy = new DeployTimeCalls(control.client, control.tableName);
      await deploy.seed(['one', 'two']);
      for (const [cellId, table] of Object.entries(cells)) {
        await deploy.register({
          cellId,
          weight: 1,
          apiFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${cellId}`,
          tableName: table.tableName,
        });
      }
      const store = new ControlPlaneStore(control.client, control.tableName);
      const moves = new MoveStore(control.doc, control.tableName);
      const move = await new MoveEngine({ store, moves, cellData: new CellData(control.doc) }).create(
        { kind: 'tenant', tenantId: 'acme', to: routeTenant((await store.latestVersion())!.map, {}, 'acme').cellId === 'one' ? 'two' : 'one' },
        { by: 'test', graceSeconds: 0 },
      );
      const handler = await loadHandler<{ next: string; seconds: number }>(entries.mover, {
        CONTROL_PLANE_TABLE: control.tableName,
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      });
      const outcomes: string[] = [];
      for (let step = 0; step < 20; step += 1) {
        const outcome = await handler({ moveId: move.moveId }, lambdaContext);
        outcomes.push(outcome.next);
        expect(outcome.seconds).toBeGreaterThanOrEqual(0);
        if (outcome.next === 'done') break;
        // As the workflow's Wait state does.
        if (outcome.next === 'wait') await new Promise((resolve) => setTimeout(resolve, outcome.seconds * 1_000));
      }
      expect(outcomes.at(-1)).toBe('done');
      expect((await moves.get(move.moveId))?.state).toBe('done');
      await expect(handler({ moveId: 'no-such-move' }, lambdaContext)).rejects.toThrow('no move "no-such-move"');
    } finally {
      await Promise.all([control.drop(), cells.one.drop(), cells.two.drop()]);
    }
  });

  it('publisher: the bundle reports the records it could not publish as batch item failures, and only those', async () => {
    const handler = await loadHandler<{ batchItemFailures: Array<{ itemIdentifier: string }> }>(entries.publisher, {
      // A connections table that does not exist: every subscriber lookup fails.
      CONNECTIONS_TABLE: 'no-such-connections-table',
      CALLBACK_URL: 'http://127.0.0.1:9/live',
      CELL_ID: 'cell-1',
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynamoEndpoint'),
    });
    const record = (sequence: string, image: Record<string, unknown>) => ({
      eventID: sequence,
      eventName: 'INSERT',
      eventSource: 'aws:dynamodb',
      dynamodb: { SequenceNumber: sequence, Keys: { pk: { S: 'x' }, sk: { S: 'y' } }, NewImage: image, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
    const item = { entity: { S: 'item' }, tenantId: { S: 't-1' }, itemId: { S: 'bolt' }, version: { N: '1' } };
    // A record that is no item and no order publishes nothing, and so cannot fail.
    const other = { entity: { S: 'tenant-note' }, tenantId: { S: 't-1' } };
    const result = await handler({ Records: [record('1', other), record('2', item), record('3', other)] }, lambdaContext);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: '2' }]);
  });
});
