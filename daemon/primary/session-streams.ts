/**
 * Stream continuity, owned in one place. For every session this instance streams
 * (some shard holds a subscriber, or did within the linger), the primary thread
 * keeps a SessionStream: the session's epoch and the last seq it forwarded to the
 * shards. Everything the broker delivers passes through it, and shards receive a
 * session's frames only from it, so they get every seq once, in order, under one
 * epoch — or an explicit resync, never a silent gap.
 *
 * The algorithm, per session:
 * 1. Open: subscribe on the broker, then read the position (epoch, head): frames up
 *    to the head are history, later ones arrive live. Messages that arrive before
 *    the position is known wait in `pending`.
 * 2. A live message of the current epoch with seq ≤ last is a duplicate: dropped.
 *    seq = last + 1 is forwarded. seq > last + 1 (the broker lost messages) or
 *    another epoch starts a heal; later messages wait in `pending` meanwhile.
 * 3. Heal: read history after (epoch, last). Complete: forward the missing frames,
 *    then the pending ones (deduped, gap-checked again). Not complete (trimmed past
 *    `last`, or the epoch changed): forward a resync (epoch, head) so shards tell
 *    their clients "not recovered" with the snapshot, and continue from the head.
 *    Pending messages of another epoch that arrived before the read are stale:
 *    dropped. One heal per session at a time (concurrent triggers share it); a
 *    failed read is retried with backoff while the stream is open.
 * 4. Join: a shard's history read for a joining client is made through the stream.
 *    Before the reply leaves, the stream has forwarded everything up to the read's
 *    head (healing if the broker is late), and the reply follows those frames on
 *    the shard's port; the shard sends `joined`, the replay, then the frames it
 *    buffered newer than the replay (shard/joins.ts). Any bus latency, loss or
 *    reordering of the history reply against live frames is absorbed here. Joins
 *    from the same position share reads: at most one in flight per position (readForJoin).
 * 5. After a broker reconnect every stream heals: messages may have been missed.
 *    A lost message is otherwise noticed by the next one; when none follows (the
 *    last events of a burst were lost), the position check notices it: every
 *    `checkMs` each stream reads the session's position, and a stream still behind
 *    a head it saw one check earlier (not merely late) heals.
 * 6. Close: after the last subscriber left, wait `lingerMs`, then unsubscribe.
 * 2b. The instance's own publishes: a broker whose bus is asynchronous hands the
 *    frames this instance sequenced over from its reply (onOwnEvent); when one is
 *    the next seq it is forwarded at once and its bus copy, when it comes, is
 *    recognized and dropped without counting as a duplicate. When it is not the
 *    next seq it is ignored, and its bus copy is handled as in step 2.
 * 7. Scheduled events (`at`): what the stream forwards passes a ReleaseGate
 *    (release-gate.ts), which holds frames until their release time; joins answer
 *    up to what the gate released. A stream that opens while events are held (the
 *    broker's position says from which seq) reads them back and holds them too.
 *
 * Pinned by test/unit/session-streams.test.ts (duplicates, gaps, epoch changes,
 * stale messages, coalesced heals, joins racing late frames) and by the e2e
 * resume, fan-out and slow-reader tests on the network-like engine.
 */
import type { Broker, HistoryRead, StreamMessage, StreamPosition } from '../engine/broker.js';
import type { Logger } from '../log.js';
import { ReleaseGate } from './release-gate.js';
import { FrameDrops, STREAM_DROP_REASONS } from '../admin/frame-drops.js';

/** Where a stream's output goes: the shards that hold the session's subscribers. */
export interface StreamSink {
  /** Routes one frame, in order. */
  forward(msg: StreamMessage): void;
  /** The stream continues under (epoch, head) after frames it could not recover. */
  resync(session: string, epoch: string, head: number): void;
}

/** Counters of what the streams did, for logs and metrics. */
export interface StreamCounters {
  duplicates: number;
  stale: number;
  gaps: number;
  healedFrames: number;
  resyncs: number;
  /** Join history reads served by a read another join made (joins from one position share reads). */
  sharedReads: number;
}

