import type { LocalAssembly } from './assembly.ts';

export const LOCAL_ACCOUNT = '000000000000';

export function functionArn(region: string, functionName: string): string {
  return `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${functionName}`;
}

export function tableArn(region: string, tableName: string): string {
  return `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${tableName}`;
}

export function stateMachineArn(region: string, name: string): string {
  return `arn:aws:states:${region}:${LOCAL_ACCOUNT}:stateMachine:${name}`;
}

export function queueArn(region: string, queueName: string): string {
  return `arn:aws:sqs:${region}:${LOCAL_ACCOUNT}:${queueName}`;
}

/** The queue's URL as SQS gives it; locally only its last segment, the name, is used. */
export function queueUrl(region: string, queueName: string): string {
  return `https://sqs.${region}.amazonaws.com/${LOCAL_ACCOUNT}/${queueName}`;
}

export class UnresolvableValueError extends Error {
  override name = 'UnresolvableValueError';
}

/**
 * Resolves a template value the way CloudFormation would, to its local
 * counterpart: pseudo parameters, Refs and ARNs of tables, functions, aliases, state
 * machines and queues, Refs of Cognito user pools (a local pool id) and their domains and of
 * WebSocket APIs (a local API id), SSM
 * parameters declared by any stack of the app (the way cells find the
 * control plane), and `Fn::Join`. Anything else is an error rather than a guess.
 */
export function resolveValue(value: unknown, stackName: string, assembly: LocalAssembly): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'object' || value === null) throw unresolvable(value);
  const token = value as Record<string, unknown>;

  const join = token['Fn::Join'];
  if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) {
    return (join[1] as unknown[]).map((part) => resolveValue(part, stackName, assembly)).join(join[0]);
  }

  const ref = token.Ref;
  if (typeof ref === 'string') {
    const pseudo: Record<string, string> = {
      'AWS::Region': assembly.region,
      'AWS::AccountId': LOCAL_ACCOUNT,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': stackName,
    };
    if (pseudo[ref] !== undefined) return pseudo[ref];
    const table = assembly.tables.find((t) => t.stackName === stackName && t.logicalId === ref);
    if (table) return table.tableName;
    const fn = assembly.functions.find((f) => f.stackName === stackName && f.logicalId === ref);
    if (fn) return fn.functionName;
    // An alias's Ref is its ARN, the function's qualified by the alias.
    const alias = assembly.aliases.find((a) => a.stackName === stackName && a.logicalId === ref);
    if (alias) return `${functionArn(assembly.region, alias.functionName)}:${alias.aliasName}`;
    const machine = assembly.stateMachines.find((m) => m.stackName === stackName && m.logicalId === ref);
    if (machine) return stateMachineArn(assembly.region, machine.name);
    const queue = assembly.queues.find((q) => q.stackName === stackName && q.logicalId === ref);
    if (queue) return queueUrl(assembly.region, queue.queueName);
    const webSocketApi = assembly.webSocketApis.find((a) => a.stackName === stackName && a.logicalId === ref);
    if (webSocketApi) return webSocketApi.apiId;
    const pool = assembly.userPools.find((p) => p.stackName === stackName && p.logicalId === ref);
    if (pool) return pool.userPoolId;
    // A Cognito domain's Ref is its prefix.
    const domain = assembly.userPoolDomains.find((d) => d.stackName === stackName && d.logicalId === ref);
    if (domain) return resolveValue(domain.domain, stackName, assembly);
    const parameterName = assembly.ssmParameterRefs.find((p) => p.stackName === stackName && p.logicalId === ref)?.parameterName;
    if (parameterName !== undefined) {
      const parameter = assembly.ssmParameters.find((p) => p.name === parameterName);
      if (!parameter) throw new UnresolvableValueError(`no stack of the app declares the SSM parameter ${parameterName}`);
      return resolveValue(parameter.value, parameter.stackName, assembly);
    }
  }

  const getAtt = token['Fn::GetAtt'];
  if (Array.isArray(getAtt)) {
    const queue = assembly.queues.find((q) => q.stackName === stackName && q.logicalId === getAtt[0]);
    if (queue && getAtt[1] === 'Arn') return queueArn(assembly.region, queue.queueName);
    if (queue && getAtt[1] === 'QueueName') return queue.queueName;
    if (queue && getAtt[1] === 'QueueUrl') return queueUrl(assembly.region, queue.queueName);
    const machine = assembly.stateMachines.find((m) => m.stackName === stackName && m.logicalId === getAtt[0]);
    if (machine && getAtt[1] === 'Arn') return stateMachineArn(assembly.region, machine.name);
    if (machine && getAtt[1] === 'Name') return machine.name;
  }
  if (Array.isArray(getAtt) && getAtt[1] === 'Arn') {
    const fn = assembly.functions.find((f) => f.stackName === stackName && f.logicalId === getAtt[0]);
    if (fn) return functionArn(assembly.region, fn.functionName);
    const table = assembly.tables.find((t) => t.stackName === stackName && t.logicalId === getAtt[0]);
    if (table) return tableArn(assembly.region, table.tableName);
  }
  throw unresolvable(value);
}

function unresolvable(value: unknown): UnresolvableValueError {
  return new UnresolvableValueError(`cannot resolve ${JSON.stringify(value)} locally`);
}
