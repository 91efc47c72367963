/**
 * The same function bundled the four ways `ServiceFunction` can bundle it
 * (shared code from the layer or bundled; AWS SDK from the runtime or
 * bundled), synthesized through the construct itself so that the bench
 * measures exactly what would deploy.
 */
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { CfnLayerVersion } from 'aws-cdk-lib/aws-lambda';
import { ServiceFunction, type ServiceFunctionProps } from '../lib/service-function.ts';
import { SharedLayer } from '../lib/shared-layer.ts';
import { buildQuietly } from '../local/synthesis.ts';

export type AwsSdkSource = NonNullable<ServiceFunctionProps['awsSdk']>;
export type SharedCodeSource = NonNullable<ServiceFunctionProps['sharedCode']>;

export interface BundlingVariant {
  readonly service: string;
  readonly sharedCode: SharedCodeSource;
  readonly awsSdk: AwsSdkSource;
  /** The function's asset directory in the cloud assembly. */
  readonly codeDir: string;
  /** Its layers' asset directories (none when the shared code is bundled). */
  readonly layerDirs: string[];
}

export const VARIANTS: ReadonlyArray<{ sharedCode: SharedCodeSource; awsSdk: AwsSdkSource }> = [
  { sharedCode: 'layer', awsSdk: 'runtime' },
  { sharedCode: 'bundled', awsSdk: 'runtime' },
  { sharedCode: 'layer', awsSdk: 'bundled' },
  { sharedCode: 'bundled', awsSdk: 'bundled' },
];

export function variantName(variant: { sharedCode: SharedCodeSource; awsSdk: AwsSdkSource }): string {
  return `shared ${variant.sharedCode}, SDK ${variant.awsSdk === 'runtime' ? 'from runtime' : 'bundled'}`;
}

/** Synthesizes every variant of each function into `outdir`. */
export function synthesizeVariants(
  outdir: string,
  functions: ReadonlyArray<{ readonly service: string; readonly entry: string }>,
): BundlingVariant[] {
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  // Quietly: the CDK prints a line per bundled asset, and the bench prints only its own progress.
  const { sharedLayer, built } = buildQuietly(
    app,
    () => {
      const stack = new Stack(app, 'BundlingVariants');
      const sharedLayer = new SharedLayer(stack, 'SharedLayer');
      const built = functions.flatMap(({ service, entry }) =>
        VARIANTS.map((variant, index) => ({
          service,
          ...variant,
          fn: new ServiceFunction(stack, `${service}${index}`, {
            entry,
            description: `${service}, ${variantName(variant)}`,
            serviceName: service,
            sharedLayer,
            ...variant,
          }),
        })),
      );
      return { sharedLayer, built };
    },
    { warnAsOnDeploy: true },
  );
  app.synth();
  const assetDir = (resource: CfnFunction | CfnLayerVersion) => path.join(outdir, String(resource.getMetadata('aws:asset:path')));
  const layerDir = assetDir(sharedLayer.node.defaultChild as CfnLayerVersion);
  return built.map(({ fn, ...variant }) => ({
    ...variant,
    codeDir: assetDir(fn.node.defaultChild as CfnFunction),
    layerDirs: variant.sharedCode === 'layer' ? [layerDir] : [],
  }));
}
