/**
 * The instance's Prometheus metrics (prom-client), served at /metrics on the admin
 * listener (docs/metrics.md lists every one). Shards keep plain number counters on
 * their hot path (shard/shard-counters.ts) and hand a snapshot over on each scrape;
 * the primary sets them here, next to its own figures (session streams, publishes,
 * admissions, the Redis round trip), then renders the text format. Owned by the
 * primary thread; nothing here runs between scrapes except the publish histogram.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { DELIVERY_LATENCY_BUCKETS_S, type LatencySnapshot } from '../shard/delivery-latency.js';
import type { PublishResult } from '../engine/broker.js';
import type { ShardStats } from './shard-query.js';
import { SHARD_DROP_REASONS, STREAM_DROP_REASONS, type DropCounts, type StreamDropReason } from './frame-drops.js';

/** Figures of the primary thread at scrape time. */
export interface InstanceFigures {
  instance: string;
  version: string;
  engine: string;
  ready: boolean;
  draining: boolean;
  liveShards: number;
  admittedConnections: number;
  streamedSessions: number;
  streams: { duplicates: number; stale: number; gaps: number; healedFrames: number; resyncs: number };
  /** Label of each namespace by index (config/namespaces.ts namespaceLabels): drop counts are arrays by that index. */
  namespaces: readonly string[];
  /** Frames the session streams dropped, by reason and namespace index. */
  streamDrops: DropCounts<StreamDropReason>;
  /** Seconds one Redis PING took, when the Redis engine runs (undefined: no Redis, or it failed). */
  redisPingSeconds?: number;
  /** RabbitMQ ingress counters, when SHARDCAST_AMQP_URL is set. */
  amqp?: { deliveries: number; redeliveries: number; acks: number; deadLettered: number; returned: number };
  /** The command relay's position in the journal (last command RabbitMQ accepted), while this instance relays. */
  relayPosition?: number;
  /** Highest position in the command journal, when it answered in time at this scrape. */
  journalHead?: number;
}

const SHARD = ['shard'] as const;

/** Sampling period of prom-client's event-loop monitor on the primary; its `nodejs_eventloop_lag_*` figures include it. */
export const PRIMARY_LOOP_MONITOR_MS = 100;

/** The metrics of one instance; see the header comment. */
export class InstanceMetrics {
  readonly registry = new Registry();
  private readonly r = [this.registry];

  private readonly info = new Gauge({ name: 'shardcast_info', help: 'Always 1; labels say which instance, version and engine', labelNames: ['instance_id', 'version', 'engine'] as const, registers: this.r });
  private readonly ready = new Gauge({ name: 'shardcast_ready', help: '1 while the instance is ready for traffic (/readyz answers 200)', registers: this.r });
  private readonly draining = new Gauge({ name: 'shardcast_draining', help: '1 once the instance drains (SIGTERM or admin drain)', registers: this.r });
  private readonly liveShards = new Gauge({ name: 'shardcast_shards', help: 'Shard threads running', registers: this.r });
  private readonly admitted = new Gauge({ name: 'shardcast_admitted_connections', help: 'Connections counted against the instance caps', registers: this.r });
  private readonly streamed = new Gauge({ name: 'shardcast_streamed_sessions', help: 'Sessions this instance streams from the broker (with local subscribers or lingering)', registers: this.r });

  private readonly connections = new Gauge({ name: 'shardcast_connections', help: 'Open WebSocket connections, by shard', labelNames: SHARD, registers: this.r });
  private readonly sessions = new Gauge({ name: 'shardcast_sessions', help: 'Sessions with members, by shard', labelNames: SHARD, registers: this.r });
  private readonly buffered = new Gauge({ name: 'shardcast_buffered_bytes', help: 'Bytes waiting to be written to sockets (uWS buffers plus lag queues), by shard', labelNames: SHARD, registers: this.r });
  private readonly lagging = new Gauge({ name: 'shardcast_lagging_sockets', help: 'Connections on the lagging path (their own queue), by shard', labelNames: SHARD, registers: this.r });
  private readonly loopDelay = new Gauge({ name: 'shardcast_event_loop_delay_p99_seconds', help: "99th percentile of the shard thread's event-loop delay since the previous scrape", labelNames: SHARD, registers: this.r });
  private readonly heap = new Gauge({ name: 'shardcast_shard_heap_used_bytes', help: "V8 heap used by the shard thread's isolate", labelNames: SHARD, registers: this.r });

