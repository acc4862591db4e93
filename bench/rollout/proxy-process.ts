/**
 * One RoundRobinProxy in its own process, driven over IPC by rollout-run.ts:
 *   child  → {op:'listening', port}       once it listens
 *   parent → {op:'endpoints', ports:[…]}  the ready endpoints from now on
 *   child  → {op:'endpoints'}             applied
 * It exits when the parent disconnects.
 */
import { RoundRobinProxy } from './round-robin-proxy.js';

/** Parent → proxy process. */
export interface ProxyCommand {
  op: 'endpoints';
  ports: number[];
}

/** Proxy process → parent. */
export type ProxyMessage = { op: 'listening'; port: number } | { op: 'endpoints' };

const proxy = new RoundRobinProxy();
await proxy.listen();
process.on('message', (command: ProxyCommand) => {
  if (command.op !== 'endpoints') return;
  proxy.endpoints.splice(0, proxy.endpoints.length, ...command.ports);
  process.send?.({ op: 'endpoints' } satisfies ProxyMessage);
});
process.on('disconnect', () => {
  void proxy.close().finally(() => process.exit(0));
});
process.send?.({ op: 'listening', port: proxy.port } satisfies ProxyMessage);
