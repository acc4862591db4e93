/**
 * Standalone broker: session streams in this process's memory. It is the embedded
 * engine `npm start` runs, not a test double: dense seq, epoch, bounded history,
 * snapshots (per key and per user), idempotent publishing, and idle sessions
 * forgotten after a TTL so memory stays bounded. Owned by the primary thread.
 *
 * With `network` set (test hooks only) it behaves like a broker across a network
 * (Redis Pub/Sub): messages reach subscribers late (per-session order kept), some
 * are dropped, history replies come back after a random delay (so they reorder
 * against live messages), and `resetEpoch` loses a session's history the way a
 * backend restarted empty does. The continuity tests run on it.
 */
import { randomBytes } from 'node:crypto';
import type { SnapshotEntry } from '../../protocol/frames.js';
import { assembleEvent } from '../../protocol/event-template.js';
import {
  PublishRefused,
  templateOf,
  type Broker,
  type BrokerHandler,
  type HistoryRead,
  type PublishRequest,
  type PublishResult,
  type StreamMessage,
  type SessionPosition,
  type StreamPosition,
} from './broker.js';
import { seededRandom } from './seeded-random.js';

/** How the memory broker imitates a network (test hooks only). */
export interface NetworkFaults {
  /** Least delay of a delivered message (ms). */
  delayMs: number;
  /** Random extra delay of a delivered message, 0..jitterMs (ms); per-session order is kept. */
  jitterMs: number;
  /** Probability that a message never reaches subscribers (0..1). */
  dropRate: number;
  /** History replies come back after a random delay of 0..historyDelayMs (ms). */
  historyDelayMs: number;
  /** Seed of the fault sequence, so a failing run can be replayed. */
  seed: number;
}

/** Settings of the memory broker. */
export interface MemoryBrokerOptions {
  /** History bound of a session (0 keeps none: every resume gets the snapshot). */
  historySizeFor(session: string): number;
  /** Idle sessions without activity this long are forgotten. */
  sessionTtlMs: number;
  /** Idle sessions no event was ever published to (seq 0), forgotten after this when shorter (default: sessionTtlMs). */
  emptySessionTtlMs?: number;
  /** Most sessions no event was published to; past it the oldest one no client here has joined is forgotten (default: no bound). */
  maxEmptySessions?: number;
  /** Sessions that must not be forgotten (this instance streams them). */
  isActive(session: string): boolean;
  /** Most shared snapshot keys per session, and own keys per user per session (default 65,535: what a `joined` frame can carry). */
  maxSnapshotKeys?: number;
  network?: NetworkFaults;
  now?: () => number;
}

/** The memory broker, with the fault a test can inject. */
export interface MemoryBroker extends Broker {
  /** Loses the session's history and snapshots: it continues under a new epoch from seq 1. */
  resetEpoch(session: string): void;
  /** Messages (events and notices) the network dropped so far. */
  readonly dropped: number;
}

interface SessionState {
  epoch: string;
  seq: number;
  historySize: number;
  /** Ring of the last `historySize` events, oldest first once full. */
  history: StreamMessage[];
  historyStart: number;
  snapshot: Map<string, SnapshotEntry>;
  userSnapshots: Map<string, Map<string, SnapshotEntry>>;
  /** Event ids already sequenced → their seq, oldest first for eviction. */
  seen: Map<string, number>;
  /** Scheduled events (seq, at) not yet known to be released, oldest first; pruned by position(). */
  scheduled: Array<{ seq: number; at: number }> | null;
  lastActive: number;
}

const SWEEP_INTERVAL_MS = 60_000;
/** Scheduled events remembered per session (the Redis broker keeps as many): the oldest are released long before. */
const MAX_SCHEDULED = 64;

/** Joined empty sessions one eviction passes over at most. */
const EVICTION_SCAN = 64;