  private readonly frames = new Counter({ name: 'shardcast_frames_delivered_total', help: 'Live frames handed to sockets (one per recipient), by shard', labelNames: SHARD, registers: this.r });
  private readonly bytes = new Counter({ name: 'shardcast_bytes_delivered_total', help: 'Bytes of live frames handed to sockets, by shard', labelNames: SHARD, registers: this.r });
  private readonly joins = new Counter({ name: 'shardcast_joins_total', help: 'Session joins started, by shard', labelNames: SHARD, registers: this.r });
  private readonly resumes = new Counter({ name: 'shardcast_resumes_total', help: 'Joins from a position: outcome="recovered" (missed events replayed) or "not_recovered" (snapshot instead: a history miss)', labelNames: ['shard', 'outcome'] as const, registers: this.r });
  private readonly disconnects = new Counter({ name: 'shardcast_disconnects_total', help: 'Connections the server closed, by shard and reason (slow_consumer 4001, token_expired 4004, idle 1000, kicked 4505)', labelNames: ['shard', 'reason'] as const, registers: this.r });
  private readonly lagStarted = new Counter({ name: 'shardcast_lag_started_total', help: 'Times a connection moved from its topics to its own lag queue, by shard', labelNames: SHARD, registers: this.r });
  private readonly conflated = new Counter({ name: 'shardcast_conflated_frames_total', help: "Queued frames replaced by a newer frame of the same snapshot key (lagging clients), by shard and the session's namespace", labelNames: ['shard', 'namespace'] as const, registers: this.r });
  private readonly duplicatesDropped = new Counter({ name: 'shardcast_shard_duplicate_frames_dropped_total', help: "Frames a shard dropped as already delivered (a bug guard; should stay 0), by shard and the session's namespace", labelNames: ['shard', 'namespace'] as const, registers: this.r });
  private readonly framesDropped = new Counter({ name: 'shardcast_frames_dropped_total', help: "Frames dropped, conflated or discarded before reaching a client, by reason and the session's namespace (docs/metrics.md lists the reasons)", labelNames: ['reason', 'namespace'] as const, registers: this.r });

  private readonly stream = new Counter({ name: 'shardcast_stream_frames_total', help: "Session-stream events on the primary, by kind: duplicate and stale (dropped), gap (detected), healed (frames read back from history to fill a gap), resync (history could not fill it)", labelNames: ['kind'] as const, registers: this.r });

  private readonly publishLatency = new Histogram({
    name: 'shardcast_publish_latency_seconds',
    help: 'Time to sequence a batch of published events (HTTP, client pub, RabbitMQ), from the primary taking it to the broker answering',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: this.r,
  });
  private readonly published = new Counter({ name: 'shardcast_published_events_total', help: 'Events handed to the broker, by outcome: sequenced, duplicate (same id again) or failed', labelNames: ['outcome'] as const, registers: this.r });
  private readonly clientErrors = new Counter({ name: 'shardcast_client_errors_total', help: 'error frames sent to clients for refused requests, by error code (106 = rate limited; protocol/SPEC.md)', labelNames: ['shard', 'code'] as const, registers: this.r });
  private readonly clientCloses = new Counter({ name: 'shardcast_client_closes_total', help: 'Connections closed for what the client did, by close code (4500 protocol error, 4503 frame too big, 4002 rate limited, 4003 connection limit)', labelNames: ['shard', 'code'] as const, registers: this.r });
  private readonly upgradesRefused = new Counter({ name: 'shardcast_connections_refused_total', help: 'Connections refused at the handshake, by close code (4501 authentication failed, 4502 origin not allowed, 4504 unsupported version, 1001 draining)', labelNames: ['shard', 'code'] as const, registers: this.r });
  /** Summed over the shards at each scrape (their histograms have the same buckets). */
  private deliveryLatency: LatencySnapshot = { counts: [], sumS: 0, count: 0 };
  private readonly amqp = new Counter({ name: 'shardcast_amqp_deliveries_total', help: 'RabbitMQ ingress deliveries by outcome: received, redelivered (flagged by RabbitMQ), acked (settled: stored, or dead-lettered), dead_lettered (refused), returned (nacked back after a failed dead-lettering)', labelNames: ['outcome'] as const, registers: this.r });
  private readonly journalHead = new Gauge({ name: 'shardcast_command_journal_head_position', help: 'Highest position in the command journal (last command recorded), read at scrape; absent when the journal did not answer in time', registers: this.r });
  private readonly journalBacklog = new Gauge({ name: 'shardcast_command_journal_backlog', help: 'Journal positions recorded but not yet relayed to RabbitMQ (head position minus relay position), while this instance relays', registers: this.r });
  private readonly relayPosition = new Gauge({ name: 'shardcast_command_relay_position', help: 'Journal position of the last command the relay delivered to RabbitMQ (while this instance relays); its rate is the relay throughput', registers: this.r });
  private readonly redisPing = new Gauge({ name: 'shardcast_redis_round_trip_seconds', help: 'Round trip of one Redis PING, measured at scrape (Redis engine only)', registers: this.r });

