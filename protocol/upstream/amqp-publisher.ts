/**
 * An upstream service's side of RabbitMQ ingress (docs/rabbitmq.md), runnable and
 * used by the tests: events go to the events exchange with the session id as
 * routing key, the event id as `message_id`, JSON or msgpack by `content-type`,
 * persistent, through a confirm channel — an event counts as published once the
 * broker confirmed it, and a publisher retries what was not confirmed with the same
 * `message_id` (Shardcast sequences it once).
 *
 * Run:  node dist/protocol/upstream/amqp-publisher.js --session quiz:42 --type question \
 *         --data '{"text":"2+2?"}' [--id q1] [--url amqp://guest:guest@127.0.0.1:5672] \
 *         [--exchange shardcast.events] [--snapshot question] [--to alice,bob]
 */
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { encode } from '../codec.js';

/** One event as an upstream publishes it (the HTTP API's fields; the session is the routing key). */
export interface UpstreamEvent {
  session: string;
  type: string;
  data: unknown;
  /** Event id: sent as `message_id`, the key Shardcast dedupes redeliveries and retries on. */
  id?: string;
  to?: string[];
  snapshot?: string;
  conflate?: boolean;
}

/** A confirmed publisher of events to the events exchange. */
export class EventPublisher {
  private constructor(
    private readonly conn: ChannelModel,
    private readonly ch: ConfirmChannel,
    readonly exchange: string,
  ) {}

  /** Connects and opens a confirm channel. */
  static async connect(url: string, exchange = 'shardcast.events'): Promise<EventPublisher> {
    const conn = await connect(url);
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    return new EventPublisher(conn, ch, exchange);
  }

  /** Publishes without waiting for the confirm (call `confirmed()` for a batch). */
  send(event: UpstreamEvent, format: 'json' | 'msgpack' = 'json'): void {
    const { session, id, ...fields } = event;
    const body = format === 'json' ? Buffer.from(JSON.stringify(fields)) : Buffer.from(encode(fields));
    this.ch.publish(this.exchange, session, body, {
      persistent: true,
      contentType: format === 'json' ? 'application/json' : 'application/msgpack',
      ...(id !== undefined ? { messageId: id } : {}),
    });
  }

  /** Resolves once the broker confirmed everything sent so far; rejects if it refused any (retry those). */
  confirmed(): Promise<void> {
    return this.ch.waitForConfirms();
  }

  /** Publishes one event and waits for its confirm. */
  async publish(event: UpstreamEvent, format: 'json' | 'msgpack' = 'json'): Promise<void> {
    this.send(event, format);
    await this.confirmed();
  }

  /** Publishes raw bytes (tests of what Shardcast refuses). */
  async publishRaw(routingKey: string, body: Buffer, properties: { contentType?: string; messageId?: string; headers?: Record<string, string> } = {}): Promise<void> {
    this.ch.publish(this.exchange, routingKey, body, { persistent: true, ...properties });
    await this.confirmed();
  }

  async close(): Promise<void> {
    await this.ch.close().catch(() => {});
    await this.conn.close().catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: process.env.SHARDCAST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672' },
      exchange: { type: 'string', default: 'shardcast.events' },
      session: { type: 'string' },
      type: { type: 'string' },
      data: { type: 'string', default: 'null' },
      id: { type: 'string' },
      snapshot: { type: 'string' },
      to: { type: 'string' },
    },
  });
  if (values.session === undefined || values.type === undefined) throw new Error('--session and --type are required');
  const publisher = await EventPublisher.connect(values.url, values.exchange);
  try {
    await publisher.publish({
      session: values.session,
      type: values.type,
      data: JSON.parse(values.data) as unknown,
      ...(values.id !== undefined ? { id: values.id } : {}),
      ...(values.snapshot !== undefined ? { snapshot: values.snapshot } : {}),
      ...(values.to !== undefined ? { to: values.to.split(',') } : {}),
    });
    console.log(`confirmed: ${values.type} to ${values.session} on ${values.exchange}`);
  } finally {
    await publisher.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