interface SessionStream {
  readonly session: string;
  /** Index of the session's namespace, for the drop counters. */
  readonly ns: number;
  /** Null until the position is known. */
  epoch: string | null;
  /** Holds scheduled frames; created with the position. */
  gate: ReleaseGate | null;
  last: number;
  /** Subscribed and positioned; rejects when the subscription failed. */
  ready: Promise<void>;
  pending: StreamMessage[];
  healing: Promise<void> | null;
  /** Pending overflowed and was dropped: heal again once the current heal ends. */
  healAgain: boolean;
  linger: NodeJS.Timeout | null;
  closed: boolean;
  /** Head seen by the last position check while the stream was behind it (0: none). */
  behindHead: number;
  /** Join reads about to start, by position, shared by the joins waiting for them. */
  reads: Map<string, Promise<HistoryRead>>;
  /** Join reads under way, by position: a join arriving meanwhile waits for the next one. */
  readsInFlight: Map<string, Promise<HistoryRead>>;
  /** Seqs forwarded from this instance's own publishes whose bus copy has not come back yet, ascending. */
  own: Set<number>;
}

/** Most messages kept while a heal is under way; past it they are dropped and re-read from history. */
const MAX_PENDING = 10_000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;
const JOIN_ATTEMPTS = 4;
/** Most own seqs awaiting their bus copy per stream; past it the oldest is forgotten (its copy then counts as a duplicate). */
const MAX_OWN = 1024;

/** The continuity owner of one instance; see the header comment. */
export class SessionStreams {
  private readonly streams = new Map<string, SessionStream>();
  /** Unsubscribes in flight, so a quick re-open subscribes after them. */
  private readonly unsubscribing = new Map<string, Promise<void>>();
  private stopped = false;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;
  /** The counts that are not drops; duplicates and stale frames are read from `drops`. */
  private readonly counts = { gaps: 0, healedFrames: 0, resyncs: 0, sharedReads: 0 };
  /**
   * Frames the streams dropped, by reason and namespace index (admin/frame-drops.ts).
   * Not counted, as no client misses them: pending messages dropped on overflow (the
   * next heal reads them back) and frames a gate still held when its stream ended
   * (no local subscriber is left; a later stream adopts them from the broker).
   */
  readonly drops = new FrameDrops(STREAM_DROP_REASONS);

  /** What the streams counted so far (a copy). */
  get counters(): StreamCounters {
    return { duplicates: this.drops.total('stream_duplicate'), stale: this.drops.total('stream_stale'), ...this.counts };
  }

  constructor(
    private readonly broker: Broker,
    private readonly sink: StreamSink,
    private readonly opts: {
      lingerMs: number;
      checkMs: number;
      log: Logger;
      /** The namespace index of a session id (namespaceFor(config, id).index); 0 for all when absent. */
      namespaceOf?: (session: string) => number;
    },
  ) {
    if (opts.checkMs > 0) {
      this.checkTimer = setInterval(() => void this.checkPositions(), opts.checkMs);
      this.checkTimer.unref();
    }
  }

  /** True while the instance streams the session (it must not be forgotten). */
  has(session: string): boolean {
    return this.streams.has(session);
  }

  /** Number of sessions streamed. */
  get size(): number {
    return this.streams.size;
  }

  /** A first local subscriber arrived: stream the session (or keep streaming it). */
  open(session: string): void {
    const existing = this.streams.get(session);
    if (existing) {
      if (existing.linger !== null) {
        clearTimeout(existing.linger);
        existing.linger = null;
      }
      return;
    }
    const stream: SessionStream = {
      session,
      ns: this.opts.namespaceOf?.(session) ?? 0,
      epoch: null,
      gate: null,
      last: 0,
      ready: Promise.resolve(),
      pending: [],
      healing: null,
      healAgain: false,
      linger: null,
      closed: false,
      behindHead: 0,
      reads: new Map(),
      readsInFlight: new Map(),
      own: new Set(),
    };
    this.streams.set(session, stream);
    stream.ready = this.position(stream);
    // Joins await `ready` and see the failure; nothing else does.
    stream.ready.catch(() => {});
  }

  /** The last local subscriber left: stop streaming after the linger. */
  close(session: string): void {
    const stream = this.streams.get(session);
    if (!stream || stream.linger !== null) return;
    stream.linger = setTimeout(() => this.end(stream), this.opts.lingerMs);
    stream.linger.unref();
  }

  /** Messages of subscribed sessions, from the broker. */
  onMessage(msg: StreamMessage): void {
    const stream = this.streams.get(msg.session);
    if (!stream) return;
    if (stream.epoch === null || stream.healing !== null) {
      this.hold(stream, msg);
      return;
    }
    this.accept(stream, msg, false);
  }

