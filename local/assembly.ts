import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** A resource's CloudFormation properties: JSON of the shape its type has, read field by field where it is used. */
// biome-ignore lint/suspicious/noExplicitAny: a template's properties are whatever CloudFormation's resource type says; each reader checks the fields it takes
export type CfnProperties = Record<string, any>;

/**
 * What the local runtime needs from the cloud assembly, read from the
 * synthesized templates (never from the CDK constructs), so that local runs
 * are wired the way CloudFormation wires AWS.
 */
export interface LocalAssembly {
  readonly outdir: string;
  readonly region: string;
  readonly tables: LocalTable[];
  readonly functions: LocalFunction[];
  /** Lambda aliases: a function reached by its alias runs its one local copy. */
  readonly aliases: LocalAlias[];
  /** The function behind the ALB listener, and whether its target group sends multi-value headers. */
  readonly frontDoor: { functionName: string; multiValueHeaders: boolean };
  /** SSM parameters the stacks declare (`AWS::SSM::Parameter`). */
  readonly ssmParameters: Array<{ stackName: string; name: string; value: unknown }>;
  /** Template parameters filled from SSM at deploy time (`AWS::SSM::Parameter::Value<String>`). */
  readonly ssmParameterRefs: Array<{ stackName: string; logicalId: string; parameterName: string }>;
  /** Deploy-time AWS SDK calls (`Custom::AWS`), in deploy order. */
  readonly sdkCalls: LocalSdkCall[];
  /** Cognito user pools, with the id each gets locally, and their domains. */
  readonly userPools: LocalUserPool[];
  readonly userPoolDomains: Array<{ stackName: string; logicalId: string; domain: unknown }>;
  /** Step Functions state machines, with the name each gets locally. */
  readonly stateMachines: LocalStateMachine[];
  /** SQS queues, with the name each gets locally. */
  readonly queues: LocalQueue[];
  /** API Gateway WebSocket APIs with their stage and routes, each route's function resolved. */
  readonly webSocketApis: LocalWebSocketApi[];
  /** Lambda event source mappings from DynamoDB streams. */
  readonly streamMappings: LocalStreamMapping[];
}

export interface LocalWebSocketApi {
  readonly stackName: string;
  readonly logicalId: string;
  /** A well-formed API id (10 lower-case characters), stable for the stack and resource. */
  readonly apiId: string;
  readonly stageName: string;
  /** Only `$request.body.<field>` is supported. */
  readonly routeSelectionExpression: string;
  readonly routes: LocalWebSocketRoute[];
}

export interface LocalWebSocketRoute {
  readonly routeKey: string;
  /** The Lambda proxy integration's function. */
  readonly functionName: string;
  /** A REQUEST authorizer (on `$connect` only, as API Gateway allows). */
  readonly authorizer?: { readonly functionName: string; readonly identitySource: string[] };
  /** A route response is configured: the integration's `body` goes back to the client. */
  readonly returnsResponse: boolean;
}

export interface LocalStreamMapping {
  readonly stackName: string;
  readonly logicalId: string;
  /** The table whose stream feeds the function. */
  readonly tableName: string;
  readonly functionName: string;
  readonly batchSize: number;
  readonly startingPosition: 'LATEST' | 'TRIM_HORIZON';
  readonly reportBatchItemFailures: boolean;
  /** -1 is "until the record expires", as on AWS. */
  readonly maximumRetryAttempts: number;
  /** The on-failure destination, when it is one of the app's queues. */
  readonly onFailureQueue?: string;
}

export interface LocalStateMachine {
  readonly stackName: string;
  readonly logicalId: string;
  readonly name: string;
  /** `DefinitionString` as the template gives it: a `Fn::Join` with tokens. */
  readonly definition: unknown;
}

export interface LocalQueue {
  readonly stackName: string;
  readonly logicalId: string;
  readonly queueName: string;
}

export interface LocalUserPool {
  readonly stackName: string;
  readonly logicalId: string;
  /** A well-formed pool id (`<region>_<id>`), stable for the stack and resource. */
  readonly userPoolId: string;
  /** Identifiers of its resource servers. */
  readonly resourceServers: string[];
}

export interface LocalSdkCall {
  readonly stackName: string;
  readonly logicalId: string;
  /** The `Create` and `Update` properties as the template gives them: JSON with tokens. */
  readonly create: unknown;
  readonly update: unknown;
  /** The `Delete` property, when there is one. */
  readonly delete: unknown;
}

export interface LocalTable {
  readonly stackName: string;
  readonly logicalId: string;
  /** The name the table gets locally (CloudFormation would generate one). */
  readonly tableName: string;
  readonly properties: CfnProperties;
}

