import { spawnSync } from 'node:child_process';
import os from 'node:os';

export interface MachineFacts {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  /** DynamoDB Local runs on it. */
  readonly java: string;
}

export function machine(): MachineFacts {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    java: (java.stderr ?? '').split('\n')[0]?.trim() || 'not found',
  };
}
