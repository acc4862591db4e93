/**
 * One shard: a worker thread's uWS App on the shared port, its connection
 * registry, and its end of the primary's port. It accepts and authenticates
 * connections, handles their frames, delivers routed frames, enforces the buffer
 * bound, and drains on request. See docs/architecture.md, "Threads and ownership".
 */
import { TurnScheduler } from './turn-scheduler.js';
import { nowUs } from './micro-clock.js';
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Logger } from '../log.js';
import type { PrimaryToShard, ShardToPrimary } from '../threads/messages.js';
import { loadUws, type App, type us_listen_socket } from '../uws.js';
import { AdminQueryHandler } from './admin-queries.js';
import { clientLimits, replyError } from './client-requests.js';
import { deliverBatch } from './delivery.js';
import { drainConnections, type DrainPlan } from './drain.js';
import { resyncSession, type JoinContext } from './joins.js';
import { registerHttpApi } from './http-api.js';
import { PrimaryLink } from './primary-link.js';
import { Registry } from './registry.js';
import { shardDrops } from './shard-counters.js';
import { BufferPolicy } from './slow-consumers.js';
import { websocketBehavior } from './websocket.js';
import { WS_PATH } from '../../protocol/frames.js';

const uws = loadUws();

/** A shard thread's server; see the header comment. */
export class Shard {
  readonly app: App;
  readonly registry: Registry;
  readonly primary: PrimaryLink;
  private listenSocket: us_listen_socket | null = null;
  private ready = false;
  private draining = false;
  private stopSweep: () => void = () => {};
  readonly policy: BufferPolicy;
  private readonly joinContext: JoinContext;
  private readonly admin: AdminQueryHandler;

  constructor(
    readonly config: Config,
    readonly shardId: number,
    private readonly port: MessagePort,
    readonly log: Logger,
    /** The primary's per-user frame counters (threads/user-rates.ts); the primary owns and outlives them. */
    userRates: SharedArrayBuffer,
  ) {
    this.primary = new PrimaryLink(port);
    this.registry = new Registry((msg: ShardToPrimary) => this.primary.notify(msg), (session) => namespaceFor(config, session).index);
    this.app = uws.App() as App;
    this.policy = new BufferPolicy(config.maxBufferBytes, log);
    const scheduler = new TurnScheduler();
    const ctx = {
      config,
      registry: this.registry,
      primary: this.primary,
      shardId,
      userRates: new Int32Array(userRates),
      log,
      replyError,
      limits: clientLimits(config),
      policy: this.policy,
      accepting: () => !this.draining,
      scheduler,
    };
    this.joinContext = ctx;
    this.admin = new AdminQueryHandler({ shardId, registry: this.registry, policy: this.policy, draining: () => this.draining });
    this.app.ws(WS_PATH, websocketBehavior(ctx));
    registerHttpApi(this.app, { config, primary: this.primary, log, isReady: () => this.ready && !this.draining, scheduler });
    port.on('message', (msg: PrimaryToShard) => this.onPrimaryMessage(msg));
  }

  /** Listens on the shared port and reports the outcome to the primary. */
  listen(port: number): void {
    this.app.listen(this.config.host, port, (socket) => {
      if (!socket) {
        const message = `cannot listen on ${this.config.host}:${port} (address in use or not available)`;
        this.log.error({ port }, message);
        this.primary.notify({ op: 'listen-failed', port, message });
        this.stop();
        return;
      }
      this.listenSocket = socket;
      const actual = uws.us_socket_local_port(socket as unknown as Parameters<typeof uws.us_socket_local_port>[0]);
      this.stopSweep = this.policy.startSweep(this.registry);
      this.log.debug({ port: actual }, 'shard listening');
      this.primary.notify({ op: 'listening', port: actual });
    });
  }

  private onPrimaryMessage(msg: PrimaryToShard): void {
    switch (msg.op) {
      case 'frames':
        deliverBatch(this.app, this.registry, this.policy, msg.batch, nowUs(), (session, epoch, head) =>
          resyncSession(this.joinContext, session, epoch, head),
        );
        return;
      case 'reply':
        this.primary.settle(msg.req, msg);
        return;
      case 'ready':
        this.ready = msg.ready;
        return;
      case 'drain':
        void this.drain(msg);
        return;
      case 'admin':
        try {
          this.primary.notify({ op: 'admin-reply', req: msg.req, ok: true, result: this.admin.answer(msg.query) });
        } catch (err) {
          this.primary.notify({ op: 'admin-reply', req: msg.req, ok: false, message: err instanceof Error ? err.message : String(err) });
        }
        return;
      case 'presence-report':
        this.registry.reportPresence(msg.incarnation);
        return;
      case 'crash':
        // Test hook: an uncaught exception, exactly like a real bug would raise.
        setImmediate(() => {
          throw new Error(`shard ${this.shardId} crashed on purpose (test hook)`);
        });
        return;
    }
  }

  private async drain(plan: DrainPlan): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.closeListenSocket();
    const outcome = await drainConnections(this.registry, plan, this.policy.lowWater);
    const { policy } = this;
    this.log.info(
      { ...outcome, slowClosed: policy.slowClosed, lagStarted: policy.lagStarted, expiredClosed: policy.expiredClosed, idleClosed: policy.idleClosed, duplicatesDropped: shardDrops.total('shard_duplicate') },
      'shard drained',
    );
    this.primary.notify({ op: 'drained', connections: outcome.connections, forced: outcome.forced });
    this.stop();
  }

  private closeListenSocket(): void {
    if (this.listenSocket !== null) {
      uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = null;
    }
  }

  /** Closes everything the thread holds so it can end (normally or after a crash). */
  stop(): void {
    this.stopSweep();
    this.admin.stop();
    this.closeListenSocket();
    this.app.close();
    this.primary.close();
    this.port.close();
  }
}