export interface LocalAlias {
  readonly stackName: string;
  readonly logicalId: string;
  /** The function's name (not its logical id). */
  readonly functionName: string;
  readonly aliasName: string;
}

export interface LocalFunction {
  readonly stackName: string;
  readonly logicalId: string;
  readonly functionName: string;
  /** Directory of the function's bundled asset in the cloud assembly. */
  readonly codeDir: string;
  /** Directories of its layers' assets, in order. */
  readonly layerDirs: string[];
  readonly handler: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** Instances it may run at once (`ReservedConcurrentExecutions`); undefined when it reserves none. */
  readonly reservedConcurrency?: number;
  /** Environment as the template gives it; tokens still unresolved. */
  readonly environment: Record<string, unknown>;
}

type Resource = { Type: string; Properties?: CfnProperties };
type Template = {
  Resources?: Record<string, Resource>;
  Parameters?: Record<string, { Type: string; Default?: string }>;
};

export function readAssembly(outdir: string): LocalAssembly {
  const manifest = JSON.parse(readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
    artifacts: Record<
      string,
      { type: string; environment?: string; dependencies?: string[]; properties?: { templateFile: string; stackName?: string } }
    >;
  };
  const tables: LocalTable[] = [];
  const functions: LocalFunction[] = [];
  const ssmParameters: LocalAssembly['ssmParameters'] = [];
  const ssmParameterRefs: LocalAssembly['ssmParameterRefs'] = [];
  const sdkCalls: LocalSdkCall[] = [];
  const userPools: LocalUserPool[] = [];
  const userPoolDomains: LocalAssembly['userPoolDomains'] = [];
  const stateMachines: LocalStateMachine[] = [];
  const queues: LocalQueue[] = [];
  const webSocketApis: LocalWebSocketApi[] = [];
  const streamMappings: LocalStreamMapping[] = [];
  const aliases: LocalAlias[] = [];
  let frontDoor: (LocalAssembly['frontDoor'] & { stackName: string }) | undefined;
  let region = 'us-east-1';

  for (const [artifactId, artifact] of deployOrder(manifest.artifacts)) {
    if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties) continue;
    const stackName = artifact.properties.stackName ?? artifactId;
    region = artifact.environment?.split('/').at(-1) ?? region;
    const template = JSON.parse(readFileSync(path.join(outdir, artifact.properties.templateFile), 'utf8')) as Template;
    const resources = template.Resources ?? {};
    for (const [logicalId, parameter] of Object.entries(template.Parameters ?? {})) {
      if (parameter.Type === 'AWS::SSM::Parameter::Value<String>' && parameter.Default && !parameter.Default.startsWith('/cdk-bootstrap/')) {
        ssmParameterRefs.push({ stackName, logicalId, parameterName: parameter.Default });
      }
    }
    const assetDir = (s3Key: unknown) => path.join(outdir, `asset.${String(s3Key).replace(/\.zip$/, '')}`);

    for (const [logicalId, resource] of Object.entries(resources)) {
      const props = resource.Properties ?? {};
      if (resource.Type === 'AWS::DynamoDB::GlobalTable' || resource.Type === 'AWS::DynamoDB::Table') {
        tables.push({ stackName, logicalId, tableName: props.TableName ?? `${stackName}-${logicalId}`, properties: props });
      }
      // CDK's own custom-resource handlers have no counterpart locally.
      if (resource.Type === 'AWS::Lambda::Function' && props.Environment?.Variables?.POWERTOOLS_SERVICE_NAME) {
        functions.push({
          stackName,
          logicalId,
          functionName: props.FunctionName ?? `${stackName}-${logicalId}`,
          codeDir: assetDir(props.Code?.S3Key),
          layerDirs: (props.Layers ?? []).map((layer: { Ref: string }) => assetDir(resources[layer.Ref]?.Properties?.Content?.S3Key)),
          handler: props.Handler ?? 'index.handler',
          timeoutSeconds: props.Timeout ?? 3,
          memoryMb: props.MemorySize ?? 128,
          ...(typeof props.ReservedConcurrentExecutions === 'number' && { reservedConcurrency: props.ReservedConcurrentExecutions }),
          environment: props.Environment?.Variables ?? {},
        });
      }
      if (resource.Type === 'AWS::SSM::Parameter') {
        ssmParameters.push({ stackName, name: props.Name, value: props.Value });
      }
      if (resource.Type === 'Custom::AWS') {
        sdkCalls.push({ stackName, logicalId, create: props.Create, update: props.Update ?? props.Create, delete: props.Delete });
      }
      if (resource.Type === 'AWS::Cognito::UserPool') {
        const resourceServers = Object.values(resources)
          .filter((r) => r.Type === 'AWS::Cognito::UserPoolResourceServer' && r.Properties?.UserPoolId?.Ref === logicalId)
          .map((r) => String(r.Properties?.Identifier));
        userPools.push({ stackName, logicalId, userPoolId: localUserPoolId(region, stackName, logicalId), resourceServers });
      }
      if (resource.Type === 'AWS::Cognito::UserPoolDomain') {
        userPoolDomains.push({ stackName, logicalId, domain: props.Domain });
      }
      if (resource.Type === 'AWS::StepFunctions::StateMachine') {
        stateMachines.push({ stackName, logicalId, name: props.StateMachineName ?? `${stackName}-${logicalId}`, definition: props.DefinitionString });
      }
      if (resource.Type === 'AWS::SQS::Queue') {
        queues.push({ stackName, logicalId, queueName: props.QueueName ?? `${stackName}-${logicalId}` });
      }
      if (resource.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup' && props.TargetType === 'lambda') {
        // A function (`Fn::GetAtt [fn, Arn]`) or an alias (`Ref`), by logical id; resolved below.
        const targetId = props.Targets?.[0]?.Id?.['Fn::GetAtt']?.[0] ?? props.Targets?.[0]?.Id?.Ref;
        const attributes: Array<{ Key: string; Value: string }> = props.TargetGroupAttributes ?? [];
        frontDoor = {
          stackName,
          functionName: targetId,
          multiValueHeaders: attributes.some((a) => a.Key === 'lambda.multi_value_headers.enabled' && a.Value === 'true'),
        };
      }
    }
    aliases.push(...readAliases(stackName, resources, functions));
    webSocketApis.push(...readWebSocketApis(stackName, region, resources, functions));
    streamMappings.push(...readStreamMappings(stackName, resources, functions, tables, queues));
  }
  if (!frontDoor) throw new Error(`no ALB target group with a Lambda target in ${outdir}`);
  const { stackName: targetStack, functionName: targetId, multiValueHeaders } = frontDoor;
  const target =
    functions.find((fn) => fn.stackName === targetStack && fn.logicalId === targetId)?.functionName ??
    aliases.find((alias) => alias.stackName === targetStack && alias.logicalId === targetId)?.functionName;
  if (!target) throw new Error(`the ALB targets ${targetId}, which is neither a service function nor an alias of one`);
  return {
    outdir,
    region,
    tables,
    functions,
    aliases,
    frontDoor: { functionName: target, multiValueHeaders },
    ssmParameters,
    ssmParameterRefs,
    sdkCalls,
    userPools,
    userPoolDomains,
    stateMachines,
    queues,
    webSocketApis,
    streamMappings,
  };
}

