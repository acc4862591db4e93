/**
 * The publishing side for an upstream service: events to Shardcast's events exchange
 * through `EventPublisher` (protocol/upstream/amqp-publisher.ts), in the order they
 * were given, each confirmed by RabbitMQ, surviving broker outages.
 *
 * Every event must carry an `id` (sent as `message_id`): after a failed confirm or a
 * lost connection the sink reconnects (100 ms doubling to 5 s) and sends everything
 * not confirmed again, in order, with the same ids, and Shardcast sequences each
 * once. So `publish()` resolves once its events are confirmed, and a session's events
 * get seqs in `publish()` call order.
 */
import type { Logger } from 'pino';
import { EventPublisher, type UpstreamEvent } from '../../protocol/upstream/amqp-publisher.js';

/** An event the sink publishes: an `id` is required (retries are deduped on it). */
export type SinkEvent = UpstreamEvent & { id: string };

interface Pending {
  event: SinkEvent;
  done(): void;
  fail(err: Error): void;
}

/** Ordered, confirmed, retrying publisher of events. */
export class EventSink {
  private publisher: EventPublisher | null = null;
  private queue: Pending[] = [];
  private pumping: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly exchange: string,
    private readonly log: Logger,
  ) {}

  /** Publishes events in order; resolves once RabbitMQ confirmed all of them. */
  publish(...events: SinkEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the event sink is closed'));
    const confirmed = Promise.all(events.map((event) => new Promise<void>((done, fail) => this.queue.push({ event, done, fail }))));
    this.pumping ??= this.pump().finally(() => (this.pumping = null));
    return confirmed.then(() => undefined);
  }

  private async pump(): Promise<void> {
    for (let attempt = 0; this.queue.length > 0; ) {
      const batch = this.queue.slice(0, 200);
      try {
        this.publisher ??= await EventPublisher.connect(this.url, this.exchange);
        for (const p of batch) this.publisher.send(p.event);
        await this.publisher.confirmed();
        this.queue.splice(0, batch.length);
        for (const p of batch) p.done();
        attempt = 0;
      } catch (err) {
        if (attempt === 0) this.log.warn({ err: (err as Error).message }, 'publishing events failed: retrying with the same ids');
        await this.publisher?.close();
        this.publisher = null;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt++)));
        if (this.closed && attempt > 3) {
          this.log.error({ unpublished: this.queue.length }, 'closing with events not confirmed');
          for (const p of this.queue.splice(0)) p.fail(new Error('the event sink closed before RabbitMQ confirmed the event'));
          return;
        }
      }
    }
  }

  /** Waits for what is queued (a few retries at most), then closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pumping;
    await this.publisher?.close();
    this.publisher = null;
  }
}
