/**
 * The page the Chromium tests drive: it bundles the SDK package and exposes a small
 * harness on `window.harness` that records what the application would see (events,
 * joins, snapshots, states, errors) with the page's own clock.
 */
import { ShardcastClient, ShardcastError, type ConnectionState, type HelloFrame } from '@shardcast/client';

/** What the harness recorded, read by the test through page.evaluate. */
export interface Recording {
  events: Record<string, { seq: number; ep: string }[]>;
  joins: { session: string; rec: boolean; ep: string; seq: number; at: number }[];
  snapshots: { session: string; keys: string[]; ep: string; rec: boolean; at: number }[];
  states: { state: ConnectionState; at: number }[];
  goaways: number;
}

/** The harness API (one client per page). */
export interface Harness {
  connect(opts: { url: string; user?: string; token?: string }): Promise<HelloFrame>;
  /** Joins; resolves with the joined frame or the refusal's code. `throwOnSeq` adds a listener that throws on that seq. */
  join(session: string, opts?: { throwOnSeq?: number }): Promise<{ ok: true; rec: boolean } | { ok: false; code: number | string; message: string }>;
  recording(): Recording;
  close(): Promise<void>;
}

declare global {
  interface Window {
    harness: Harness;
  }
}

const recording: Recording = { events: {}, joins: [], snapshots: [], states: [], goaways: 0 };
let client: ShardcastClient | null = null;

window.harness = {
  async connect({ url, user, token }) {
    client = new ShardcastClient({ url, ...(user !== undefined ? { user } : {}), ...(token !== undefined ? { token } : {}) });
    client.on('state', ({ state }) => recording.states.push({ state, at: Date.now() }));
    client.on('goaway', () => recording.goaways++);
    return client.connect();
  },
  async join(session, opts = {}) {
    if (!client) throw new Error('connect first');
    const sub = client.join(session);
    const seen: { seq: number; ep: string }[] = (recording.events[session] = []);
    if (opts.throwOnSeq !== undefined) {
      const bad = opts.throwOnSeq;
      sub.on('event', (ev) => {
        if (ev.seq === bad) throw new Error(`application bug at seq ${bad}`);
      });
    }
    sub.on('event', (ev) => seen.push({ seq: ev.seq, ep: ev.ep }));
    sub.on('joined', (j) => recording.joins.push({ session, rec: j.rec, ep: j.ep, seq: j.seq, at: Date.now() }));
    sub.on('snapshot', ({ snap, joined }) => recording.snapshots.push({ session, keys: Object.keys(snap), ep: joined.ep, rec: joined.rec, at: Date.now() }));
    try {
      const joined = await sub.ready;
      return { ok: true, rec: joined.rec };
    } catch (err) {
      if (err instanceof ShardcastError) return { ok: false, code: err.code, message: err.message };
      throw err;
    }
  },
  recording: () => recording,
  async close() {
    await client?.close();
  },
};
document.body.dataset.ready = 'true';