type Resources = Record<string, { Type: string; Properties?: CfnProperties }>;

/** The aliases of the service's functions (`AWS::Lambda::Alias` naming one by `Ref`). */
function readAliases(stackName: string, resources: Resources, functions: readonly LocalFunction[]): LocalAlias[] {
  return Object.entries(resources).flatMap(([logicalId, resource]) => {
    if (resource.Type !== 'AWS::Lambda::Alias') return [];
    const fn = functions.find((f) => f.stackName === stackName && f.logicalId === resource.Properties?.FunctionName?.Ref);
    return fn ? [{ stackName, logicalId, functionName: fn.functionName, aliasName: String(resource.Properties?.Name) }] : [];
  });
}

/** The logical id of the function a Lambda integration or authorizer URI names (`Fn::GetAtt [fn, Arn]` inside it). */
function functionInUri(uri: unknown): string | undefined {
  const parts: unknown[] = (uri as { 'Fn::Join'?: [string, unknown[]] })?.['Fn::Join']?.[1] ?? [];
  for (const part of parts) {
    const getAtt = (part as { 'Fn::GetAtt'?: [string, string] })?.['Fn::GetAtt'];
    if (getAtt?.[1] === 'Arn') return getAtt[0];
  }
  return undefined;
}

function readWebSocketApis(stackName: string, region: string, resources: Resources, functions: LocalFunction[]): LocalWebSocketApi[] {
  const apis: LocalWebSocketApi[] = [];
  const ofApi = (type: string, apiId: string) => Object.entries(resources).filter(([, r]) => r.Type === type && r.Properties?.ApiId?.Ref === apiId);
  const functionOf = (uri: unknown, what: string) => {
    const logicalId = functionInUri(uri);
    const fn = functions.find((f) => f.stackName === stackName && f.logicalId === logicalId);
    if (!fn) throw new Error(`${stackName}: ${what} calls something other than a service function`);
    return fn.functionName;
  };
  for (const [logicalId, api] of Object.entries(resources)) {
    if (api.Type !== 'AWS::ApiGatewayV2::Api' || api.Properties?.ProtocolType !== 'WEBSOCKET') continue;
    const [stage, ...otherStages] = ofApi('AWS::ApiGatewayV2::Stage', logicalId).map(([, r]) => String(r.Properties?.StageName));
    if (stage === undefined || otherStages.length > 0)
      throw new Error(`${stackName}/${logicalId}: the local runtime serves a WebSocket API with exactly one stage`);
    const responses = new Set(ofApi('AWS::ApiGatewayV2::RouteResponse', logicalId).map(([, r]) => r.Properties?.RouteId?.Ref));
    const routes = ofApi('AWS::ApiGatewayV2::Route', logicalId).map(([routeId, route]): LocalWebSocketRoute => {
      const props = route.Properties ?? {};
      const routeKey = String(props.RouteKey);
      const integrationId = props.Target?.['Fn::Join']?.[1]?.[1]?.Ref;
      const integration = resources[integrationId]?.Properties;
      if (integration?.IntegrationType !== 'AWS_PROXY') throw new Error(`${stackName}: route ${routeKey} is not a Lambda proxy integration`);
      const authorizer = props.AuthorizerId ? resources[props.AuthorizerId.Ref]?.Properties : undefined;
      return {
        routeKey,
        functionName: functionOf(integration.IntegrationUri, `route ${routeKey}`),
        ...(authorizer && {
          authorizer: {
            functionName: functionOf(authorizer.AuthorizerUri, `the authorizer of ${routeKey}`),
            identitySource: authorizer.IdentitySource ?? [],
          },
        }),
        returnsResponse: responses.has(routeId),
      };
    });
    apis.push({
      stackName,
      logicalId,
      apiId: createHash('sha256').update(`${region}/${stackName}/${logicalId}`).digest('hex').slice(0, 10),
      stageName: stage,
      routeSelectionExpression: String(api.Properties?.RouteSelectionExpression ?? '$request.body.action'),
      routes,
    });
  }
  return apis;
}

