/**
 * The HTTP API's one route table: each path with the methods it answers and
 * the scope each method needs. The router reads it for the scope to check,
 * for preflights and for 404/405; the cell API registers its handlers from
 * it and answers 405 with its `Allow`. Adding a route is adding a row here
 * and its handler in the cell API, which refuses to start if either is
 * missing. Every method names its scope: the router gives none by default,
 * so a method without one cannot be listed. A leaf module: it imports only
 * other contracts.
 */
import { ITEM, ORDER, type EntityKind } from './cell-table.ts';
import { SCOPES, type Scope } from './scopes.ts';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface Route {
  /** Segments; `:name` matches any one non-empty segment. */
  readonly path: `/${string}`;
  /** Every method the path answers, with the scope it needs (HEAD: GET without the body). */
  readonly methods: Readonly<Partial<Record<HttpMethod, Scope>>>;
}

/**
 * The two rows of a versioned entity's CRUD API: its collection (a page of
 * records) and one record (read, replace, patch, delete).
 */
export function entityRoutes<const K extends Pick<EntityKind, 'collection' | 'idField'>>(
  kind: K,
  scopes: { readonly read: Scope; readonly write: Scope },
) {
  const { read, write } = scopes;
  return [
    { path: `/tenants/:tenantId/${kind.collection}`, methods: { GET: read, HEAD: read } },
    {
      path: `/tenants/:tenantId/${kind.collection}/:${kind.idField}`,
      methods: { GET: read, HEAD: read, PUT: write, PATCH: write, DELETE: write },
    },
  ] as const satisfies readonly Route[];
}

export const ROUTES = [
  ...entityRoutes(ITEM, { read: 'items.read', write: 'items.write' }),
  { path: `/tenants/:tenantId/${ORDER.collection}`, methods: { POST: 'orders.write' } },
  { path: `/tenants/:tenantId/${ORDER.collection}/:${ORDER.idField}`, methods: { GET: 'orders.write', HEAD: 'orders.write' } },
] as const satisfies readonly Route[];

/**
 * The mistakes a route table can hold that its type does not catch (a table
 * built at run time, or cast): a method without a known scope, a path
 * listed twice. Empty when the table is sound.
 */
export function routeTableProblems(routes: readonly Route[]): string[] {
  const problems: string[] = [];
  const known = new Set<string>(SCOPES);
  const seen = new Set<string>();
  for (const route of routes) {
    if (seen.has(route.path)) problems.push(`${route.path} is listed twice`);
    seen.add(route.path);
    const methods = Object.entries(route.methods);
    if (methods.length === 0) problems.push(`${route.path} lists no method`);
    for (const [method, scope] of methods) {
      if (!(HTTP_METHODS as readonly string[]).includes(method))
        problems.push(`${route.path} lists ${method}, which is not an HTTP method the API serves`);
      if (typeof scope !== 'string' || !known.has(scope)) problems.push(`${method} ${route.path} names no known scope (${String(scope)})`);
    }
  }
  return problems;
}

/** The route whose path matches, if any. */
export function matchRoute(path: string, routes: readonly Route[] = ROUTES): Route | undefined {
  const segments = path.split('/');
  return routes.find((route) => {
    const pattern = route.path.split('/');
    return pattern.length === segments.length && pattern.every((part, i) => (part.startsWith(':') ? segments[i] !== '' : part === segments[i]));
  });
}

/** The methods a route answers, as `Allow` and `Access-Control-Allow-Methods` list them. */
export function allowedMethods(route: Route): string {
  return [...HTTP_METHODS.filter((method) => route.methods[method] !== undefined), 'OPTIONS'].join(', ');
}

/** Every method some route answers: the preflight's answer for a path no route matches. */
export function allMethods(routes: readonly Route[] = ROUTES): string {
  return [...HTTP_METHODS.filter((method) => routes.some((route) => route.methods[method] !== undefined)), 'OPTIONS'].join(', ');
}
