import { execSync } from 'node:child_process';
import { startLocalRuntime } from './local/runtime.ts';
import { benchThroughput } from './bench/throughput.ts';
const runtime = await startLocalRuntime({ port: 0, webSocketPort: 0, outdir: '/tmp/scratch-cdk.out', stateFile: '/tmp/scratch-state.json', functionOutput: () => undefined });
try {
  const token = (await runtime.issuer!.issue({ tenantId: 'bench' })).access_token;
  const target = { url: runtime.url, dynamoEndpoint: runtime.dynamoEndpoint, token, tenantId: 'bench' };
  if (process.env.NOSTREAMS) await runtime.streams.stop();
  const pids = [process.pid, ...runtime.pids()];
  const cpu = () => Object.fromEntries(pids.map((p) => { try { const [u, s] = execSync(`cat /proc/${p}/stat`).toString().split(') ')[1]!.split(' ').slice(11, 13).map(Number); return [p, u! + s!]; } catch { return [p, 0]; } }));
  const names: Record<number, string> = Object.fromEntries(pids.map((p) => [p, execSync(`ps -o args= -p ${p}`).toString().slice(0, 90).trim()]));
  const before = cpu();
  const t = performance.now();
  const r = await benchThroughput(target, 1500, 16);
  const secs = (performance.now() - t) / 1000;
  pids.push(...runtime.pids().filter((p) => !pids.includes(p)));
  for (const p of pids) names[p] ??= execSync(`ps -o args= -p ${p}`).toString().slice(0, 90).trim();
  const after = cpu();
  console.log(JSON.stringify({ put: r.put.ratio, get: r.get.ratio, putRaw: r.put.raw.opsPerSecond, putSvc: r.put.service.opsPerSecond, getRaw: r.get.raw.opsPerSecond, getSvc: r.get.service.opsPerSecond }));
  for (const p of pids) console.log(((after[p]! - (before[p] ?? 0)) / 100 / secs * 100).toFixed(0).padStart(4) + '%', names[p]);
} finally { await runtime.stop(); }
