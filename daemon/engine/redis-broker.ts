/**
 * The Redis broker: session streams shared by every instance on one Redis (or one
 * Redis Cluster). One Lua script per event dedupes it, takes the session's next
 * seq, assembles the `ev` frame around the template the publishing instance
 * encoded (so the frame is made once, cluster-wide), appends it to the bounded
 * history, updates the snapshot and publishes it on the session's channel
 * (redis-scripts.ts has the key layout and the scripts' contract). Every instance
 * subscribes, on its own subscriber connection, to the channels of the sessions
 * it streams, and hands what arrives to the session streams, which heal any gap
 * from history (primary/session-streams.ts): Redis Pub/Sub is at-most-once. The
 * publishing instance also hands its own event to its streams straight from the
 * script's reply (`ownEvent`), which saves its clients the Pub/Sub leg (one wake-up
 * of this process and of its shards per event); the copy that follows is known.
 *
 * On a cluster the channels are sharded (SPUBLISH/SSUBSCRIBE): a message goes only
 * to the node that owns its session's slot, so fan-out scales with the masters.
 *
 * A subscription can go deaf while its connection looks fine. Every second this
 * instance publishes a heartbeat on channels of its own, one on each master's
 * slots, and listens to them; when one stays silent for `deafAfterMs` the
 * subscriber connection is dropped and made anew, and the streams heal from
 * history (`resubscribed`). The same happens after any reconnect.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { decode, encode, exactIntegers } from '../../protocol/codec.js';
import { assembleEvent } from '../../protocol/event-template.js';
import type { SnapshotEntry, Value } from '../../protocol/frames.js';
import type { Logger } from '../log.js';
import {
  PublishRefused,
  templateOf,
  type Broker,
  type BrokerHandler,
  type BrokerHealth,
  type HistoryRead,
  type PublishRequest,
  type PublishResult,
  type StreamMessage,
  type SessionPosition,
  type StreamPosition,
} from './broker.js';
import type { RedisLink } from './redis-connection.js';
import { FORGET_SCRIPT, HISTORY_SCRIPT, POSITION_SCRIPT, PUBLISH_SCRIPT, TOUCH_SCRIPT } from './redis-scripts.js';
import { slotOf } from './redis-slot.js';
import { EnvelopeKind, envelopeMeta, openEnvelope, unsequencedEnvelope } from './stream-envelope.js';

/** Settings of the Redis broker. */
export interface RedisBrokerOptions {
  link: RedisLink;
  /** Prefix of every key and channel (no braces: the session is the hash tag). */
  prefix: string;
  /** Random id of this process (heartbeat channels carry it). */
  instanceId: string;
  historySizeFor(session: string): number;
  /** Idle sessions expire after this long (ms). */
  sessionTtlMs: number;
  /** Most snapshot keys per session, and own keys per user (65,535 by default). */
  maxSnapshotKeys?: number;
  log: Logger;
  /** Heartbeat period (ms, default 1000). */
  heartbeatMs?: number;
  /** A heartbeat channel silent this long means a deaf subscription (ms, default 3500). */
  deafAfterMs?: number;
}

/** The Redis broker, with the fault a test can inject. */
export interface RedisBroker extends Broker {
  /** Deletes the session's data, as a Redis that restarted empty or evicted it would. */
  resetEpoch(session: string): Promise<void>;
}

type ScriptReply = Array<Buffer | number | ScriptReply>;
interface Scripts {
  shardcastPublish(...args: Array<string | Buffer | number>): Promise<ScriptReply>;
  shardcastHistoryBuffer(...args: Array<string | Buffer | number>): Promise<ScriptReply>;
  shardcastPosition(...args: Array<string | number>): Promise<ScriptReply>;
  shardcastTouch(...args: Array<string | number>): Promise<number>;
  shardcastForget(...args: Array<string | number>): Promise<number>;
}

/** Raised for a script reply that is not what the script returns (another version's script, a corrupt key). */
class ReplyError extends Error {}

function asBuffer(v: unknown, what: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v);
  throw new ReplyError(`redis script reply: ${what} is not a string`);
}
function asNumber(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : Buffer.isBuffer(v) || typeof v === 'string' ? Number(v.toString()) : NaN;
  if (!Number.isFinite(n)) throw new ReplyError(`redis script reply: ${what} is not a number`);
  return n;
}
function asArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new ReplyError(`redis script reply: ${what} is not a list`);
  return v;
}

