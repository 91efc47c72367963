/**
 * One way for every handler to read its environment: a zod schema (or
 * anything with zod's `safeParse`), checked at init, failing with one line
 * that names the function and every variable that is wrong. The layer does
 * not bundle zod; each function brings its own.
 */
export interface EnvironmentSchema<T> {
  safeParse(value: unknown):
    | { success: true; data: T }
    | { success: false; error: { issues: ReadonlyArray<{ path: readonly PropertyKey[]; message: string }> } };
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
