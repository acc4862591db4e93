/**
 * Participants' commands out to RabbitMQ: the command relay's sink. Each journal
 * entry becomes one persistent message on the commands exchange (topic, durable),
 * routing key `<namespace>.<type>` (the namespace's prefix without its trailing
 * separator, `default` outside any namespace), `message_id` `<session>/<user>/<cid>`
 * (what an upstream dedupes on: a relay may deliver a batch twice after a crash),
 * headers `x-session`, `x-user`, `x-cid`, and a JSON or msgpack body with the whole
 * stamped command. A batch counts as delivered once RabbitMQ confirmed every message
 * (publisher confirms), and not before: the relay's cursor moves only then.
 *
 * Its own connection (publishing and consuming on one connection would let flow
 * control on one stall the other), with amqplib's recovery (1 s doubling to 32 s,
 * ±20 % jitter); while it is down `deliver` rejects and the relay retries with
 * backoff: commands wait in the journal.
 */
import { connect, type ChannelModel, type ConfirmChannel, type RecoveringChannelModel } from 'amqplib';
import { encode } from '../../protocol/codec.js';
import type { JournalEntry } from '../engine/command-journal.js';
import type { Logger } from '../log.js';
import { reconnectDelay } from '../ingress/amqp-ingress.js';
import type { CommandSink } from './command-relay.js';

/** Settings of the sink. */
export interface AmqpCommandSinkOptions {
  url: string;
  exchange: string;
  format: 'json' | 'msgpack';
  /** The prefix of a session's namespace ('' outside any), for the routing key. */
  namespacePrefixOf(session: string): string;
  instanceId: string;
  log: Logger;
  /** Longest wait for the confirms of one batch. */
  confirmTimeoutMs?: number;
}

/** The routing key of a command: `<namespace>.<type>`. */
export function commandRoutingKey(namespacePrefix: string, type: string): string {
  return `${namespacePrefix.replace(/[:._-]+$/, '') || 'default'}.${type}`;
}

/** The RabbitMQ command sink; `start` connects (in the background), `close` ends it. */
export class AmqpCommandSink implements CommandSink {
  private conn: RecoveringChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  private downSince = 0;
  private everUp = false;
  private closing = false;

  constructor(private readonly opts: AmqpCommandSinkOptions) {}

  /** Starts connecting; commands wait in the journal until it is up. */
  async start(): Promise<void> {
    const { log } = this.opts;
    const conn = await connect(this.opts.url, {
      clientProperties: { connection_name: `shardcast-${this.opts.instanceId}-commands` },
      recovery: {
        waitForConnect: false,
        maxRetries: Infinity,
        calculateDelay: reconnectDelay,
        setup: (model: ChannelModel) => this.setup(model),
      },
    });
    this.conn = conn;
    conn.on('error', () => {});
    conn.on('handler-error', (err: unknown) => log.error({ err }, 'rabbitmq command sink handler failed'));
    conn.on('disconnect', (err: Error) => {
      this.channel = null;
      if (this.closing || !this.everUp || this.downSince > 0) return;
      this.downSince = Date.now();
      log.warn({ err: err.message }, 'rabbitmq unreachable: commands wait in the journal until it is back');
    });
  }

  private async setup(model: ChannelModel): Promise<void> {
    const ch = await model.createConfirmChannel();
    ch.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'rabbitmq command channel error'));
    ch.on('close', () => {
      if (this.channel === ch) this.channel = null;
    });
    await ch.assertExchange(this.opts.exchange, 'topic', { durable: true });
    this.channel = ch;
    if (this.downSince > 0) this.opts.log.info({ downMs: Date.now() - this.downSince }, 'rabbitmq reachable again: relaying commands');
    this.downSince = 0;
    this.everUp = true;
  }

  /** True while commands can be relayed. */
  up(): boolean {
    return this.channel !== null;
  }

  async deliver(entries: JournalEntry[]): Promise<void> {
    const ch = this.channel;
    if (ch === null) throw new Error('rabbitmq command channel is down');
    for (const e of entries) {
      const body = {
        session: e.session,
        user: e.user,
        role: e.role,
        cid: e.cid,
        type: e.type,
        data: e.data,
        receivedAt: e.receivedAt,
        receivedAtUs: e.receivedAtUs,
        lastSeq: e.lastSeq,
        lastSeqAt: e.lastSeqAt,
        lastSeqAtUs: e.lastSeqAtUs,
        conn: e.conn,
        shard: e.shard,
        pos: e.pos,
      };
      ch.publish(this.opts.exchange, commandRoutingKey(this.opts.namespacePrefixOf(e.session), e.type), this.opts.format === 'json' ? Buffer.from(JSON.stringify(body)) : Buffer.from(encode(body)), {
        persistent: true,
        contentType: this.opts.format === 'json' ? 'application/json' : 'application/msgpack',
        messageId: `${e.session}/${e.user}/${e.cid}`,
        timestamp: Math.floor(e.receivedAt / 1000),
        headers: { 'x-session': e.session, 'x-user': e.user, 'x-cid': e.cid },
      });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ch.waitForConfirms(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('rabbitmq did not confirm the commands in time')), this.opts.confirmTimeoutMs ?? 10_000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.conn?.close().catch(() => {});
  }
}
