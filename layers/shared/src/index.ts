/**
 * What the functions import. Code outside them (the CDK app, the CLIs, the
 * local runtime) imports the leaf modules instead: this index loads the
 * tracer, whose X-Ray SDK hooks every promise of a process run from source.
 */
// Every entity kind and key function: an entity added by the recipe in docs/forking.md is exported with no change here.
export * from './contracts/cell-table.ts';
export { itemTopic, MAX_CONNECTION_SECONDS, MAX_ITEMS_PER_CONNECTION, TENANT_INDEX, tenantTopic, TTL_ATTRIBUTE } from './contracts/connections.ts';
export {
  FAILURE_ATTRIBUTES,
  FAILURE_REASONS,
  ORDER_STATUSES,
  PAYMENT_ERRORS,
  SAGA_INPUT,
  type FailureReason,
  type LineCheckResult,
  type OrderStatus,
} from './contracts/order-saga.ts';
export {
  allMethods,
  allowedMethods,
  entityRoutes,
  HTTP_METHODS,
  matchRoute,
  routeTableProblems,
  ROUTES,
  type HttpMethod,
  type Route,
} from './contracts/routes.ts';
export { MAX_SHIPPED_ROUTING_BYTES, SHIPPED_ROUTING_VARIABLE, type ShippedRouting } from './contracts/shipped-routing.ts';
export { parseEnvironment, requiredVariables, type EnvironmentSchema } from './environment.ts';
export { errorBody, type ErrorBody } from './errors.ts';
export { ID_PATTERN, ID_RULE, isValidId, tenantIdOf } from './ids.ts';
export {
  ALB_CORRELATION_ID_PATH,
  createObservability,
  instrument,
  type Observability,
} from './observability.ts';
export { MetricUnit } from '@aws-lambda-powertools/metrics';
export { CELL_INVOKE, CONTROL_PLANE_READ, DATA_PLANE, sdkClientConfig, type SdkTimeouts } from './sdk-timeouts.ts';
export {
  bearerToken,
  SCOPES,
  TENANT_CLAIM,
  TokenVerifier,
  tokenVerifierOptionsFromEnv,
  type AuthFailure,
  type AuthResult,
  type Caller,
  type Requirement,
  type Scope,
  type TokenVerifierOptions,
} from './auth.ts';
