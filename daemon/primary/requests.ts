/**
 * Answers shard requests on the primary thread. Each answer is a `reply` with the
 * request's id; failures carry a protocol error code the shard passes to the client.
 */
import { ErrorCode } from '../../protocol/codes.js';
import { commandLimitFor, namespaceFor } from '../config/namespaces.js';
import { PublishRefused, type HistoryRead } from '../engine/broker.js';
import { UnstorableCommandError } from '../engine/postgres-command-journal.js';
import { relayedUpstream } from '../egress/command-relay.js';
import type { PrimaryToShard, RequestName, ShardRequest, ShardRequests } from '../threads/messages.js';
import type { Primary } from './primary.js';
import type { ShardLink } from './shard-link.js';
import { packFrames } from '../threads/frame-list.js';

type Handler<K extends RequestName> = (
  primary: Primary,
  args: ShardRequests[K]['args'],
  link: ShardLink,
) => Promise<ShardRequests[K]['result']>;

/** A join's replay, packed to cross to the shard (frame-list.ts), and its frame bytes. */
interface Replay {
  packed: SharedArrayBuffer;
  bytes: number;
}
const NO_REPLAY: Replay = { packed: new SharedArrayBuffer(0), bytes: 0 };

/**
 * Replays of shared reads (joins from one position share one read, session-streams.ts)
 * that every user sees whole: packed once, the same shared buffer for every join.
 */
const sharedReplays = new WeakMap<HistoryRead, Replay>();

/** The frames of `read` that `user` may see, packed. */
function replayOf(read: HistoryRead, user: string): Replay {
  const cached = sharedReplays.get(read);
  if (cached !== undefined) return cached;
  const addressed = read.entries.some((e) => e.to !== undefined);
  const frames = (addressed ? read.entries.filter((e) => e.to === undefined || e.to.includes(user)) : read.entries).map((e) => e.frame);
  let bytes = 0;
  for (const f of frames) bytes += f.length;
  const replay = { packed: packFrames(frames), bytes };
  if (!addressed) sharedReplays.set(read, replay);
  return replay;
}