function readStreamMappings(
  stackName: string,
  resources: Resources,
  functions: LocalFunction[],
  tables: LocalTable[],
  queues: LocalQueue[],
): LocalStreamMapping[] {
  const mappings: LocalStreamMapping[] = [];
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource.Type !== 'AWS::Lambda::EventSourceMapping') continue;
    const props = resource.Properties ?? {};
    const [source, attribute] = props.EventSourceArn?.['Fn::GetAtt'] ?? [];
    if (attribute !== 'StreamArn') continue;
    const table = tables.find((t) => t.stackName === stackName && t.logicalId === source);
    const fn = functions.find((f) => f.stackName === stackName && f.logicalId === props.FunctionName?.Ref);
    if (!table || !fn) throw new Error(`${stackName}/${logicalId}: a stream mapping from ${source} to something other than a service function`);
    const destination = props.DestinationConfig?.OnFailure?.Destination?.['Fn::GetAtt']?.[0];
    const queue = queues.find((q) => q.stackName === stackName && q.logicalId === destination);
    mappings.push({
      stackName,
      logicalId,
      tableName: table.tableName,
      functionName: fn.functionName,
      batchSize: props.BatchSize ?? 100,
      startingPosition: props.StartingPosition === 'TRIM_HORIZON' ? 'TRIM_HORIZON' : 'LATEST',
      reportBatchItemFailures: (props.FunctionResponseTypes ?? []).includes('ReportBatchItemFailures'),
      maximumRetryAttempts: props.MaximumRetryAttempts ?? -1,
      ...(queue && { onFailureQueue: queue.queueName }),
    });
  }
  return mappings;
}

function localUserPoolId(region: string, stackName: string, logicalId: string): string {
  return `${region}_local${createHash('sha256').update(`${stackName}/${logicalId}`).digest('hex').slice(0, 8)}`;
}

/** Artifacts with each one after those it depends on, as `cdk deploy --all` orders stacks. */
function deployOrder<T extends { dependencies?: string[] }>(artifacts: Record<string, T>): Array<[string, T]> {
  const ordered: Array<[string, T]> = [];
  const placed = new Set<string>();
  const place = (id: string, trail: Set<string>) => {
    const artifact = artifacts[id];
    if (!artifact || placed.has(id) || trail.has(id)) return;
    trail.add(id);
    for (const dependency of artifact.dependencies ?? []) place(dependency, trail);
    placed.add(id);
    ordered.push([id, artifact]);
  };
  for (const id of Object.keys(artifacts)) place(id, new Set());
  return ordered;
}