  /**
   * A frame this instance sequenced, from the broker's reply (Broker.ownEvent):
   * forwarded at once when it is the next one of a positioned stream. Otherwise
   * (another instance's earlier event is still on its way, a heal is under way)
   * it is left to its bus copy, which arrives in order behind the others.
   */
  onOwnEvent(msg: StreamMessage): void {
    const stream = this.streams.get(msg.session);
    if (!stream || stream.epoch === null || stream.healing !== null) return;
    if (msg.epoch !== stream.epoch || msg.seq !== stream.last + 1) return;
    stream.last = msg.seq;
    stream.own.add(msg.seq);
    if (stream.own.size > MAX_OWN) stream.own.delete(stream.own.values().next().value as number);
    this.forward(stream, msg);
  }

  /** True when `seq` is the bus copy of an own event already forwarded; forgets it, and older ones whose copy was lost. */
  private ownCopy(stream: SessionStream, seq: number): boolean {
    if (stream.own.size === 0) return false;
    // The bus delivers a session's messages in order: own seqs below this one lost their copy.
    for (const s of stream.own) {
      if (s >= seq) break;
      stream.own.delete(s);
    }
    return stream.own.delete(seq);
  }

  /** The broker reconnected: every stream may have missed messages. */
  onResubscribed(): void {
    for (const stream of this.streams.values()) {
      if (stream.epoch === null) continue;
      // A heal in flight read before the messages missed now: another must follow it.
      if (stream.healing !== null) stream.healAgain = true;
      else void this.heal(stream);
    }
  }

  /**
   * A joining client's history read, made through the stream: once it resolves,
   * every frame up to the returned head has been forwarded to the shards.
   */
  async join(session: string, since: StreamPosition | null, user: string): Promise<HistoryRead> {
    const stream = this.streams.get(session);
    if (!stream) throw new Error(`session ${session} is not streamed on this instance`);
    await stream.ready;
    for (let attempt = 1; ; attempt++) {
      const read = await this.readForJoin(stream, since, user);
      if (this.streams.get(session) !== stream) throw new Error(`session ${session} stopped streaming during the join`);
      // A heal already in flight may have read before this read did: the next heal,
      // started after it, reads a head at least as far, so two rounds suffice.
      for (let round = 0; round < 2 && read.epoch === stream.epoch && stream.last < read.head; round++) await this.heal(stream);
      if (read.epoch === stream.epoch && stream.last >= read.head) return this.released(stream, read, since);
      // The stream has not seen this epoch yet (or has moved past it): heal, read again.
      if (read.epoch !== stream.epoch) await this.heal(stream);
      if (attempt >= JOIN_ATTEMPTS) {
        throw new Error(`session ${session}: the stream could not reach the join's position (epoch changing or history unreadable)`);
      }
    }
  }

  /**
   * A join's read cut at what the release gate handed on: entries and snapshot
   * values of held events are left out (the client gets them live once released).
   * A client resuming past the cut (it came from an instance whose clock released
   * a little earlier) keeps its position.
   */
  private released(stream: SessionStream, read: HistoryRead, since: StreamPosition | null): HistoryRead {
    const gate = stream.gate;
    if (gate === null || gate.released >= read.head) return read;
    const upTo = read.complete && since !== null ? Math.max(gate.released, since.seq) : gate.released;
    const cut: HistoryRead = { ...read, head: upTo, entries: read.entries.filter((e) => e.seq <= upTo) };
    if (read.snapshot !== undefined) {
      cut.snapshot = {};
      for (const [key, entry] of Object.entries(read.snapshot)) if (entry.seq <= upTo) cut.snapshot[key] = entry;
    }
    return cut;
  }

