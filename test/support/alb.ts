import type { ALBEvent, Context } from 'aws-lambda';

/** An ALB event as the load balancer sends it with multi-value headers off. */
export function albEvent(
  method: string,
  pathAndQuery: string,
  options: { body?: unknown; headers?: Record<string, string>; base64?: boolean } = {},
): ALBEvent {
  const url = new URL(pathAndQuery, 'http://alb.local');
  const body = options.body === undefined ? '' : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  const query = Object.fromEntries(url.searchParams);
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/router/abc' } },
    httpMethod: method,
    path: url.pathname,
    queryStringParameters: query,
    headers: {
      host: 'alb.local',
      'x-amzn-trace-id': 'Root=1-00000000-000000000000000000000000',
      ...(body && { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: options.base64 ? Buffer.from(body).toString('base64') : body,
    isBase64Encoded: options.base64 ?? false,
  };
}

export const lambdaContext: Context = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:test',
  memoryLimitInMB: '512',
  awsRequestId: 'request-1',
  logGroupName: '/aws/lambda/test',
  logStreamName: 'stream',
  getRemainingTimeInMillis: () => 10_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};
