/**
 * The primary thread: everything that happens once per instance. It owns the
 * engine (sequencer, bus, presence, command journal), the routing table, the shard
 * supervisor, readiness and the shutdown choreography. It never touches a client
 * socket: shards do, and ask the primary through requests (requests.ts).
 */
import type { Logger } from 'pino';
import { encode } from '../../protocol/codec.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Config } from '../config/schema.js';
import { createEngine, type Engine } from '../engine/engine.js';
import type { ShardToPrimary } from '../threads/messages.js';
import { Admissions } from './admissions.js';
import { handleShardRequest } from './requests.js';
import { Router } from './router.js';
import type { ShardLink } from './shard-link.js';
import { Supervisor } from './supervisor.js';

/** A running instance. */
export class Primary {
  readonly engine: Engine;
  readonly router: Router;
  readonly supervisor: Supervisor;
  readonly admissions: Admissions;
  private ready = false;
  private started = false;
  private shutdownPromise: Promise<number> | undefined;

  constructor(readonly config: Config, readonly log: Logger) {
    this.admissions = new Admissions(config.maxConnections, config.maxConnectionsPerUser);
    this.engine = createEngine(config, (session) => this.router.isActive(session));
    this.router = new Router(this.engine.bus, (session, err) =>
      this.log.error({ err, session }, 'bus subscription change failed'),
    );
    this.engine.bus.onMessage((msg) => {
      const shards = this.router.shardsFor(msg.session);
      if (!shards) return;
      for (const id of shards) this.supervisor.link(id)?.enqueue(msg);
    });
    this.supervisor = new Supervisor(config, log, {
      onMessage: (link, msg) => this.onShardMessage(link, msg),
      onShardExit: (id, crashed) => this.onShardExit(id, crashed),
      onShardListening: (link) => {
        link.send({ op: 'ready', ready: this.ready });
        if (this.started) this.log.info({ shard: link.id }, 'shard restarted');
      },
    });
  }

  /** Starts the shards; resolves with the port once every shard listens. */
  async start(): Promise<number> {
    const port = await this.supervisor.start();
    this.started = true;
    this.setReady(true);
    this.log.info(
      { port, host: this.config.host, shards: this.config.shards, engine: this.engine.kind },
      'listening',
    );
    return port;
  }

  /**
   * Drains and stops: readiness off, shards stop accepting, send go-away, flush
   * buffers and close with 1001, then the engine closes. Resolves with the exit
   * code (0 when everything drained inside the deadline). Idempotent.
   */
  shutdown(reason: string): Promise<number> {
    this.shutdownPromise ??= this.runShutdown(reason);
    return this.shutdownPromise;
  }

  private async runShutdown(reason: string): Promise<number> {
    const started = Date.now();
    const deadline = started + this.config.drainTimeoutMs;
    this.log.info({ reason, drainTimeoutMs: this.config.drainTimeoutMs }, 'draining');
    this.setReady(false);
    await this.supervisor.drain(deadline);
    await this.engine.close();
    const tookMs = Date.now() - started;
    const late = Date.now() > deadline + 1000;
    this.log.info({ tookMs, late }, 'stopped');
    return late ? 1 : 0;
  }

  private setReady(ready: boolean): void {
    this.ready = ready;
    this.supervisor.broadcast({ op: 'ready', ready });
  }

  private onShardMessage(link: ShardLink, msg: ShardToPrimary): void {
    switch (msg.op) {
      case 'interest':
        this.router.addInterest(msg.session, link.id);
        return;
      case 'uninterest':
        this.router.removeInterest(msg.session, link.id);
        return;
      case 'release':
        this.admissions.release(link.id, msg.user);
        return;
      case 'presence-join':
        void this.presenceJoin(msg.session, msg.user, link.id);
        return;
      case 'presence-leave':
        void this.presenceLeave(msg.session, msg.user, link.id);
        return;
      case 'request':
        void handleShardRequest(this, link, msg);
        return;
      case 'listening':
      case 'listen-failed':
        return;
    }
  }

  /** Counts a connection of `user` in the session; announces the user's arrival. */
  async presenceJoin(session: string, user: string, shard: number): Promise<void> {
    try {
      if (await this.engine.presence.join(session, user, String(shard))) this.announce('pjoin', session, user);
    } catch (err) {
      this.log.error({ err, session }, 'presence join failed');
    }
  }

  private async presenceLeave(session: string, user: string, shard: number): Promise<void> {
    try {
      if (await this.engine.presence.leave(session, user, String(shard))) this.announce('pleave', session, user);
    } catch (err) {
      this.log.error({ err, session }, 'presence leave failed');
    }
  }

  /** Publishes a pjoin/pleave notice where the namespace wants them (they cost one frame per member per join). */
  private announce(t: 'pjoin' | 'pleave', session: string, user: string): void {
    if (!namespaceFor(this.config, session).joinLeave) return;
    this.engine.bus.publish({ session, seq: 0, frame: encode({ t, s: session, u: user }) });
  }

  private onShardExit(id: number, crashed: boolean): void {
    if (!crashed) return;
    this.admissions.dropShard(id);
    this.router.dropShard(id);
    void this.engine.presence.dropOwner(String(id)).then(
      (gone) => {
        for (const { session, user } of gone) this.announce('pleave', session, user);
      },
      (err) => this.log.error({ err, shard: id }, 'presence cleanup failed'),
    );
  }
}
