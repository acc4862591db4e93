/**
 * Event ingress from RabbitMQ: the primary thread consumes the partition queues of
 * the events exchange (amqp-topology.ts) and hands each message's event to the
 * engine, in queue order. The contract with upstreams is docs/rabbitmq.md.
 *
 * Ack discipline. Manual acks only, each after the broker stored the event (the
 * Redis script resolved, or the memory broker took it): an acknowledged event is
 * never lost. A redelivered message whose `message_id` was already sequenced is
 * answered by the broker's dedupe and acked, so clients get it once. A message that
 * cannot be decoded or validated, or that the engine refuses for good (a limit), is
 * published to the dead-letter exchange with the reason in the `x-shardcast-error`
 * header, then acked: it never blocks its partition. When the engine is unavailable
 * (Redis down) nothing is acked nor returned: the deliveries are kept and retried
 * in order with backoff, so an outage does not spend their delivery limit.
 *
 * Order. Each partition is processed by one loop, batch after batch (one pipelined
 * round trip per batch), in delivery order; with one active consumer per queue
 * across all instances, a session's events are sequenced in the order they were
 * published.
 *
 * Resilience. amqplib's recovery reconnects with backoff (1 s doubling to 32 s,
 * ±20 % jitter) and `setup` redeclares the topology and restores channels, prefetch
 * and consumers. Deliveries of a closed channel are dropped unacked (the broker
 * redelivers them); readiness is off while the connection or a consumer is down;
 * each outage is logged once when it starts and once when it ends.
 *
 * Drain. `stop` takes no new batch, lets the batches in flight finish (until the
 * deadline), then closes the partition channels: RabbitMQ returns every delivery
 * still unacked to the head of its queue, in order, and hands the partition to the
 * next consumer. (Cancelling the consumers first would not do: RabbitMQ switches to
 * the next consumer at the cancel and gives it later messages before the returned
 * ones.) The primary does this before any client socket closes.
 *
 * Errors that are not outages. An event the broker refuses for good (a limit, an
 * event that cannot be encoded) is dead-lettered at once; any other failure while
 * the engine reports itself healthy is retried MAX_ATTEMPTS times, then
 * dead-lettered with its error, so no single message blocks its partition forever.
 */
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type RecoveringChannelModel } from 'amqplib';
import { PublishRefused, type BrokerHealth, type PublishRequest, type PublishResult } from '../engine/broker.js';
import type { Logger } from '../log.js';
import { eventOfMessage } from './amqp-message.js';
import type { PublishLimits } from './publish-request.js';
import { declareTopology, topologyOf, type Topology } from './amqp-topology.js';

/** Where the ingress hands events: the primary's sequencing path. */
export interface EventSink {
  /** Sequences the events in call order; one outcome per event, never rejects. */
  publish(events: PublishRequest[]): Promise<Array<PromiseSettledResult<PublishResult>>>;
  /** Whether the engine is reachable: failures while it is are the message's fault, not an outage. */
  healthy(): boolean;
}

/** Settings of the ingress (config `amqp*`). */
export interface AmqpIngressOptions {
  url: string;
  exchange: string;
  partitions: number;
  prefetch: number;
  deliveryLimit: number;
  /** Limits of the events taken (config maxPublishValues): a message over them is dead-lettered. */
  limits: PublishLimits;
  /** Random id of this process (the connection's name in the management UI). */
  instanceId: string;
  log: Logger;
  sink: EventSink;
  /**
   * Test hooks only: a first delivery of a message with the header
   * `x-shardcast-test: exit-after-store` kills the process once its event is stored
   * and before it is acked, the way a crash between the two would.
   */
  testExitAfterStore?: boolean;
}

interface Delivery {
  msg: ConsumeMessage;
  ch: Channel;
  /** Failed store attempts while the engine said it was healthy. */
  attempts: number;
}

interface Partition {
  readonly queue: string;
  channel: Channel | null;
  tag: string | null;
  pending: Delivery[];
  running: Promise<void> | null;
  /** Its events cannot be stored right now (logged once per outage). */
  retrying: boolean;
}

/** Most deliveries stored in one pipelined round trip. */
const MAX_BATCH = 500;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;
/** Store failures of one message, with the engine healthy, before it is dead-lettered. */
const MAX_ATTEMPTS = 10;
/** Delay before a channel RabbitMQ closed (the connection staying up) is opened again. */
const CHANNEL_RESTORE_MS = 1000;

/** Reconnect delay of attempt n (from 1) of a RabbitMQ connection: 1 s doubling to a 32 s cap, ±20 % jitter. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(32_000, 1000 * 2 ** Math.min(attempt - 1, 5));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** The URL with any password replaced, for messages and logs. */
export function redactedAmqp(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:…@');
}

