/**
 * Answers shard requests on the primary thread. Each answer is a `reply` with the
 * request's id; failures carry a protocol error code the shard passes to the client.
 */
import { ErrorCode } from '../../protocol/codes.js';
import { namespaceFor } from '../config/namespaces.js';
import type { PrimaryToShard, RequestName, ShardRequest, ShardRequests } from '../threads/messages.js';
import type { Primary } from './primary.js';
import type { ShardLink } from './shard-link.js';

type Handler<K extends RequestName> = (
  primary: Primary,
  args: ShardRequests[K]['args'],
  link: ShardLink,
) => Promise<ShardRequests[K]['result']>;

const handlers: { [K in RequestName]: Handler<K> } = {
  async history(primary, args, link) {
    if (args.trackPresence) await primary.presenceJoin(args.session, args.user, link.id);
    // Frames published after the bus subscription is in effect reach the shard, so
    // reading history only after it leaves no gap between replay and live frames.
    await primary.router.settled(args.session);
    const result = await primary.engine.sequencer.history(args.session, args.since, args.user);
    if (!args.listPresence) return result;
    return { ...result, presence: await primary.engine.presence.list(args.session) };
  },
  async publish(primary, args) {
    const results = [];
    for (const event of args.events) {
      // Conflation is the namespace's call: elsewhere the flag is dropped and the
      // frame is delivered like any other.
      const allowed = !event.conflate || namespaceFor(primary.config, event.session).conflate;
      results.push(await primary.engine.sequencer.publish(allowed ? event : { ...event, conflate: undefined }));
    }
    return results;
  },
  async command(primary, args) {
    const { duplicate } = await primary.engine.journal.record(args.command);
    return { duplicate };
  },
  async presence(primary, args) {
    return primary.engine.presence.list(args.session);
  },
  async commands(primary, args) {
    return primary.engine.journal.read(args.after, args.limit);
  },
  async admit(primary, args, link) {
    return primary.admissions.admit(link.id, args.user);
  },
  async crash(primary, args) {
    if (!primary.config.testHooks) throw new RequestError(ErrorCode.Forbidden, 'test hooks are disabled');
    const target = primary.supervisor.link(args.shard);
    if (!target) return { crashed: false };
    target.send({ op: 'crash' });
    return { crashed: true };
  },
};

/** A request failure with the protocol error code to report. */
export class RequestError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
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
    if (!(err instanceof RequestError)) primary.log.error({ err, request: msg.name }, 'shard request failed');
    reply = { op: 'reply', req: msg.req, ok: false, code, message };
  }
  // The shard may have crashed meanwhile; a reply to a dead thread goes nowhere.
  if (primary.supervisor.link(link.id) === link) link.send(reply);
}
