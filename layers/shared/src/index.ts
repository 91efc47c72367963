export { errorBody, type ErrorBody } from './errors.ts';
export { ID_PATTERN, ID_RULE, isValidId, tenantIdOf } from './ids.ts';
export {
  ALB_CORRELATION_ID_PATH,
  createObservability,
  instrument,
  type Observability,
} from './observability.ts';
export { MetricUnit } from '@aws-lambda-powertools/metrics';