/** Consumes the events exchange's partitions; see the header. */
export class AmqpIngress {
  private readonly topology: Topology;
  private readonly partitions: Partition[];
  private conn: RecoveringChannelModel | null = null;
  /** The current connection's channel factory (replaced at every reconnect). */
  private model: ChannelModel | null = null;
  private deadLetters: ConfirmChannel | null = null;
  private connected = false;
  private everConnected = false;
  private downSince = 0;
  private setupError: string | undefined;
  private stopping = false;
  private stopped = false;
  /** What happened to deliveries since start (admin API metrics). */
  readonly counters = { deliveries: 0, redeliveries: 0, acks: 0, deadLettered: 0, returned: 0 };

  constructor(private readonly opts: AmqpIngressOptions) {
    this.topology = topologyOf(opts.exchange, opts.partitions, opts.deliveryLimit);
    this.partitions = this.topology.partitions.map((queue) => ({ queue, channel: null, tag: null, pending: [], running: null, retrying: false }));
  }

  /** Connects, declares the topology and starts consuming; rejects after `timeoutMs` naming SHARDCAST_AMQP_URL. */
  async start(timeoutMs: number): Promise<void> {
    const { log } = this.opts;
    const conn = await connect(this.opts.url, {
      clientProperties: { connection_name: `shardcast-${this.opts.instanceId}-ingress` },
      recovery: {
        waitForConnect: false,
        maxRetries: Infinity,
        calculateDelay: reconnectDelay,
        setup: (model: ChannelModel) => this.setup(model),
      },
    });
    this.conn = conn;
    let lastError = '';
    conn.on('connect', () => {
      this.connected = true;
      if (this.downSince > 0) log.info({ downMs: Date.now() - this.downSince }, 'rabbitmq reachable again: consuming');
      this.downSince = 0;
      this.everConnected = true;
    });
    conn.on('disconnect', (err: Error) => {
      this.connected = false;
      if (this.stopping || !this.everConnected || this.downSince > 0) return;
      this.downSince = Date.now();
      log.warn({ err: err.message }, 'rabbitmq unreachable: events wait in their queues until it is back');
    });
    conn.on('connect-failed', (err: Error) => (lastError = err.message));
    conn.on('error', (err: Error) => (lastError = err.message));
    conn.on('handler-error', (err: unknown) => log.error({ err }, 'rabbitmq event handler failed'));
    // Ready once connected with every consumer running. A topology refused (406, a
    // missing plugin, fewer partitions) is a configuration error: said at once.
    const started = Date.now();
    const url = redactedAmqp(this.opts.url);
    while (!this.health().ok) {
      let failure: string | undefined;
      if (this.setupError !== undefined) failure = `rabbitmq at ${url}: ${this.setupError}`;
      else if (Date.now() - started > timeoutMs) failure = `rabbitmq at ${url} did not answer within ${timeoutMs} ms (SHARDCAST_AMQP_URL)${lastError ? `: ${lastError}` : ''}`;
      if (failure !== undefined) {
        await conn.close().catch(() => {});
        throw new Error(failure);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Healthy while connected and every partition has its consumer. */
  health(): BrokerHealth {
    if (this.stopped) return { ok: false, detail: 'rabbitmq ingress stopped' };
    if (this.setupError !== undefined) return { ok: false, detail: `rabbitmq: ${this.setupError}` };
    if (!this.connected) return { ok: false, detail: 'rabbitmq: not connected' };
    const idle = this.partitions.filter((p) => p.tag === null).length;
    if (idle > 0) return { ok: false, detail: `rabbitmq: ${idle} partition consumer(s) not running` };
    if (this.deadLetters === null) return { ok: false, detail: 'rabbitmq: the dead-letter channel is down' };
    return { ok: true };
  }

  /** Stops consuming, finishes or returns every delivery, closes the connection (see the header). */
  async stop(deadline: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const running = this.partitions.map((p) => p.running).filter((r): r is Promise<void> => r !== null);
    await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    this.stopped = true;
    let returned = 0;
    for (const p of this.partitions) {
      returned += p.pending.length;
      p.pending = [];
    }
    // Closing a channel returns its unacked deliveries to the head of their queue, in
    // order; only then does the next consumer become active (see the header).
    await Promise.all(
      this.partitions.map(async (p) => {
        const ch = p.channel;
        p.channel = null;
        p.tag = null;
        await ch?.close().catch(() => {});
      }),
    );
    this.opts.log.info({ returned }, 'rabbitmq ingress stopped; unacked deliveries returned to their queues');
    await this.conn?.close().catch(() => {});
  }

  /** After every (re)connect: topology, the dead-letter channel, one consumer channel per partition. */
  private async setup(model: ChannelModel): Promise<void> {
    const { log } = this.opts;
    this.model = model;
    try {
      await this.declare(model);
      this.setupError = undefined;
    } catch (err) {
      this.setupError = (err as Error).message;
      log.error({ err }, this.setupError);
      throw err;
    }
    if (this.stopping) return;
    await this.openDeadLetters(model);
    for (const p of this.partitions) await this.openPartition(model, p);
  }

  /** Declares the topology; refuses, with what to change, a deployment that shrank its partitions. */
  private async declare(model: ChannelModel): Promise<void> {
    const t = this.topology;
    const admin = await model.createChannel();
    admin.on('error', () => {});
    try {
      await declareTopology(admin, t);
    } catch (err) {
      const message = (err as Error).message;
      const hint = /PRECONDITION_FAILED/.test(message)
        ? 'the exchange or queues exist with other arguments (another SHARDCAST_AMQP_DELIVERY_LIMIT, or names taken by something else)'
        : /x-consistent-hash|invalid exchange type|COMMAND_INVALID/.test(message)
          ? 'the exchange type x-consistent-hash is unknown: enable the plugin (rabbitmq-plugins enable rabbitmq_consistent_hash_exchange)'
          : 'the topology could not be declared';
      throw new Error(`declaring ${t.exchange} failed: ${hint}: ${message}`);
    }
    await admin.close().catch(() => {});
    // A partition queue past the count means the count was lowered: its events would
    // wait there unread while every instance looked ready.
    const probe = await model.createChannel();
    probe.on('error', () => {});
    const extra = `${t.exchange}.p${t.partitions.length}`;
    const found = await probe.checkQueue(extra).then(
      (q) => q,
      () => null,
    );
    await probe.close().catch(() => {});
    if (found !== null) {
      throw new Error(
        `queue ${extra} exists (${found.messageCount} messages): ${t.exchange} has more than SHARDCAST_AMQP_PARTITIONS=${t.partitions.length} partitions; set it back, or stop publishing, let the queues drain and delete the extra ones`,
      );
    }
  }

  private async openDeadLetters(model: ChannelModel): Promise<void> {
    const dead = await model.createConfirmChannel();
    dead.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'rabbitmq dead-letter channel error'));
    dead.on('close', () => {
      if (this.deadLetters !== dead) return;
      this.deadLetters = null;
      this.restoreLater(model, () => this.openDeadLetters(model));
    });
    this.deadLetters = dead;
  }

  private async openPartition(model: ChannelModel, p: Partition): Promise<void> {
    const ch = await model.createChannel();
    ch.on('error', (err: Error) => this.opts.log.warn({ err: err.message, queue: p.queue }, 'rabbitmq channel error'));
    ch.on('close', () => {
      if (p.channel !== ch) return;
      p.channel = null;
      p.tag = null;
      // Unacked deliveries of a closed channel are the broker's again.
      p.pending = p.pending.filter((d) => d.ch !== ch);
      // Redeclared first: the channel may have gone with its queue (deleted by hand).
      this.restoreLater(model, async () => {
        await this.declare(model);
        await this.openPartition(model, p);
      });
    });
    await ch.prefetch(this.opts.prefetch);
    p.channel = ch;
    const { consumerTag } = await ch.consume(p.queue, (msg) => this.onDelivery(p, ch, msg), { noAck: false });
    p.tag = consumerTag;
  }

  /**
   * Opens a channel RabbitMQ closed again, while its connection lives (a channel
   * error does not take the connection down, so recovery would never restore it).
   */
  private restoreLater(model: ChannelModel, open: () => Promise<void>): void {
    setTimeout(() => {
      if (this.stopping || this.model !== model || !this.connected) return;
      open().then(
        () => this.opts.log.info('rabbitmq channel reopened'),
        (err: unknown) => {
          this.opts.log.warn({ err }, 'reopening a rabbitmq channel failed; retried');
          this.restoreLater(model, open);
        },
      );
    }, CHANNEL_RESTORE_MS).unref();
  }

  private onDelivery(p: Partition, ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (the queue was deleted): not ready until a reconnect restores it.
      this.opts.log.error({ queue: p.queue }, 'rabbitmq cancelled the consumer of a partition (queue deleted?)');
      if (p.channel === ch) {
        p.tag = null;
        // A new channel consumes again once the queue is back (the topology is redeclared on reconnect).
        void ch.close().catch(() => {});
      }
      return;
    }
    if (this.stopped || p.channel !== ch) return;
    this.counters.deliveries++;
    if (msg.fields.redelivered) this.counters.redeliveries++;
    p.pending.push({ msg, ch, attempts: 0 });
    this.kick(p);
  }

