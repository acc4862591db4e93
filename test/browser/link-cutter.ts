/**
 * A TCP relay between the browser and the daemon that a test can cut. Chromium's
 * DevTools offline emulation (Network.emulateNetworkConditions, offline: true) fires
 * the page's `offline` event and blocks new connections, but in Chromium 156 it does
 * not close WebSockets that are already open (their frames are held and delivered
 * when the network returns). Real network loss kills them, so the tests also destroy
 * the relayed TCP connections (no close frame) and refuse new ones while "offline".
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A relay to 127.0.0.1:`targetPort`. */
export class LinkCutter {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #down = false;
  port = 0;

  constructor(targetPort: number) {
    this.#server = createServer((client) => {
      if (this.#down) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  /** Listens on 127.0.0.1 (port 0). */
  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  /** Destroys every relayed connection and refuses new ones until up(). */
  down(): void {
    this.#down = true;
    for (const s of this.#sockets) s.destroy();
  }

  /** Accepts connections again. */
  up(): void {
    this.#down = false;
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
