/**
 * One way for every handler to read its environment: a zod schema (or
 * anything with zod's `safeParse`), checked at init, failing with one line
 * that names the function and every variable that is wrong. The layer does
 * not bundle zod; each function brings its own.
 */
export interface EnvironmentSchema<T> {
  safeParse(
    value: unknown,
  ): { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<{ path: readonly PropertyKey[]; message: string }> } };
}

export function parseEnvironment<T>(
  functionName: string,
  schema: EnvironmentSchema<T>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): T {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.map(String).join('.')}: ${issue.message}`);
  throw new Error(`${functionName} environment: ${problems.join('; ')}`);
}

/**
 * A schema for variables that only need to be set, for a function that has
 * no other use for zod: it keeps zod (some 80 KB) out of the bundle and its
 * cold start.
 */
export function requiredVariables<const Name extends string>(...names: Name[]): EnvironmentSchema<Record<Name, string>> {
  return {
    safeParse(value: unknown) {
      const env = value as Readonly<Record<string, string | undefined>>;
      const missing = names.filter((name) => !env[name]);
      if (missing.length > 0) return { success: false, error: { issues: missing.map((name) => ({ path: [name], message: 'must be set' })) } };
      return { success: true, data: Object.fromEntries(names.map((name) => [name, env[name] as string])) as Record<Name, string> };
    },
  };
}