  /**
   * History for a join. Joins resuming from the same position (a go-away sends a
   * whole shard's clients back at once) share one read: it starts once the turn
   * they arrived in is over, or, while a read of that position is in flight, once
   * that read is done — so however many resume, there is at most one read in
   * flight and one gathering joins per position. Never a read begun before a join
   * asked, which could miss frames forwarded before its shard began buffering. A
   * read that cannot replay is made again per user: snapshots differ per user.
   */
  private async readForJoin(stream: SessionStream, since: StreamPosition | null, user: string): Promise<HistoryRead> {
    if (since === null) return this.broker.history(stream.session, null, user);
    const key = `${since.epoch}\u0000${since.seq}`;
    let shared = stream.reads.get(key);
    if (shared === undefined) {
      const inFlight = stream.readsInFlight.get(key);
      const read = new Promise<HistoryRead>((resolve, reject) => {
        const begin = () => {
          if (stream.reads.get(key) === read) stream.reads.delete(key);
          const made = this.broker.history(stream.session, since);
          stream.readsInFlight.set(key, made);
          const done = () => {
            if (stream.readsInFlight.get(key) === made) stream.readsInFlight.delete(key);
          };
          made.then(done, done);
          made.then(resolve, reject);
        };
        if (inFlight === undefined) setImmediate(begin);
        else inFlight.then(begin, begin);
      });
      stream.reads.set(key, read);
      shared = read;
    } else {
      this.counts.sharedReads++;
    }
    const read = await shared;
    return read.complete ? read : this.broker.history(stream.session, since, user);
  }

  /** Stops every stream (the instance is stopping); no unsubscribe is sent. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.checkTimer);
    for (const stream of this.streams.values()) {
      stream.closed = true;
      stream.gate?.close();
      if (stream.linger !== null) clearTimeout(stream.linger);
    }
    this.streams.clear();
  }

  /** One round of the position check (see the header, step 5); rounds never overlap. */
  private async checkPositions(): Promise<void> {
    if (this.checking || this.stopped) return;
    this.checking = true;
    try {
      for (const stream of [...this.streams.values()]) {
        if (stream.epoch === null || stream.healing !== null || stream.closed) continue;
        let pos;
        try {
          pos = await this.broker.position(stream.session);
        } catch (err) {
          this.opts.log.warn({ err, session: stream.session }, 'position check failed');
          continue;
        }
        if (stream.closed || stream.healing !== null) continue;
        const behind = pos.ep !== stream.epoch || pos.seq > stream.last;
        if (!behind) {
          stream.behindHead = 0;
        } else if (stream.behindHead > 0 && (pos.ep !== stream.epoch || stream.last < stream.behindHead)) {
          stream.behindHead = 0;
          this.counts.gaps++;
          void this.heal(stream);
        } else {
          stream.behindHead = pos.seq;
        }
      }
    } finally {
      this.checking = false;
    }
  }

  private async position(stream: SessionStream): Promise<void> {
    const { session } = stream;
    await this.unsubscribing.get(session);
    try {
      await this.broker.subscribe(session);
      const cutoff = stream.pending.length;
      const pos = await this.broker.position(session, Date.now());
      // Events sequenced before this stream existed and not yet released: held here too.
      const held = pos.heldFrom === undefined ? null : await this.broker.history(session, { epoch: pos.ep, seq: pos.heldFrom - 1 });
      if (stream.closed) return;
      stream.epoch = pos.ep;
      stream.last = pos.seq;
      stream.gate = new ReleaseGate(pos.seq, (msg) => this.sink.forward(msg), (n) =>
        this.opts.log.warn({ session, held: n }, 'a session holds too many frames behind a scheduled event; releasing the oldest early'),
      );
      if (held !== null && held.complete && held.epoch === pos.ep) stream.gate.adopt(held.entries);
      this.release(stream, cutoff);
    } catch (err) {
      // A subscribed-looking but deaf session would leave its clients silently
      // without frames (centrifuge undoes a failed subscribe the same way).
      this.opts.log.error({ err, session }, 'subscribing to a session failed');
      if (this.streams.get(session) === stream) this.streams.delete(session);
      stream.closed = true;
      void this.broker.unsubscribe(session).catch(() => {});
      throw err;
    }
  }

  private end(stream: SessionStream): void {
    if (this.streams.get(stream.session) !== stream) return;
    this.streams.delete(stream.session);
    stream.closed = true;
    stream.gate?.close();
    const done = this.broker.unsubscribe(stream.session).catch((err: unknown) => {
      this.opts.log.error({ err, session: stream.session }, 'unsubscribing from a session failed');
    });
    this.unsubscribing.set(stream.session, done);
    void done.then(() => {
      if (this.unsubscribing.get(stream.session) === done) this.unsubscribing.delete(stream.session);
    });
  }

