/**
 * Standalone sequencer: sessions live in this process's memory. It is the embedded
 * engine `npm start` runs, not a test double: dense seq, epoch, bounded history,
 * snapshots (per key and per user) and idempotent publishing, with idle sessions
 * forgotten after a TTL so memory stays bounded. Owned by the primary thread.
 */
import { randomBytes } from 'node:crypto';
import { encode } from '../../protocol/codec.js';
import type { EventFrame, ResumePoint, SnapshotEntry } from '../../protocol/frames.js';
import type { Bus } from './bus.js';
import type { HistoryResult, PublishRequest, PublishResult, Sequencer, StreamPosition } from './sequencer.js';

/** Settings of the memory sequencer. */
export interface MemorySequencerOptions {
  bus: Bus;
  /** History bound of a session (0 keeps none: every resume gets the snapshot). */
  historySizeFor(session: string): number;
  /** Idle sessions without activity this long are forgotten. */
  sessionTtlMs: number;
  /** Sessions that must not be forgotten (they have local subscribers). */
  isActive(session: string): boolean;
  now?: () => number;
}

interface HistoryEntry {
  seq: number;
  frame: Uint8Array;
  to?: readonly string[];
}

interface SessionState {
  epoch: string;
  seq: number;
  historySize: number;
  /** Ring of the last `historySize` events, oldest first once full. */
  history: HistoryEntry[];
  historyStart: number;
  snapshot: Map<string, SnapshotEntry>;
  userSnapshots: Map<string, Map<string, SnapshotEntry>>;
  /** Event ids already sequenced → their seq, oldest first for eviction. */
  seen: Map<string, number>;
  lastActive: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/** Creates the in-memory sequencer; call close() to stop its sweeper. */
export function createMemorySequencer(opts: MemorySequencerOptions): Sequencer {
  const now = opts.now ?? Date.now;
  const sessions = new Map<string, SessionState>();

  const sweeper = setInterval(() => {
    const cutoff = now() - opts.sessionTtlMs;
    for (const [id, state] of sessions) {
      if (state.lastActive < cutoff && !opts.isActive(id)) sessions.delete(id);
    }
  }, Math.min(SWEEP_INTERVAL_MS, Math.max(1000, opts.sessionTtlMs)));
  sweeper.unref();

  function stateOf(session: string): SessionState {
    let state = sessions.get(session);
    if (!state) {
      state = {
        epoch: randomBytes(6).toString('base64url'),
        seq: 0,
        historySize: opts.historySizeFor(session),
        history: [],
        historyStart: 0,
        snapshot: new Map(),
        userSnapshots: new Map(),
        seen: new Map(),
        lastActive: now(),
      };
      sessions.set(session, state);
    }
    state.lastActive = now();
    return state;
  }

  function append(state: SessionState, entry: HistoryEntry): void {
    if (state.historySize === 0) return;
    if (state.history.length < state.historySize) {
      state.history.push(entry);
    } else {
      state.history[state.historyStart] = entry;
      state.historyStart = (state.historyStart + 1) % state.historySize;
    }
  }

  function remember(state: SessionState, id: string, seq: number): void {
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
      state.snapshot.set(req.snapshot, entry);
      return;
    }
    for (const user of req.to) {
      let own = state.userSnapshots.get(user);
      if (!own) state.userSnapshots.set(user, (own = new Map()));
      own.set(req.snapshot, entry);
    }
  }

  function snapshotFor(state: SessionState, user: string): Record<string, SnapshotEntry> {
    const out: Record<string, SnapshotEntry> = {};
    for (const [key, entry] of state.snapshot) out[key] = entry;
    const own = state.userSnapshots.get(user);
    if (own) for (const [key, entry] of own) out[key] = entry;
    return out;
  }

  const sequencer = {
    async publish(req: PublishRequest): Promise<PublishResult> {
      const state = stateOf(req.session);
      if (req.id !== undefined) {
        const seq = state.seen.get(req.id);
        if (seq !== undefined) return { seq, epoch: state.epoch, duplicate: true };
      }
      const seq = ++state.seq;
      const ts = now();
      const frame: EventFrame = { t: 'ev', s: req.session, seq, ep: state.epoch, type: req.type, data: req.data, ts };
      if (req.snapshot !== undefined) frame.k = req.snapshot;
      if (req.conflate) frame.c = true;
      const bytes = encode(frame);
      append(state, { seq, frame: bytes, to: req.to });
      if (req.id !== undefined) remember(state, req.id, seq);
      setSnapshot(state, req, { seq, type: req.type, data: req.data, ts });
      opts.bus.publish({
        session: req.session,
        seq,
        frame: bytes,
        to: req.to,
        conflateKey: req.conflate && req.snapshot !== undefined ? req.snapshot : undefined,
      });
      return { seq, epoch: state.epoch, duplicate: false };
    },

    async history(session: string, since: StreamPosition | null, user: string): Promise<HistoryResult> {
      const state = stateOf(session);
      const head = state.seq;
      const base = { epoch: state.epoch, head };
      const oldest = state.history.length === 0 ? head + 1 : state.history[state.historyStart].seq;
      const covered =
        since !== null && since.epoch === state.epoch && since.seq <= head && since.seq >= oldest - 1;
      if (!covered) return { ...base, recovered: false, frames: [], snapshot: snapshotFor(state, user) };
      const frames: Uint8Array[] = [];
      const n = state.history.length;
      for (let i = 0; i < n; i++) {
        const entry = state.history[(state.historyStart + i) % n];
        if (entry.seq <= since.seq) continue;
        if (entry.to !== undefined && !entry.to.includes(user)) continue;
        frames.push(entry.frame);
      }
      return { ...base, recovered: true, frames };
    },

    async position(session: string): Promise<ResumePoint> {
      const state = stateOf(session);
      return { s: session, ep: state.epoch, seq: state.seq };
    },

    async close() {
      clearInterval(sweeper);
      sessions.clear();
    },
  } satisfies Sequencer;
  return sequencer;
}