  /** Starts the partition's loop unless it runs. */
  private kick(p: Partition): void {
    if (p.running !== null || this.stopping) return;
    p.running = this.run(p).finally(() => {
      p.running = null;
      if (p.pending.length > 0) this.kick(p);
    });
  }

  /** Processes a partition's deliveries, batch after batch, in order. */
  private async run(p: Partition): Promise<void> {
    let backoff = RETRY_MIN_MS;
    while (p.pending.length > 0 && !this.stopping) {
      const batch = p.pending.splice(0, MAX_BATCH).filter((d) => d.ch === p.channel);
      if (batch.length === 0) continue;
      const parsed = batch.map((d) =>
        eventOfMessage({
          routingKey: d.msg.fields.routingKey,
          contentType: d.msg.properties.contentType as string | undefined,
          messageId: d.msg.properties.messageId as string | undefined,
          content: d.msg.content,
        }, this.opts.limits),
      );
      const events: PublishRequest[] = [];
      for (const r of parsed) if (r.ok) events.push(r.event);
      const outcomes = events.length > 0 ? await this.opts.sink.publish(events) : [];
      if (this.opts.testExitAfterStore && batch.some((d) => !d.msg.fields.redelivered && (d.msg.properties.headers as Record<string, unknown> | undefined)?.['x-shardcast-test'] === 'exit-after-store')) {
        process.kill(process.pid, 'SIGKILL');
      }
      let k = 0;
      let retryFrom = -1;
      for (let i = 0; i < batch.length; i++) {
        const r = parsed[i];
        if (!r.ok) {
          await this.deadLetter(p, batch[i], r.reason);
          continue;
        }
        const outcome = outcomes[k++];
        if (outcome.status === 'fulfilled') {
          this.ack(p, batch[i]);
        } else if (outcome.reason instanceof PublishRefused) {
          await this.deadLetter(p, batch[i], outcome.reason.message);
        } else if (this.opts.sink.healthy() && ++batch[i].attempts >= MAX_ATTEMPTS) {
          const message = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
          await this.deadLetter(p, batch[i], `not stored after ${MAX_ATTEMPTS} attempts with the engine up: ${message}`);
        } else {
          retryFrom = i;
          if (!p.retrying) this.opts.log.warn({ err: outcome.reason, queue: p.queue }, 'events could not be stored: kept unacked and retried in order');
          p.retrying = true;
          break;
        }
      }
      if (retryFrom < 0) {
        if (p.retrying) this.opts.log.info({ queue: p.queue }, 'events are stored again');
        p.retrying = false;
        backoff = RETRY_MIN_MS;
        continue;
      }
      // Kept in order ahead of what arrived meanwhile; events stored after the failed
      // one are stored again on retry, which their message_id makes a no-op.
      p.pending.unshift(...batch.slice(retryFrom));
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(RETRY_MAX_MS, backoff * 2);
    }
  }

