/**
 * Where the tests find Redis: the machine's Redis (deploy/services.sh starts it) and,
 * when `deploy/services.sh` started it, the local 3-master Redis Cluster. Tests share
 * both, so each isolates itself with its own key prefix (`uniquePrefix`).
 */
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';

/** URL of the machine's standalone Redis. */
export const REDIS_URL = process.env.SHARDCAST_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Nodes of the local test cluster (deploy/services.sh, REDIS_CLUSTER_PORTS). */
export const REDIS_CLUSTER_NODES = (process.env.SHARDCAST_TEST_REDIS_CLUSTER ?? '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003').split(',');

/** A key prefix no other test (or earlier run) uses. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Sends one inline command and returns the first reply line (enough for PING / CLUSTER INFO checks). */
function ask(host: string, port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${host}:${port}: no answer to ${command} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n') && (!data.startsWith('$') || data.split('\r\n').length > 2)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data);
      }
    });
    socket.connect(port, host, () => socket.write(`${command}\r\n`));
  });
}

/** True when the local test cluster answers and reports `cluster_state:ok`. */
export async function redisClusterUp(): Promise<boolean> {
  const [host, port] = REDIS_CLUSTER_NODES[0].split(':');
  try {
    return (await ask(host, Number(port), 'CLUSTER INFO')).includes('cluster_state:ok');
  } catch {
    return false;
  }
}
