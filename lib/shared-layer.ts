import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { fromRoot } from './paths.ts';

/** The module name functions import the shared code by; Lambda resolves it under /opt/nodejs/node_modules. */
export const SHARED_MODULE = '@item-master/shared';

/** Lambda's runtime and architecture for every function of the service. */
export const LAMBDA_RUNTIME = Runtime.NODEJS_24_X;
export const LAMBDA_ARCHITECTURE = Architecture.ARM_64;
export const ESBUILD_TARGET = 'node24';

/**
 * The X-Ray SDK's context on AsyncLocalStorage in place of cls-hooked's
 * (see the module): every bundle that holds the SDK, the layer's or a
 * function's own, is built with it.
 */
export const XRAY_CONTEXT_ALIAS = { 'cls-hooked/context': fromRoot('layers', 'shared', 'src', 'xray-context.ts') } as const;

/** Lets CommonJS dependencies call `require` inside an ES module bundle. */
export const ESM_REQUIRE_BANNER = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

export interface SharedLayerProps {
  /**
   * Directory of the shared package (its `package.json` names `SHARED_MODULE`).
   * @default layers/shared
   */
  readonly sourceDir?: string;
  /**
   * Layer description.
   * @default - says what the layer holds
   */
  readonly description?: string;
}

/**
 * The project's shared code (`layers/shared`) bundled by the local esbuild
 * into `nodejs/node_modules/@item-master/shared`, the path Lambda resolves
 * bare imports from. Functions keep the module external and load it from here.
 * Each stack makes its own copy so that no cell depends on another stack.
 */
export class SharedLayer extends LayerVersion {
  constructor(scope: Construct, id: string, props: SharedLayerProps = {}) {
    const sourceDir = props.sourceDir ?? fromRoot('layers', 'shared');
    super(scope, id, {
      description: props.description ?? 'Code shared by the functions (observability, auth, errors, ids, contracts)',
      compatibleRuntimes: [LAMBDA_RUNTIME],
      compatibleArchitectures: [LAMBDA_ARCHITECTURE],
      code: Code.fromAsset(sourceDir, {
        // Hash what ships, so that a dependency upgrade also makes a new layer version.
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // Never used: local bundling always succeeds or throws.
          image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs24.x'),
          local: {
            tryBundle(outputDir: string): boolean {
              bundleSharedLayer(sourceDir, outputDir);
              return true;
            },
          },
        },
      }),
    });
  }
}

/**
 * The package's entry points, from its `exports`: a subpath to its source
 * file, a `*` pattern expanded over the files it matches.
 */
export function sharedEntryPoints(sourceDir: string): Array<{ subpath: string; source: string }> {
  const { exports } = JSON.parse(readFileSync(path.join(sourceDir, 'package.json'), 'utf8')) as { exports: Record<string, string> };
  return Object.entries(exports).flatMap(([subpath, target]) => {
    if (!subpath.includes('*')) return [{ subpath, source: path.join(sourceDir, target) }];
    const [prefix, suffix] = target.split('*') as [string, string];
    return readdirSync(path.join(sourceDir, prefix))
      .filter((file) => file.endsWith(suffix))
      .map((file) => ({ subpath: subpath.replace('*', file.slice(0, -suffix.length)), source: path.join(sourceDir, prefix, file) }));
  });
}

/**
 * Writes the layer's content into `outputDir`: one self-contained ES module
 * per entry of the package's `exports`, so that a function importing one
 * subpath loads that and not the tracer the index brings, and one importing
 * the index loads one file. (Shared chunks would make the layer smaller, at
 * the price of a dozen more files to resolve and compile at every cold
 * start.) Exported for the local runtime and the bench.
 */
export function bundleSharedLayer(sourceDir: string, outputDir: string): void {
  const moduleDir = path.join(outputDir, 'nodejs', 'node_modules', ...SHARED_MODULE.split('/'));
  mkdirSync(moduleDir, { recursive: true });
  const entries = sharedEntryPoints(sourceDir).map(({ subpath, source }) => ({
    subpath,
    // '.' → index, './contracts/names' → contracts/names
    out: subpath === '.' ? 'index' : subpath.slice(2),
    source,
  }));
  buildSync({
    entryPoints: entries.map(({ out, source }) => ({ in: source, out })),
    outdir: moduleDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ESBUILD_TARGET,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    external: ['@aws-sdk/*'],
    alias: XRAY_CONTEXT_ALIAS,
    banner: { js: ESM_REQUIRE_BANNER },
    logLevel: 'error',
  });
  const exports = Object.fromEntries(entries.map(({ subpath, out }) => [subpath, `./${out}.mjs`]));
  writeFileSync(path.join(moduleDir, 'package.json'), `${JSON.stringify({ name: SHARED_MODULE, type: 'module', exports }, null, 2)}\n`);
}
