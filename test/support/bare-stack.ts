/** Constructs on their own, each in a bare stack: what they grant and read, without the whole app (and without bundling). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { afterAll, expect } from 'vitest';
import { CellTable } from '../../lib/cell-table.ts';
import { OrderWorkflow } from '../../lib/order-workflow.ts';
import { ServiceFunction } from '../../lib/service-function.ts';
import { SharedLayer } from '../../lib/shared-layer.ts';
import { featureFlags } from './synth.ts';

export const app = { appName: 'shop', stage: 'dev' } as const;

/**
 * Bare stacks for one test file: each in an app of its own, synthesized in a
 * folder removed after the file (an App without one leaves a folder in the
 * temp dir). Call it at the top of the file.
 */
export function bareStacks(): () => Stack {
  const outdir = mkdtempSync(path.join(tmpdir(), 'constructs-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));
  return () => {
    // cdk.json's feature flags, as the app has them; no stack bundles: the constructs' wiring is under test, not their code.
    const context = { ...featureFlags(), 'aws:cdk:bundling-stacks': [] };
    return new Stack(new App({ outdir: mkdtempSync(path.join(outdir, 'app-')), context }), 'Bare', {
      env: { account: '123456789012', region: 'eu-west-1' },
    });
  };
}

/** The statements of the policies attached to a role whose logical id starts with `rolePrefix`, as actions (sorted) and resource. */
export function rights(template: Template, rolePrefix: string): Array<{ actions: string[]; resource: string; condition?: unknown }> {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: { Ref: string }) => role.Ref.startsWith(rolePrefix)))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
    .map((s: any) => ({ actions: [s.Action].flat().sort(), resource: JSON.stringify(s.Resource), ...(s.Condition && { condition: s.Condition }) }));
}

export function functionOf(template: Template, idPrefix: string): any {
  const found = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) => id.startsWith(idPrefix));
  expect(found).toHaveLength(1);
  return found[0]![1];
}

/** A cell's parts a construct under test may need. */
export function cellParts(stack: Stack) {
  const sharedLayer = new SharedLayer(stack, 'SharedLayer');
  const table = new CellTable(stack, 'Data');
  const payment = new ServiceFunction(stack, 'Payment', {
    entry: 'functions/payment/index.ts',
    description: 'pays',
    serviceName: 'payment',
    sharedLayer,
  });
  const orders = new OrderWorkflow(stack, 'Orders', { table: table.table, paymentFunction: payment, eventsQueue: new Queue(stack, 'Events') });
  return { sharedLayer, table, orders };
}