  constructor() {
    // Process figures under their conventional names (process_*, nodejs_*). The
    // event-loop lag monitor samples every 100 ms, not prom-client's 10 ms: each
    // sample wakes the primary's loop (admin-queries.ts says what it cost).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: PRIMARY_LOOP_MONITOR_MS });
    // The shards' histograms arrive as bucket counts: rendered as they are (prom-client's
    // Histogram only takes single observations).
    const name = 'shardcast_delivery_latency_seconds';
    const latency = {
      name,
      help: 'Time from an event being sequenced (the ts in its frame) to the shard handing it to its sockets, once per frame and shard',
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const { counts, sumS, count } = this.deliveryLatency;
        const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
        let cumulative = 0;
        DELIVERY_LATENCY_BUCKETS_S.forEach((le, i) => {
          cumulative += counts[i] ?? 0;
          values.push({ metricName: `${name}_bucket`, labels: { le }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
        values.push({ metricName: `${name}_sum`, labels: {}, value: sumS });
        values.push({ metricName: `${name}_count`, labels: {}, value: count });
        return { name, help: latency.help, type: 'histogram', aggregator: 'sum', values };
      },
      reset: () => {},
    };
    this.registry.registerMetric(latency as unknown as Metric);
  }

  /** Records one sequenced batch: its latency and each event's outcome. */
  observePublish(seconds: number, outcomes: ReadonlyArray<PromiseSettledResult<PublishResult>>): void {
    this.publishLatency.observe(seconds);
    for (const o of outcomes) this.published.inc({ outcome: o.status === 'rejected' ? 'failed' : o.value.duplicate ? 'duplicate' : 'sequenced' });
  }

  /** Sets every figure from the shards' answers and the primary's, then renders the text format. */
  async render(figures: InstanceFigures, shards: readonly ShardStats[]): Promise<string> {
    this.info.reset();
    this.info.set({ instance_id: figures.instance, version: figures.version, engine: figures.engine }, 1);
    this.ready.set(figures.ready ? 1 : 0);
    this.draining.set(figures.draining ? 1 : 0);
    this.liveShards.set(figures.liveShards);
    this.admitted.set(figures.admittedConnections);
    this.streamed.set(figures.streamedSessions);
    if (figures.redisPingSeconds !== undefined) this.redisPing.set(figures.redisPingSeconds);
    this.amqp.reset();
    if (figures.amqp !== undefined) {
      const a = figures.amqp;
      this.amqp.inc({ outcome: 'received' }, a.deliveries);
      this.amqp.inc({ outcome: 'redelivered' }, a.redeliveries);
      this.amqp.inc({ outcome: 'acked' }, a.acks);
      this.amqp.inc({ outcome: 'dead_lettered' }, a.deadLettered);
      this.amqp.inc({ outcome: 'returned' }, a.returned);
    }
    this.relayPosition.reset();
    if (figures.relayPosition !== undefined) this.relayPosition.set(figures.relayPosition);
    this.journalHead.reset();
    if (figures.journalHead !== undefined) this.journalHead.set(figures.journalHead);
    this.journalBacklog.reset();
    if (figures.journalHead !== undefined && figures.relayPosition !== undefined) {
      // Retention deletes only relayed rows, so the head is at or past the relay's
      // position; 0 when the journal is empty (everything relayed and pruned).
      this.journalBacklog.set(Math.max(0, figures.journalHead - figures.relayPosition));
    }

    // Shards that are gone (drained) leave no stale series behind.
    for (const m of [this.connections, this.sessions, this.buffered, this.lagging, this.loopDelay, this.heap]) m.reset();
    for (const m of [this.frames, this.bytes, this.joins, this.resumes, this.disconnects, this.lagStarted, this.conflated, this.duplicatesDropped, this.framesDropped, this.stream, this.clientErrors, this.clientCloses, this.upgradesRefused]) m.reset();
    const namespaces = figures.namespaces;
    // Every (reason, namespace) pair gets a series, zero or not, so rates and alerts
    // see 0 rather than no data; the label sets are bounded by the config.
    for (const reason of [...SHARD_DROP_REASONS, ...STREAM_DROP_REASONS]) for (const namespace of namespaces) this.framesDropped.inc({ reason, namespace }, 0);
    const label = (ns: number) => namespaces[ns] ?? `#${ns}`;
    for (const reason of STREAM_DROP_REASONS) figures.streamDrops[reason]?.forEach((n, ns) => this.framesDropped.inc({ reason, namespace: label(ns) }, n));
    const latency: LatencySnapshot = { counts: new Array<number>(DELIVERY_LATENCY_BUCKETS_S.length + 1).fill(0), sumS: 0, count: 0 };
    for (const s of shards) {
      const shard = String(s.shard);
      const c = s.counters;
      this.connections.set({ shard }, s.connections);
      this.sessions.set({ shard }, s.sessions);
      this.buffered.set({ shard }, s.bufferedBytes);
      this.lagging.set({ shard }, s.laggingSockets);
      this.loopDelay.set({ shard }, s.eventLoopDelayP99Ms / 1000);
      this.heap.set({ shard }, s.heapUsedBytes);
      this.frames.inc({ shard }, c.framesDelivered);
      this.bytes.inc({ shard }, c.bytesDelivered);
      this.joins.inc({ shard }, c.joins);
      this.resumes.inc({ shard, outcome: 'recovered' }, c.resumeRecovered);
      this.resumes.inc({ shard, outcome: 'not_recovered' }, c.resumeNotRecovered);
      this.disconnects.inc({ shard, reason: 'slow_consumer' }, c.slowConsumerCuts);
      this.disconnects.inc({ shard, reason: 'token_expired' }, c.tokenExpired);
      this.disconnects.inc({ shard, reason: 'idle' }, c.idleClosed);
      this.disconnects.inc({ shard, reason: 'kicked' }, c.kicked);
      this.lagStarted.inc({ shard }, c.lagStarted);
      namespaces.forEach((namespace, ns) => {
        this.conflated.inc({ shard, namespace }, c.drops.conflated?.[ns] ?? 0);
        this.duplicatesDropped.inc({ shard, namespace }, c.drops.shard_duplicate?.[ns] ?? 0);
      });
      for (const reason of SHARD_DROP_REASONS) c.drops[reason]?.forEach((n, ns) => this.framesDropped.inc({ reason, namespace: label(ns) }, n));
      for (const [code, n] of Object.entries(c.errorReplies)) this.clientErrors.inc({ shard, code }, n);
      for (const [code, n] of Object.entries(c.clientCloses)) this.clientCloses.inc({ shard, code }, n);
      for (const [code, n] of Object.entries(c.upgradesRefused)) this.upgradesRefused.inc({ shard, code }, n);
      c.deliveryLatency.counts.forEach((n, i) => (latency.counts[i] += n));
      latency.sumS += c.deliveryLatency.sumS;
      latency.count += c.deliveryLatency.count;
    }
    this.deliveryLatency = latency;
    const st = figures.streams;
    this.stream.inc({ kind: 'duplicate' }, st.duplicates);
    this.stream.inc({ kind: 'stale' }, st.stale);
    this.stream.inc({ kind: 'gap' }, st.gaps);
    this.stream.inc({ kind: 'healed' }, st.healedFrames);
    this.stream.inc({ kind: 'resync' }, st.resyncs);
    return this.registry.metrics();
  }

  /** The text format's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