const handlers: { [K in RequestName]: Handler<K> } = {
  async history(primary, args, link) {
    const presenceIncarnation = args.trackPresence ? await primary.presence.join(args.session, args.user, link.id) : undefined;
    // Through the session's stream: every frame up to the head is forwarded to the
    // shards before this reply, which follows them on the port (session-streams.ts).
    let read = await primary.streams.join(args.session, args.since, args.user);
    let replay = replayOf(read, args.user);
    if (read.complete && !primary.replayBudgets.take(args.user, replay.bytes, Date.now())) {
      // A replay past the join's or the user's budget: the latest state instead (SPEC §8).
      read = await primary.streams.join(args.session, null, args.user);
      replay = NO_REPLAY;
    }
    const result: ShardRequests['history']['result'] = {
      epoch: read.epoch,
      head: read.head,
      recovered: read.complete,
      replay: replay.packed,
    };
    if (read.snapshot !== undefined) result.snapshot = read.snapshot;
    if (presenceIncarnation !== undefined) result.presenceIncarnation = presenceIncarnation;
    if (args.listPresence) result.presence = (await primary.presence.list(args.session, primary.config.maxPresenceList)).users;
    return result;
  },
  async publish(primary, args) {
    const settled = await primary.sequence(args.events);
    const results = [];
    for (const outcome of settled) {
      if (outcome.status === 'fulfilled') {
        results.push(outcome.value);
        continue;
      }
      const err: unknown = outcome.reason;
      if (err instanceof PublishRefused) throw new RequestError(ErrorCode.PayloadTooLarge, err.message);
      throw err;
    }
    return results;
  },
  async command(primary, args) {
    const cmd = args.command;
    const ns = namespaceFor(primary.config, cmd.session);
    const limit = commandLimitFor(ns, cmd.type);
    if (limit !== undefined) {
      const bucket = Object.hasOwn(ns.commandLimits, cmd.type) ? cmd.type : '*';
      const verdict = await primary.engine.limiter.take(`${ns.prefix}\u0000${bucket}\u0000${cmd.user}`, limit);
      if (!verdict.ok) {
        throw new RequestError(
          ErrorCode.RateLimited,
          `"${cmd.type}" commands are limited to ${limit.burst} at once and ${limit.perMinute} per minute per user here: retry after ${verdict.retryAfterMs} ms`,
          verdict.retryAfterMs,
        );
      }
    }
    let recorded;
    try {
      recorded = await primary.engine.journal.record(cmd);
    } catch (err) {
      // Never storable (e.g. a NUL in a field): a retry cannot help.
      if (err instanceof UnstorableCommandError) throw new RequestError(ErrorCode.BadRequest, err.message);
      throw err;
    }
    const { duplicate, pos } = recorded;
    const relay = primary.relay;
    if (relay !== undefined) {
      relay.notify();
      // Without a durable journal the command is safe only once RabbitMQ confirmed
      // it: the ack waits for the relay (a retry with the same cid waits the same way).
      if (!primary.engine.journalDurable) await relayedUpstream(primary.engine.journal, relay, cmd, pos, COMMAND_RELAY_WAIT_MS);
    }
    return { duplicate };
  },
  async presence(primary, args) {
    return primary.presence.list(args.session, primary.config.maxPresenceList);
  },
  async commands(primary, args) {
    // A reader asking for what comes after a position has taken what is before it;
    // with a RabbitMQ relay, only the relay's confirms count (an HTTP reader ahead of
    // it must not let a command go before it was relayed).
    if (primary.relay === undefined) primary.engine.journal.taken(args.after);
    // Bounded by bytes too, and left encoded: the shard that answers decodes the page
    // and turns it into JSON in turn with its other work; the primary (every publish
    // waits behind it) only copies bytes.
    return primary.engine.journal.readEncoded(args.after, args.limit, MAX_COMMANDS_PAGE_BYTES);
  },
  async admit(primary, args, link) {
    return primary.admissions.admit(link.id, args.user, args.conn);
  },
  async crash(primary, args) {
    if (!primary.config.testHooks) throw new RequestError(ErrorCode.Forbidden, 'test hooks are disabled');
    const target = primary.supervisor.link(args.shard);
    if (!target) return { crashed: false };
    // After this reply has left: the request may have come in through the very
    // shard that is to crash, and its HTTP answer must get out first.
    setTimeout(() => {
      if (primary.supervisor.link(args.shard) === target) target.send({ op: 'crash' });
    }, 100);
    return { crashed: true };
  },
  async resetEpoch(primary, args) {
    const faults = primary.config.testHooks ? primary.engine.faults : undefined;
    if (!faults) throw new RequestError(ErrorCode.Forbidden, 'test hooks are disabled');
    await faults.resetEpoch(args.session);
    return { reset: true };
  },
};

/** Longest a command's ack waits for RabbitMQ's confirm (below the shard's 10 s call timeout). */
const COMMAND_RELAY_WAIT_MS = 8000;

/** About the most command data one GET /v1/commands page carries (at least one command). */
export const MAX_COMMANDS_PAGE_BYTES = 1024 * 1024;

/** A request failure with the protocol error code to report. */
export class RequestError extends Error {
  /** `after`: milliseconds the client should wait before retrying (a rate limit). */
  constructor(readonly code: number, message: string, readonly after?: number) {
    super(message);
  }
}

/** When each request kind last logged a failure: an outage fails every request, one line per 10 s is enough. */
const lastFailureLog = new Map<string, number>();
const FAILURE_LOG_EVERY_MS = 10_000;

function shouldLog(name: string): boolean {
  const now = Date.now();
  if (now - (lastFailureLog.get(name) ?? 0) < FAILURE_LOG_EVERY_MS) return false;
  lastFailureLog.set(name, now);
  return true;
}

/** Runs one shard request and posts the reply to that shard. */
export async function handleShardRequest(primary: Primary, link: ShardLink, msg: ShardRequest): Promise<void> {
  let reply: PrimaryToShard;
  try {
    const handler = handlers[msg.name] as Handler<RequestName>;
    const result = await handler(primary, msg.args, link);
    reply = { op: 'reply', req: msg.req, ok: true, result };
  } catch (err) {
    const code = err instanceof RequestError ? err.code : ErrorCode.Unavailable;
    const message = err instanceof Error ? err.message : String(err);
    if (!(err instanceof RequestError) && shouldLog(msg.name)) primary.log.error({ err, request: msg.name }, 'shard request failed (logged once per 10 s per request kind)');
    reply = { op: 'reply', req: msg.req, ok: false, code, message, ...(err instanceof RequestError && err.after !== undefined ? { after: err.after } : {}) };
  }
  // The shard may have crashed meanwhile; a reply to a dead thread goes nowhere.
  if (primary.supervisor.link(link.id) === link) link.send(reply);
}
