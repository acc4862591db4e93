/**
 * The consuming side of Shardcast's commands exchange for an upstream service: a
 * durable queue of the service's own, bound to the exchange with its routing keys
 * (`<namespace>.<type>`, e.g. `quiz.*`), consumed one command at a time in journal
 * order, each acked only once the service handled it.
 *
 * - **One at a time, in order.** The queue is a quorum queue with single active
 *   consumer, so a second replica of the service is a hot standby that takes over
 *   when the first goes, with the unacked commands first. The handler runs for one
 *   command after the other (prefetch only saves round trips).
 * - **At least once.** The relay may deliver a command twice (docs/rabbitmq.md), and a
 *   command whose ack was lost comes back: deliveries are deduped on `message_id`
 *   (`<session>/<user>/<cid>`) over the last `dedupeWindow` commands in memory;
 *   services that store commands also dedupe in their database.
 * - **Failures.** A body that is not a valid command is logged and acked (it can never
 *   succeed). A handler that throws (Postgres or RabbitMQ down) is retried with the
 *   same command, 100 ms doubling to 5 s, keeping every later command behind it.
 * - **Reconnects.** amqplib's recovery reconnects (1 s doubling to 30 s) and `setup`
 *   declares the queue and starts consuming again; deliveries of a lost channel are
 *   never acked on the new one (RabbitMQ redelivers them, the dedupe drops them).
 * - **Stop.** `stop()` takes no new command, lets the one in hand finish, then closes
 *   the channel: RabbitMQ puts what was not acked back at the head of the queue.
 */
import { connect, type Channel, type ChannelModel, type ConsumeMessage, type RecoveringChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { InvalidCommandError, parseCommand, type UpstreamCommand } from './upstream-command.js';

/** Settings of a command consumer. */
export interface CommandConsumerOptions {
  url: string;
  /** The commands exchange (Shardcast's `amqpCommandsExchange`). */
  exchange: string;
  /** The service's queue. */
  queue: string;
  /** Routing keys to bind, e.g. `['quiz.*']`. */
  bindings: string[];
  /** Handles one command; a throw means "retry later", so refusals are handled, not thrown. */
  handle(command: UpstreamCommand): Promise<void>;
  log: Logger;
  prefetch?: number;
  dedupeWindow?: number;
}

/** Consumes a service's commands; see the header. */
export class CommandConsumer {
  private conn: RecoveringChannelModel | null = null;
  private channel: Channel | null = null;
  private chain: Promise<void> = Promise.resolve();
  private readonly seen = new Set<string>();
  private stopping = false;
  private readyResolve: (() => void) | null = null;
  /** Resolves once the consumer runs for the first time. */
  readonly ready: Promise<void>;

  constructor(private readonly opts: CommandConsumerOptions) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
  }

  /** Connects (retrying in the background) and starts consuming once the queue is declared. */
  async start(): Promise<void> {
    const conn = await connect(this.opts.url, {
      clientProperties: { connection_name: `${this.opts.queue}-commands` },
      recovery: { waitForConnect: false, maxRetries: Infinity, initialDelay: 1000, maxDelay: 30_000, setup: (model: ChannelModel) => this.setup(model) },
    });
    this.conn = conn;
    conn.on('error', () => {});
    conn.on('handler-error', (err: unknown) => this.opts.log.error({ err }, 'command consumer setup failed'));
    conn.on('disconnect', (err: Error) => {
      if (!this.stopping) this.opts.log.warn({ err: err.message }, 'rabbitmq unreachable: commands wait in the queue');
    });
  }

  private async setup(model: ChannelModel): Promise<void> {
    const { exchange, queue, bindings } = this.opts;
    const ch = await model.createChannel();
    ch.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'command channel error'));
    ch.on('close', () => {
      if (this.channel === ch) this.channel = null;
    });
    // Shardcast declares the exchange too; declaring it here lets the service start first.
    await ch.assertExchange(exchange, 'topic', { durable: true });
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-single-active-consumer': true } });
    for (const key of bindings) await ch.bindQueue(queue, exchange, key);
    await ch.prefetch(this.opts.prefetch ?? 100);
    if (this.stopping) {
      await ch.close().catch(() => {});
      return;
    }
    await ch.consume(queue, (msg) => {
      if (msg === null) return; // cancelled by the broker (queue deleted): recovery restores it
      // A failure here is a bug (handler errors are retried inside): log it and leave
      // the delivery unacked, and keep the chain alive for the next ones.
      this.chain = this.chain.then(() => this.process(ch, msg)).catch((err: unknown) => this.opts.log.error({ err }, 'command processing failed; the delivery stays unacked'));
    });
    this.channel = ch;
    this.opts.log.info({ queue, bindings }, 'consuming commands');
    this.readyResolve?.();
  }

  private async process(ch: Channel, msg: ConsumeMessage): Promise<void> {
    if (this.stopping || this.channel !== ch) return; // left unacked: redelivered
    let command: UpstreamCommand;
    try {
      command = parseCommand(msg.content, msg.properties.contentType as string | undefined, msg.fields.routingKey, msg.properties.messageId as string | undefined);
    } catch (err) {
      if (!(err instanceof InvalidCommandError)) throw err;
      this.opts.log.warn({ routingKey: msg.fields.routingKey, reason: err.message }, 'invalid command dropped');
      ch.ack(msg);
      return;
    }
    if (!this.seen.has(command.messageId)) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.opts.handle(command);
          break;
        } catch (err) {
          this.opts.log.warn({ err: (err as Error).message, messageId: command.messageId, attempt }, 'handling a command failed: retrying it');
          await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
          if (this.stopping || this.channel !== ch) return;
        }
      }
      this.remember(command.messageId);
    }
    if (this.channel === ch) ch.ack(msg);
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > (this.opts.dedupeWindow ?? 10_000)) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  /** Stops taking commands, lets the one in hand finish, returns the rest to the queue. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.chain.catch(() => {});
    const ch = this.channel;
    this.channel = null;
    await ch?.close().catch(() => {});
    await this.conn?.close().catch(() => {});
  }
}