// Shared and never written (every write site swaps in the session's own map first):
// typed as Map only so reads need no branch.
const NO_SNAPSHOT = new Map<string, SnapshotEntry>();
const NO_USER_SNAPSHOTS = new Map<string, Map<string, SnapshotEntry>>();
const NO_IDS = new Map<string, number>();

/** A new epoch: hex, so it never starts with '-' (command-line tools take it as an option). */
export function newEpoch(): string {
  return randomBytes(6).toString('hex');
}


/** Creates the in-memory broker; stop() releases its timers. */
export function createMemoryBroker(opts: MemoryBrokerOptions): MemoryBroker {
  const now = opts.now ?? Date.now;
  const sessions = new Map<string, SessionState>();
  /** The sessions with seq 0, oldest first: what join floods create. */
  const empty = new Set<string>();
  const maxEmpty = opts.maxEmptySessions ?? Number.POSITIVE_INFINITY;
  const subscribed = new Set<string>();
  const network = opts.network;
  // Separate sequences for the message faults and the history delays, so the drops
  // and delays of a seed's messages do not depend on how many history reads ran.
  const random = seededRandom(network?.seed ?? 1);
  const historyRandom = seededRandom((network?.seed ?? 1) ^ 0x5bd1e995);
  let handler: BrokerHandler | null = null;
  let dropped = 0;
  let stopped = false;

  // Network-like delivery: one FIFO per session, released by one timer, so
  // per-session order holds whatever the delays.
  const inFlight = new Map<string, { queue: Array<{ at: number; msg: StreamMessage }>; timer: NodeJS.Timeout | null }>();
  const historyTimers = new Map<NodeJS.Timeout, () => void>();

  // A session only joined holds nothing but its epoch: forgetting it sooner costs a
  // client resuming into it later a rec: false (it had nothing to miss until events
  // came), and keeps join floods from filling memory for a whole session TTL.
  const emptyTtlMs = Math.min(opts.emptySessionTtlMs ?? opts.sessionTtlMs, opts.sessionTtlMs);
  const sweeper = setInterval(() => {
    const at = now();
    for (const [id, state] of sessions) {
      const ttl = state.seq === 0 ? emptyTtlMs : opts.sessionTtlMs;
      if (state.lastActive < at - ttl && !opts.isActive(id)) forget(id);
    }
  }, Math.min(SWEEP_INTERVAL_MS, Math.max(1000, emptyTtlMs)));
  sweeper.unref();

  function forget(session: string): void {
    sessions.delete(session);
    empty.delete(session);
  }

  /**
   * Forgets the oldest empty session no client here has joined, but `keep`. Joined
   * ones met on the way go to the back; a scan stops after EVICTION_SCAN of them,
   * so a burst of joined empty sessions makes the bound soft, never a stall.
   */
  function evictEmpty(keep: string): void {
    const joined: string[] = [];
    let victim: string | undefined;
    for (const id of empty) {
      if (id === keep || opts.isActive(id)) {
        joined.push(id);
        if (joined.length >= EVICTION_SCAN) break;
        continue;
      }
      victim = id;
      break;
    }
    for (const id of joined) {
      empty.delete(id);
      empty.add(id);
    }
    if (victim !== undefined) forget(victim);
  }

  function stateOf(session: string): SessionState {
    let state = sessions.get(session);
    if (!state) {
      state = {
        epoch: newEpoch(),
        seq: 0,
        historySize: opts.historySizeFor(session),
        history: [],
        historyStart: 0,
        // Shared empty maps until the first write: a session only read (a join to an
        // empty session) costs a few hundred bytes, not three maps' worth.
        snapshot: NO_SNAPSHOT,
        userSnapshots: NO_USER_SNAPSHOTS,
        seen: NO_IDS,
        scheduled: null,
        lastActive: now(),
      };
      sessions.set(session, state);
      empty.add(session);
      if (empty.size > maxEmpty) evictEmpty(session);
    }
    state.lastActive = now();
    return state;
  }

  function append(state: SessionState, entry: StreamMessage): void {
    if (state.historySize === 0) return;
    if (state.history.length < state.historySize) {
      state.history.push(entry);
    } else {
      state.history[state.historyStart] = entry;
      state.historyStart = (state.historyStart + 1) % state.historySize;
    }
  }

  function remember(state: SessionState, id: string, seq: number): void {
    if (state.seen === NO_IDS) state.seen = new Map();
    state.seen.set(id, seq);
    // Redelivery happens soon after the first delivery: keep as many ids as events
    // in history, with a floor so sessions without history still dedupe.
    const limit = Math.max(1000, state.historySize);
    if (state.seen.size > limit) {
      const oldest = state.seen.keys().next().value as string;
      state.seen.delete(oldest);
    }
  }

  function setSnapshot(state: SessionState, req: PublishRequest, entry: SnapshotEntry): void {
    if (req.snapshot === undefined) return;
    if (req.to === undefined) {
      if (state.snapshot === NO_SNAPSHOT) state.snapshot = new Map();
      state.snapshot.set(req.snapshot, entry);
      return;
    }
    for (const user of req.to) {
      let own = state.userSnapshots.get(user);
      if (state.userSnapshots === NO_USER_SNAPSHOTS) state.userSnapshots = new Map();
      if (!own) state.userSnapshots.set(user, (own = new Map()));
      own.set(req.snapshot, entry);
    }
  }

  /** Throws PublishRefused when the event would add a snapshot key past the bound. */
  function refuseNewSnapshotKey(state: SessionState, req: PublishRequest): void {
    const key = req.snapshot;
    if (key === undefined) return;
    const max = opts.maxSnapshotKeys ?? 65_535;
    if (req.to === undefined) {
      if (!state.snapshot.has(key) && state.snapshot.size >= max) {
        throw new PublishRefused(`session ${req.session} already has ${max} snapshot keys (maxSnapshotKeys): reuse a key`);
      }
      return;
    }
    for (const user of req.to) {
      const own = state.userSnapshots.get(user);
      if (own !== undefined && !own.has(key) && own.size >= max) {
        throw new PublishRefused(`user ${user} already has ${max} own snapshot keys in session ${req.session} (maxSnapshotKeys): reuse a key`);
      }
    }
  }

  function snapshotFor(state: SessionState, user: string): Record<string, SnapshotEntry> {
    const out: Record<string, SnapshotEntry> = {};
    for (const [key, entry] of state.snapshot) out[key] = entry;
    const own = state.userSnapshots.get(user);
    if (own) for (const [key, entry] of own) out[key] = entry;
    return out;
  }

  function deliver(msg: StreamMessage): void {
    if (stopped || !subscribed.has(msg.session) || handler === null) return;
    if (network === undefined) {
      handler.message(msg);
      return;
    }
    if (random() < network.dropRate) {
      dropped++;
      return;
    }
    let flight = inFlight.get(msg.session);
    if (!flight) inFlight.set(msg.session, (flight = { queue: [], timer: null }));
    const last = flight.queue.at(-1)?.at ?? 0;
    flight.queue.push({ at: Math.max(last, Date.now() + network.delayMs + random() * network.jitterMs), msg });
    if (flight.timer === null) release(msg.session);
  }

  function release(session: string): void {
    const flight = inFlight.get(session);
    if (!flight) return;
    flight.timer = null;
    while (flight.queue.length > 0 && flight.queue[0].at <= Date.now()) {
      const { msg } = flight.queue.shift()!;
      if (!stopped && subscribed.has(session)) handler?.message(msg);
    }
    if (flight.queue.length === 0) {
      inFlight.delete(session);
      return;
    }
    flight.timer = setTimeout(() => release(session), Math.max(0, flight.queue[0].at - Date.now()));
  }

  function later<T>(value: T): Promise<T> {
    if (network === undefined || network.historyDelayMs === 0) return Promise.resolve(value);
    return new Promise((resolve) => {
      const fire = () => {
        historyTimers.delete(timer);
        resolve(value);
      };
      const timer = setTimeout(fire, historyRandom() * network.historyDelayMs);
      historyTimers.set(timer, fire);
    });
  }

  const broker = {
    async start(h: BrokerHandler) {
      handler = h;
    },

    async publish(req: PublishRequest): Promise<PublishResult> {
      if (stopped) throw new Error('the broker is stopped: nothing can be stored');
      const state = stateOf(req.session);
      if (req.id !== undefined) {
        const seq = state.seen.get(req.id);
        if (seq !== undefined) return { seq, epoch: state.epoch, duplicate: true };
      }
      refuseNewSnapshotKey(state, req);
      const ts = now();
      const template = templateOf(req, ts);
      const seq = ++state.seq;
      if (seq === 1) empty.delete(req.session);
      const msg: StreamMessage = {
        session: req.session,
        epoch: state.epoch,
        seq,
        frame: assembleEvent(template, seq, state.epoch),
        to: req.to,
        conflateKey: req.conflate && req.snapshot !== undefined ? req.snapshot : undefined,
      };
      if (req.at !== undefined) {
        msg.at = req.at;
        (state.scheduled ??= []).push({ seq, at: req.at });
        if (state.scheduled.length > MAX_SCHEDULED) state.scheduled.shift();
      }
      append(state, msg);
      if (req.id !== undefined) remember(state, req.id, seq);
      setSnapshot(state, req, { seq, type: req.type, data: req.data, ts });
      deliver(msg);
      return { seq, epoch: state.epoch, duplicate: false };
    },

    async notice(session: string, frame: Uint8Array) {
      if (stopped) throw new Error('the broker is stopped');
      deliver({ session, epoch: stateOf(session).epoch, seq: 0, frame });
    },

    async history(session: string, since: StreamPosition | null, user?: string): Promise<HistoryRead> {
      if (stopped) throw new Error('the broker is stopped');
      const state = stateOf(session);
      const head = state.seq;
      const oldest = state.history.length === 0 ? head + 1 : state.history[state.historyStart].seq;
      const complete = since !== null && since.epoch === state.epoch && since.seq <= head && since.seq >= oldest - 1;
      if (!complete) {
        const read: HistoryRead = { epoch: state.epoch, head, complete: false, entries: [] };
        if (user !== undefined) read.snapshot = snapshotFor(state, user);
        return later(read);
      }
      const entries: StreamMessage[] = [];
      const n = state.history.length;
      for (let i = 0; i < n; i++) {
        const entry = state.history[(state.historyStart + i) % n];
        if (entry.seq > since.seq) entries.push(entry);
      }
      return later({ epoch: state.epoch, head, complete: true, entries });
    },

    async position(session: string, at = Date.now()): Promise<SessionPosition> {
      const state = stateOf(session);
      const pos: SessionPosition = { s: session, ep: state.epoch, seq: state.seq };
      if (state.scheduled !== null) {
        state.scheduled = state.scheduled.filter((e) => e.at > at);
        if (state.scheduled.length === 0) state.scheduled = null;
        else pos.heldFrom = Math.min(...state.scheduled.map((e) => e.seq));
      }
      return pos;
    },

    async subscribe(session: string) {
      subscribed.add(session);
    },

    async unsubscribe(session: string) {
      subscribed.delete(session);
    },

    health() {
      return { ok: !stopped, ...(stopped ? { detail: 'stopped' } : {}) };
    },

    async stop() {
      stopped = true;
      clearInterval(sweeper);
      for (const flight of inFlight.values()) if (flight.timer !== null) clearTimeout(flight.timer);
      inFlight.clear();
      // Reads already made are answered now rather than never.
      for (const [timer, fire] of [...historyTimers]) {
        clearTimeout(timer);
        fire();
      }
      sessions.clear();
      empty.clear();
      subscribed.clear();
    },

    resetEpoch(session: string) {
      forget(session);
      stateOf(session);
    },

    get dropped() {
      return dropped;
    },
  } satisfies MemoryBroker;
  return broker;
}
