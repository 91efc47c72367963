import type { LocalRuntime } from './runtime.ts';

export interface BannerOptions {
  readonly readySeconds: number;
  /** Where DynamoDB Local keeps its data. @default - in memory */
  readonly persistDir?: string;
  /** Whether sources are watched (`npm run dev`). @default false */
  readonly watching?: boolean;
}

/** What `npm start` prints once the runtime serves: where everything listens, and requests to try. */
export function banner(
  runtime: Pick<LocalRuntime, 'appName' | 'url' | 'live' | 'issuer' | 'dynamoEndpoint' | 'assembly'>,
  options: BannerOptions,
): string {
  // Each cell has several functions: each cell once, in the order the app declares them.
  const cells = [...new Set(runtime.assembly.functions.map((fn) => fn.environment.CELL_ID).filter((cellId) => cellId !== undefined))];
  return `
${runtime.appName} is running locally (ready in ${options.readySeconds.toFixed(1)} s)

  front door   ${runtime.url}            (the ALB: router → cells)
  live         ${runtime.live?.url ?? 'none'}       (WebSocket API: ?token=<token>, then subscribe)
  issuer       ${runtime.issuer?.url ?? 'none'}  (stands in for Cognito: npm run token)
  DynamoDB     ${runtime.dynamoEndpoint}  (DynamoDB Local${options.persistDir ? `, data in ${options.persistDir}` : ', in memory'})
  cells        ${cells.join(', ')}

Try (every /tenants route needs a token of its own tenant; /health is open):
  TOKEN=$(npm run -s token -- --tenant acme)
  curl -i -X PUT ${runtime.url}/tenants/acme/items/widget-1 -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -d '{"title":"Widget","price":{"amount":1299,"currency":"EUR"},"stock":10}'
  curl -i ${runtime.url}/tenants/acme/items/widget-1 -H "authorization: Bearer $TOKEN"
  curl -i -X POST ${runtime.url}/tenants/acme/orders -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -H "idempotency-key: order-$(date +%s)" \\
    -d '{"lines":[{"itemId":"widget-1","quantity":2}],"customerId":"c-1","payment":{"token":"tok_ok"}}'
  curl -s ${runtime.url}/_local/queues        (what the order workflows sent)
  curl -s ${runtime.url}/_local/traffic       (requests and 5xx per cell, 5-second slots)
${
  runtime.live
    ? `  npx -y wscat -c "${runtime.live.url}?token=$TOKEN"     (then send {"action":"subscribe","tenantId":"acme"})
`
    : ''
}
${options.watching ? 'Watching sources: changed functions reload without a restart. ' : ''}Ctrl-C stops everything.`;
}