  private hold(stream: SessionStream, msg: StreamMessage): void {
    if (stream.pending.length >= MAX_PENDING) {
      // Everything dropped here is in history: the next heal reads it back.
      stream.pending = [];
      stream.healAgain = true;
      return;
    }
    stream.pending.push(msg);
  }

  /** Hands a frame on through the stream's release gate. */
  private forward(stream: SessionStream, msg: StreamMessage): void {
    if (stream.gate !== null) stream.gate.push(msg);
    else this.sink.forward(msg);
  }

  /** Applies one message to a positioned stream that is not healing. */
  private accept(stream: SessionStream, msg: StreamMessage, staleIfForeign: boolean): void {
    if (msg.seq === 0) {
      this.forward(stream, msg);
      return;
    }
    if (msg.epoch === stream.epoch) {
      if (msg.seq <= stream.last) {
        if (!this.ownCopy(stream, msg.seq)) this.drops.add('stream_duplicate', stream.ns);
        return;
      }
      if (msg.seq === stream.last + 1) {
        stream.last = msg.seq;
        this.forward(stream, msg);
        return;
      }
      this.counts.gaps++;
    } else if (staleIfForeign) {
      this.drops.add('stream_stale', stream.ns);
      return;
    }
    stream.pending.push(msg);
    void this.heal(stream);
  }

  /** Fills the stream up to the broker's head (or resyncs); concurrent calls share one heal. */
  private heal(stream: SessionStream): Promise<void> {
    if (stream.closed) return Promise.resolve();
    if (stream.healing !== null) return stream.healing;
    const cutoff = stream.pending.length;
    const healing = this.fill(stream).then(
      () => {
        stream.healing = null;
        // An ended stream reads nothing more and forwards nothing (a new one may exist).
        if (stream.closed) {
          stream.pending = [];
          return;
        }
        if (stream.healAgain) {
          stream.healAgain = false;
          return this.heal(stream);
        }
        this.release(stream, cutoff);
      },
      (err: unknown) => {
        stream.healing = null;
        stream.pending = [];
        if (stream.closed) return;
        this.opts.log.error({ err, session: stream.session }, 'healing a session stream failed');
      },
    );
    stream.healing = healing;
    return healing;
  }

  private async fill(stream: SessionStream): Promise<void> {
    const since = { epoch: stream.epoch ?? '', seq: stream.last };
    let read: HistoryRead | undefined;
    for (let delay = RETRY_MIN_MS; read === undefined; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      try {
        read = await this.broker.history(stream.session, since);
      } catch (err) {
        if (stream.closed || this.stopped) return;
        this.opts.log.warn({ err, session: stream.session, retryMs: delay }, 'reading history to heal a stream failed; retrying');
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)).unref());
        if (stream.closed || this.stopped) return;
      }
    }
    if (stream.closed) return;
    if (read.complete) {
      for (const entry of read.entries) {
        if (entry.seq <= stream.last) continue;
        stream.last = entry.seq;
        this.counts.healedFrames++;
        this.forward(stream, entry);
      }
      return;
    }
    this.counts.resyncs++;
    // Within one epoch the frames after `last` up to the head are skipped (the
    // snapshot stands in for them); across epochs how many the old one had after
    // `last` is unknown, and only the resync itself is counted.
    if (read.epoch === since.epoch && read.head > since.seq) this.drops.add('resync_skipped', stream.ns, read.head - since.seq);
    const held = stream.gate?.held ?? 0;
    if (held > 0) this.drops.add('resync_held', stream.ns, held);
    this.opts.log.warn(
      { session: stream.session, from: since, to: { epoch: read.epoch, seq: read.head } },
      'session stream resynced: frames after its last position are no longer in history',
    );
    stream.epoch = read.epoch;
    stream.last = read.head;
    stream.own.clear();
    // Held frames belong to the stream the shards are told to give up on.
    stream.gate?.reset(read.head);
    this.sink.resync(stream.session, read.epoch, read.head);
  }

  /** Applies the messages that waited; those before `cutoff` arrived before the last read. */
  private release(stream: SessionStream, cutoff: number): void {
    if (stream.closed) {
      stream.pending = [];
      return;
    }
    const waiting = stream.pending;
    stream.pending = [];
    for (let i = 0; i < waiting.length; i++) {
      if (stream.healing !== null) {
        this.hold(stream, waiting[i]);
        continue;
      }
      this.accept(stream, waiting[i], i < cutoff);
    }
  }
}
