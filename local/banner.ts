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
  rt: Pick<LocalRuntime, 'appName' | 'url' | 'live' | 'issuer' | 'dynamoEndpoint' | 'assembly'>,
  options: BannerOptions,
): string {
  // Each cell has several functions: each cell once, in the order the app declares them.
  const cells = [...new Set(rt.assembly.functions.map((fn) => fn.environment.CELL_ID).filter((cellId) => cellId !== undefined))];
  return `
${rt.appName} is running locally (ready in ${options.readySeconds.toFixed(1)} s)

  front door   ${rt.url}            (the ALB: router → cells)
  live         ${rt.live?.url ?? 'none'}       (WebSocket API: ?token=<token>, then subscribe)
  issuer       ${rt.issuer?.url ?? 'none'}  (stands in for Cognito: npm run token)
  DynamoDB     ${rt.dynamoEndpoint}  (DynamoDB Local${options.persistDir ? `, data in ${options.persistDir}` : ', in memory'})
  cells        ${cells.join(', ')}

Try (every /tenants route needs a token of its own tenant; /health is open):
  TOKEN=$(npm run -s token -- --tenant acme)
  curl -i -X PUT ${rt.url}/tenants/acme/items/widget-1 -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -d '{"title":"Widget","price":{"amount":1299,"currency":"EUR"},"stock":10}'
  curl -i ${rt.url}/tenants/acme/items/widget-1 -H "authorization: Bearer $TOKEN"
  curl -i -X POST ${rt.url}/tenants/acme/orders -H "authorization: Bearer $TOKEN" \\
    -H 'content-type: application/json' -H "idempotency-key: order-$(date +%s)" \\
    -d '{"lines":[{"itemId":"widget-1","quantity":2}],"customerId":"c-1","payment":{"token":"tok_ok"}}'
  curl -s ${rt.url}/_local/queues        (what the order workflows sent)
  curl -s ${rt.url}/_local/traffic       (requests and 5xx per cell, 5-second slots)
${
  rt.live
    ? `  npx -y wscat -c "${rt.live.url}?token=$TOKEN"     (then send {"action":"subscribe","tenantId":"acme"})
`
    : ''
}
${options.watching ? 'Watching sources: changed functions reload without a restart. ' : ''}Ctrl-C stops everything.`;
}