/** A snapshot entry as stored: 8 bytes of seq, then msgpack [type, data, ts]. */
function openEntry(bytes: Buffer): SnapshotEntry {
  const seq = bytes.readDoubleBE(0);
  const body = decode(bytes.subarray(8));
  if (!body.ok || !Array.isArray(body.value) || body.value.length !== 3) throw new ReplyError('snapshot entry is not [type, data, ts]');
  const [type, data, ts] = body.value as [unknown, Value, unknown];
  if (typeof type !== 'string' || typeof ts !== 'number') throw new ReplyError('snapshot entry has a bad type or ts');
  return { seq, type, data, ts };
}

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Creates the Redis broker on a link the engine owns (it connects and closes it). */
export function createRedisBroker(opts: RedisBrokerOptions): RedisBroker {
  if (/[{}]/.test(opts.prefix)) throw new Error(`redis key prefix ${JSON.stringify(opts.prefix)} must not contain { or } (the session is the hash tag)`);
  const { link, prefix, log } = opts;
  const command = link.command;
  const subscriber = link.subscriber;
  const sharded = link.cluster;
  const publishCommand = sharded ? 'SPUBLISH' : 'PUBLISH';
  const maxSnapshotKeys = opts.maxSnapshotKeys ?? 65_535;
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  const deafAfterMs = opts.deafAfterMs ?? 3500;
  const ttl = String(opts.sessionTtlMs);

  const luas = [
    ['shardcastPublish', PUBLISH_SCRIPT],
    ['shardcastHistory', HISTORY_SCRIPT],
    ['shardcastPosition', POSITION_SCRIPT],
    ['shardcastTouch', TOUCH_SCRIPT],
    ['shardcastForget', FORGET_SCRIPT],
  ] as const;
  for (const [name, lua] of luas) command.defineCommand(name, { numberOfKeys: 1, lua });
  const scripts = command as unknown as Scripts;

  /**
   * Loads the scripts on every node before anything else runs on a new connection.
   * Otherwise the first calls after a (re)connect meet NOSCRIPT and ioredis resends
   * them with EVAL as their errors come back, which can reorder concurrent
   * publishes of one session: "in call order" would not hold.
   */
  function loadScripts(): void {
    const nodes = command instanceof Cluster ? command.nodes('master') : [command];
    for (const node of nodes) {
      for (const [, lua] of luas) node.script('LOAD', lua).catch((err: unknown) => log.warn({ err }, 'loading a redis script failed'));
    }
  }

  // Epoch candidates: unique per instance and call, hex first so never '-'-led.
  const epochStem = randomBytes(4).toString('hex');
  let epochCounter = 0;
  const candidate = () => `${epochStem}${(epochCounter++).toString(36)}`;

  const baseOf = (session: string) => `${prefix}{${session}}`;
  const channelOf = (session: string) => `${baseOf(session)}:c`;
  /** The session of a channel name: between `<prefix>{` and `}:c`. */
  const sessionOfChannel = (channel: Buffer) => channel.toString('utf8', prefix.length + 1, channel.length - 3);
  const args = (session: string) => [`${baseOf(session)}:m`, baseOf(session), ttl, candidate()];

  const subscribed = new Set<string>();
  let handler: BrokerHandler | null = null;
  let stopped = false;
  let started = false;

  // Heartbeats: channel → when it was last heard.
  const heartbeats = new Map<string, number>();
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let keepAliveTimer: NodeJS.Timeout | undefined;
  let deaf: string | undefined;
  const heartbeatFrame = unsequencedEnvelope(EnvelopeKind.Heartbeat, new Uint8Array(0));

  const sub = (channel: string) => (sharded ? (subscriber as Cluster).ssubscribe(channel) : (subscriber as Redis).subscribe(channel));
  const unsub = (channel: string) => (sharded ? (subscriber as Cluster).sunsubscribe(channel) : (subscriber as Redis).unsubscribe(channel));
  const pub = (channel: string, bytes: Buffer) => (sharded ? (command as Cluster).spublish(channel, bytes) : (command as Redis).publish(channel, bytes));

  function onMessage(channel: Buffer, bytes: Buffer): void {
    if (stopped || handler === null || bytes.length === 0) return;
    if (bytes[0] === EnvelopeKind.Heartbeat) {
      const name = channel.toString('utf8');
      if (heartbeats.has(name)) heartbeats.set(name, Date.now());
      return;
    }
    const session = sessionOfChannel(channel);
    if (!subscribed.has(session)) return;
    let msg: StreamMessage;
    try {
      msg = openEnvelope(session, bytes);
    } catch (err) {
      log.warn({ err, session }, 'dropped a message that is not a Shardcast envelope');
      return;
    }
    handler.message(msg);
  }

  let everReady = false;
  function onSubscriberReady(): void {
    for (const name of heartbeats.keys()) heartbeats.set(name, Date.now());
    if (everReady && !stopped) {
      // ioredis restores the subscriptions it knows of; subscribing again is
      // idempotent and also covers a channel it lost track of.
      for (const channel of [...heartbeats.keys(), ...[...subscribed].map(channelOf)]) {
        sub(channel).catch((err: unknown) => log.warn({ err, channel }, 'resubscribing failed'));
      }
      handler?.resubscribed();
    }
    everReady = true;
  }

  /** One heartbeat channel per master, so a deaf subscription to any node is noticed. */
  function heartbeatChannels(): string[] {
    const stem = `${prefix}{hb:${opts.instanceId}`;
    if (!(command instanceof Cluster)) return [`${stem}}:c`];
    const owners = new Set<string>();
    for (const slot of command.slots) if (slot?.[0] !== undefined) owners.add(slot[0]);
    const channels: string[] = [];
    for (let i = 0; owners.size > 0 && i < 100_000; i++) {
      const channel = `${stem}:${i}}:c`;
      const owner = command.slots[slotOf(channel)]?.[0];
      if (owner !== undefined && owners.delete(owner)) channels.push(channel);
    }
    return channels;
  }

  async function syncHeartbeatChannels(): Promise<void> {
    const wanted = new Set(heartbeatChannels());
    for (const name of [...heartbeats.keys()]) {
      if (!wanted.has(name)) {
        heartbeats.delete(name);
        await unsub(name).catch(() => {});
      }
    }
    for (const name of wanted) {
      if (heartbeats.has(name)) continue;
      heartbeats.set(name, Date.now());
      await sub(name);
    }
  }

  let rounds = 0;
  async function heartbeatRound(): Promise<void> {
    if (stopped || !link.connected()) return;
    if (++rounds % 10 === 0) await syncHeartbeatChannels().catch(() => {});
    const now = Date.now();
    const silent = [...heartbeats].filter(([, heard]) => now - heard > deafAfterMs).map(([name]) => name);
    if (silent.length > 0) {
      deaf = `redis subscription deaf: no heartbeat for ${deafAfterMs} ms on ${silent.length} channel(s)`;
      log.warn({ channels: silent }, 'redis subscription went deaf: reconnecting the subscriber');
      for (const name of heartbeats.keys()) heartbeats.set(name, now);
      link.resubscribe();
      return;
    }
    if (deaf !== undefined) {
      log.info('redis subscription hears again');
      deaf = undefined;
    }
    await Promise.all([...heartbeats.keys()].map((name) => pub(name, heartbeatFrame).catch(() => {})));
  }

  async function keepAliveRound(): Promise<void> {
    if (stopped || !link.connected()) return;
    await Promise.all([...subscribed].map((session) => scripts.shardcastTouch(...args(session)).catch(() => 0)));
  }

  function ensureRunning(): void {
    if (stopped) throw new Error('the broker is stopped: nothing can be stored');
  }

  const broker: RedisBroker = {
    async start(h) {
      handler = h;
      if (started) return;
      started = true;
      command.on('ready', loadScripts);
      if (command.status === 'ready') loadScripts();
      subscriber.on(sharded ? 'smessageBuffer' : 'messageBuffer', onMessage);
      subscriber.on('ready', onSubscriberReady);
      if (sharded) subscriber.on('subscribersReady', onSubscriberReady);
      if (subscriber.status === 'ready') onSubscriberReady();
      await syncHeartbeatChannels();
      heartbeatTimer = setInterval(() => void heartbeatRound(), heartbeatMs);
      heartbeatTimer.unref();
      // Sessions this instance streams stay alive even when nothing is published.
      keepAliveTimer = setInterval(() => void keepAliveRound(), Math.max(100, Math.min(60_000, Math.floor(opts.sessionTtlMs / 4))));
      keepAliveTimer.unref();
    },

    async publish(req: PublishRequest): Promise<PublishResult> {
      ensureRunning();
      const ts = Date.now();
      // The script only puts seq and epoch between the template's head and tail.
      const template = templateOf(req, ts);
      const conflateKey = req.conflate && req.snapshot !== undefined ? req.snapshot : undefined;
      const historySize = opts.historySizeFor(req.session);
      const snapshotArgs: Array<string | Buffer> =
        req.snapshot === undefined ? ['', ''] : [req.snapshot, toBuffer(encode(exactIntegers([req.type, req.data, ts])))];
      const reply = await scripts.shardcastPublish(
        ...args(req.session),
        req.id ?? '',
        toBuffer(template.head),
        toBuffer(template.tail),
        toBuffer(envelopeMeta(req.to, conflateKey, req.at)),
        historySize,
        Math.max(1000, historySize),
        ...snapshotArgs,
        maxSnapshotKeys,
        publishCommand,
        req.to === undefined ? 'all' : 'to',
        req.at === undefined ? '' : String(req.at),
        ...(req.to !== undefined && req.snapshot !== undefined ? req.to : []),
      );
      const seq = asNumber(reply[0], 'seq');
      if (seq === -1) {
        const who = asBuffer(reply[1], 'refusal').toString();
        throw new PublishRefused(
          who === 'session'
            ? `session ${req.session} already has ${maxSnapshotKeys} snapshot keys (maxSnapshotKeys): reuse a key`
            : `user ${asBuffer(reply[2], 'user').toString()} already has ${maxSnapshotKeys} own snapshot keys in session ${req.session} (maxSnapshotKeys): reuse a key`,
        );
      }
      const epoch = asBuffer(reply[1], 'epoch').toString();
      const duplicate = asNumber(reply[2], 'duplicate') === 1;
      // This instance's own subscribers need not wait for the Pub/Sub copy: the frame
      // is assembled here exactly as the script did (test/conformance pins the bytes).
      if (!duplicate && handler?.ownEvent !== undefined && subscribed.has(req.session)) {
        const msg: StreamMessage = { session: req.session, epoch, seq, frame: assembleEvent(template, seq, epoch) };
        if (req.to !== undefined) msg.to = req.to;
        if (conflateKey !== undefined) msg.conflateKey = conflateKey;
        if (req.at !== undefined) msg.at = req.at;
        handler.ownEvent(msg);
      }
      return { seq, epoch, duplicate };
    },

    async notice(session, frame) {
      ensureRunning();
      await pub(channelOf(session), unsequencedEnvelope(EnvelopeKind.Notice, frame));
    },

    async history(session: string, since: StreamPosition | null, user?: string): Promise<HistoryRead> {
      ensureRunning();
      const reply = await scripts.shardcastHistoryBuffer(
        ...args(session),
        since?.epoch ?? '',
        since?.seq ?? 0,
        user === undefined ? '0' : '1',
        user ?? '',
      );
      const epoch = asBuffer(reply[0], 'epoch').toString();
      const head = asNumber(reply[1], 'head');
      const complete = asNumber(reply[2], 'complete') === 1;
      const entries = asArray(reply[3], 'entries').map((e) => openEnvelope(session, asBuffer(e, 'history entry')));
      const read: HistoryRead = { epoch, head, complete, entries };
      if (!complete && user !== undefined) {
        const flat = asArray(reply[4], 'snapshot');
        const snapshot: Record<string, SnapshotEntry> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) snapshot[asBuffer(flat[i], 'snapshot key').toString()] = openEntry(asBuffer(flat[i + 1], 'snapshot entry'));
        read.snapshot = snapshot;
      }
      return read;
    },

    async position(session: string, now = Date.now()): Promise<SessionPosition> {
      ensureRunning();
      const reply = await scripts.shardcastPosition(...args(session), now);
      const pos: SessionPosition = { s: session, ep: asBuffer(reply[0], 'epoch').toString(), seq: asNumber(reply[1], 'seq') };
      const heldFrom = asNumber(reply[2], 'heldFrom');
      if (heldFrom > 0) pos.heldFrom = heldFrom;
      return pos;
    },

    async subscribe(session: string) {
      ensureRunning();
      subscribed.add(session);
      try {
        await sub(channelOf(session));
      } catch (err) {
        subscribed.delete(session);
        throw err;
      }
    },

    async unsubscribe(session: string) {
      subscribed.delete(session);
      if (stopped) return;
      await unsub(channelOf(session));
    },

    health(): BrokerHealth {
      if (stopped) return { ok: false, detail: 'stopped' };
      if (deaf !== undefined) return { ok: false, detail: deaf };
      if (!link.connected()) return { ok: false, detail: link.detail() ?? 'redis: not connected' };
      return { ok: true };
    },

    async stop() {
      stopped = true;
      clearInterval(heartbeatTimer);
      clearInterval(keepAliveTimer);
      subscriber.off(sharded ? 'smessageBuffer' : 'messageBuffer', onMessage);
      subscriber.off('ready', onSubscriberReady);
      command.off('ready', loadScripts);
      if (sharded) subscriber.off('subscribersReady', onSubscriberReady);
      subscribed.clear();
      handler = null;
    },

    async resetEpoch(session: string) {
      ensureRunning();
      await scripts.shardcastForget(...args(session));
    },
  };
  return broker;
}