  private ack(p: Partition, d: Delivery): void {
    // A delivery of a closed channel cannot be acked (and must not be on another).
    if (this.stopped || p.channel !== d.ch) return;
    d.ch.ack(d.msg);
    this.counters.acks++;
  }

  /** Publishes the message to the dead-letter exchange with `reason`, then acks it; on failure it is returned. */
  private async deadLetter(p: Partition, d: Delivery, reason: string): Promise<void> {
    const { msg } = d;
    this.opts.log.warn(
      { queue: p.queue, routingKey: msg.fields.routingKey, messageId: msg.properties.messageId as string | undefined, reason },
      'event refused: sent to the dead-letter queue',
    );
    const dead = this.deadLetters;
    try {
      if (dead === null) throw new Error('the dead-letter channel is down');
      dead.publish(this.topology.deadLetterExchange, msg.fields.routingKey, msg.content, {
        persistent: true,
        contentType: msg.properties.contentType as string | undefined,
        messageId: msg.properties.messageId as string | undefined,
        headers: { ...(msg.properties.headers ?? {}), 'x-shardcast-error': reason, 'x-shardcast-queue': p.queue },
      });
      await dead.waitForConfirms();
      this.counters.deadLettered++;
      this.ack(p, d);
    } catch (err) {
      this.opts.log.error({ err, queue: p.queue }, 'dead-lettering failed: the message goes back to its queue');
      if (!this.stopped && p.channel === d.ch) {
        d.ch.nack(msg, false, true);
        this.counters.returned++;
      }
    }
  }
}
