/** What the stack tests share: finding a template's functions, its deploy-time calls, its grants. */
import { readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll } from 'vitest';
import { fromRoot } from '../../lib/paths.ts';
import { buildTestApp } from './synth.ts';

export type Resources = Record<string, { Type: string; Properties?: any; DeletionPolicy?: string }>;

export const certificateArn = 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666';

/** Functions of the service (the construct's), not CDK's own custom-resource handlers. */
export function serviceFunctions(template: Template) {
  return Object.values(template.findResources('AWS::Lambda::Function')).filter(
    (resource) => resource.Properties?.Environment?.Variables?.POWERTOOLS_SERVICE_NAME,
  );
}

export function serviceFunction(template: Template, serviceName: string) {
  const [fn] = serviceFunctions(template).filter((resource) => resource.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === serviceName);
  if (!fn) throw new Error(`no ${serviceName} function`);
  return fn;
}

export function serviceFunctionId(template: Template, serviceName: string): string {
  const fn = serviceFunction(template, serviceName);
  return Object.entries(template.findResources('AWS::Lambda::Function')).find(([, resource]) => resource === fn)![0];
}

export function logicalIdOf(template: Template, type: string): string {
  const ids = Object.keys(template.findResources(type));
  if (ids.length !== 1) throw new Error(`expected one ${type}, found ${ids.length}`);
  return ids[0]!;
}

/**
 * The deploy-time SDK calls (AwsCustomResource) of a template, with tokens
 * shown as `<LogicalId>` or `<LogicalId.Attribute>`, and the IAM actions its
 * own policy grants.
 */
export function sdkCalls(template: Template) {
  const render = (value: any): string => {
    if (typeof value === 'string') return value;
    if (value['Fn::Join']) return value['Fn::Join'][1].map(render).join(value['Fn::Join'][0]);
    if (value.Ref) return `<${value.Ref}>`;
    if (value['Fn::GetAtt']) return `<${value['Fn::GetAtt'].join('.')}>`;
    throw new Error(`unexpected token ${JSON.stringify(value)}`);
  };
  const policies = Object.values(template.findResources('AWS::IAM::Policy'));
  return Object.entries(template.findResources('Custom::AWS')).map(([logicalId, resource]) => {
    // Its statements, or the grants to its role (the role's first statement is its own log group's).
    const prefix = logicalId.replace(/[A-F0-9]{8}$/, '');
    const policy = policies.find((p) =>
      [`${prefix}CustomResourcePolicy`, `${prefix}RoleDefaultPolicy`].some((name) => p.Properties.PolicyName.startsWith(name)),
    );
    return {
      create: JSON.parse(render(resource.Properties.Create)),
      update: JSON.parse(render(resource.Properties.Update)),
      delete: resource.Properties.Delete ? JSON.parse(render(resource.Properties.Delete)) : undefined,
      actions: policy?.Properties.PolicyDocument.Statement.flatMap((s: { Action: string | string[] }) => [s.Action].flat())
        .filter((action: string) => !action.startsWith('logs:'))
        .sort(),
    };
  });
}

/** The logical ids a template value refers to (Ref or GetAtt, at any depth), pseudo parameters left out. */
export function referencedIds(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(referencedIds);
  if (typeof value !== 'object' || value === null) return [];
  const token = value as Record<string, unknown>;
  if (typeof token.Ref === 'string') return token.Ref.startsWith('AWS::') ? [] : [token.Ref];
  if (Array.isArray(token['Fn::GetAtt'])) return [String(token['Fn::GetAtt'][0])];
  return Object.values(token).flatMap(referencedIds);
}

/** Every IAM statement of the template, or of the policies whose name matches. */
export function policyStatements(template: Template, name?: RegExp): any[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => !name || name.test(policy.Properties.PolicyName))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

/** The IAM action of each DynamoDB command or paginator the code sends. */
export const DYNAMO_ACTIONS: Record<string, string> = {
  GetCommand: 'GetItem',
  GetItemCommand: 'GetItem',
  BatchGetCommand: 'BatchGetItem',
  PutCommand: 'PutItem',
  PutItemCommand: 'PutItem',
  UpdateCommand: 'UpdateItem',
  UpdateItemCommand: 'UpdateItem',
  DeleteCommand: 'DeleteItem',
  DeleteItemCommand: 'DeleteItem',
  QueryCommand: 'Query',
  paginateQuery: 'Query',
  ScanCommand: 'Scan',
  BatchWriteCommand: 'BatchWriteItem',
  TransactWriteCommand: 'TransactWriteItems',
};

/** Every DynamoDB action the given source files send. */
export function dynamoActionsIn(files: string[]): string[] {
  const actions = new Set<string>();
  for (const file of files) {
    const source = readFileSync(fromRoot(file), 'utf8');
    for (const [name, action] of Object.entries(DYNAMO_ACTIONS))
      if (new RegExp(`\\b(new ${name}\\(|${name}\\()`).test(source)) actions.add(`dynamodb:${action}`);
  }
  return [...actions].sort();
}

/** The actions the role of a function is granted, from every policy attached to it. */
export function grantedActions(template: Template, fn: Record<string, any>): string[] {
  const roleId = fn.Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: { Ref?: string }) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
    .flatMap((statement) => [statement.Action].flat());
}

/** What each alarm watches: its metric's name, or the expression of its metric math. */
export const watchedBy = (alarms: Record<string, { Properties?: any }>) =>
  Object.values(alarms).map((alarm) => alarm.Properties.MetricName ?? alarm.Properties.Metrics?.find((m: any) => m.Expression)?.Expression);

/** Nothing the stack tests read is a bundle: their apps are synthesized without bundling the functions. */
export const UNBUNDLED = { bundle: false } as const;

/** The whole app as a stack test file reads it, synthesized before its tests and removed after them. */
export interface SynthesizedApp {
  readonly built: ReturnType<typeof buildTestApp>;
  readonly controlPlane: Template;
  /** The cell stacks' templates, by cell id. */
  readonly cells: Record<string, Template>;
  /** The app with a 4th cell, built once for the tests that compare it with three. */
  withFourCells(): ReturnType<typeof buildTestApp>;
}

/** Call at the top of a stack test file: the app is built in its `beforeAll`, and removed with the 4-cell one in its `afterAll`. */
export function synthesizedApp(): SynthesizedApp {
  let state: Omit<SynthesizedApp, 'withFourCells'> | undefined;
  let fourCells: ReturnType<typeof buildTestApp> | undefined;
  const built = () => {
    if (!state) throw new Error('the app is built in beforeAll: read it inside a test');
    return state;
  };
  beforeAll(() => {
    const app = buildTestApp({}, UNBUNDLED);
    const cells = Object.fromEntries(app.stacks.cells.map((stack) => [stack.cellId, Template.fromStack(stack)]));
    state = { built: app, controlPlane: Template.fromStack(app.stacks.controlPlane), cells };
  });
  afterAll(() => {
    state?.built.cleanup();
    fourCells?.cleanup();
  });
  return {
    get built() {
      return built().built;
    },
    get controlPlane() {
      return built().controlPlane;
    },
    get cells() {
      return built().cells;
    },
    withFourCells: () => (fourCells ??= buildTestApp({ cells: ['cell-1', 'cell-2', 'cell-3', 'cell-4'] }, UNBUNDLED)),
  };
}
