/**
 * The Service of a rollout run: a TCP proxy spreading new connections round-robin
 * over the endpoints that are ready, the way kube-proxy spreads them over a
 * Service's endpoints. Connections already made stay where they are until either
 * side closes. An endpoint that refuses (an instance that just stopped listening)
 * is skipped for the next one.
 *
 * Each proxy holds two sockets per client, so a run with many clients uses several
 * proxy processes (proxy-process.ts), each under the per-process open-files cap.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class RoundRobinProxy {
  /** Ports of the ready endpoints on 127.0.0.1; replace the array's contents to change them. */
  readonly endpoints: number[] = [];
  private next = 0;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  /** Listens on a free loopback port (`port` once it resolves). */
  async listen(): Promise<void> {
    const server = createServer((downstream) => this.route(downstream, 0));
    this.server = server;
    // A deep accept queue: a reconnect wave of thousands must queue, not be dropped
    // (Node's default 511 overflowed at 10,000 clients; the kernel caps it at somaxconn).
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve));
    this.port = (server.address() as { port: number }).port;
  }

  private route(downstream: Socket, tries: number): void {
    this.sockets.add(downstream);
    downstream.once('close', () => this.sockets.delete(downstream));
    downstream.on('error', () => downstream.destroy());
    if (this.endpoints.length === 0 || tries >= this.endpoints.length) {
      downstream.destroy();
      return;
    }
    const port = this.endpoints[this.next++ % this.endpoints.length];
    const upstream = connect(port, '127.0.0.1');
    this.sockets.add(upstream);
    upstream.once('close', () => this.sockets.delete(upstream));
    downstream.pause();
    upstream.once('error', () => {
      // Refused (an instance that just stopped listening): the next endpoint.
      if (!upstream.readyState.startsWith('open')) this.route(downstream, tries + 1);
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      const end = () => {
        upstream.destroy();
        downstream.destroy();
      };
      upstream.on('error', end);
      downstream.on('error', end);
      downstream.pipe(upstream);
      upstream.pipe(downstream);
      downstream.resume();
    });
  }

  /** Closes every proxied connection and the listener. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
