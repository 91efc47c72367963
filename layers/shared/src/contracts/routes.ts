/**
 * The HTTP API's one route table: each path with the methods it answers and
 * the scope each method needs. The router reads it for the scope to check,
 * for preflights and for 404/405; the cell API registers its handlers from
 * it and answers 405 with its `Allow`. Adding a route is adding a row here
 * and its handler in the cell API, which refuses to start if either is
 * missing. A leaf module: it imports only the scopes.
 */
import type { Scope } from './scopes.ts';

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface Route {
  /** Segments; `:name` matches any one non-empty segment. */
  readonly path: `/${string}`;
  /** Every method the path answers, with the scope it needs (HEAD: GET without the body). */
  readonly methods: Readonly<Partial<Record<HttpMethod, Scope>>>;
}

export const ROUTES = [
  { path: '/tenants/:tenantId/items', methods: { GET: 'items.read', HEAD: 'items.read' } },
  {
    path: '/tenants/:tenantId/items/:itemId',
    methods: { GET: 'items.read', HEAD: 'items.read', PUT: 'items.write', PATCH: 'items.write', DELETE: 'items.write' },
  },
  { path: '/tenants/:tenantId/orders', methods: { POST: 'orders.write' } },
  { path: '/tenants/:tenantId/orders/:orderId', methods: { GET: 'orders.write', HEAD: 'orders.write' } },
] as const satisfies readonly Route[];

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
