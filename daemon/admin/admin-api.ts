/**
 * The admin API's endpoints (docs/admin.md): instance status, per-shard figures,
 * sessions, connections, kick, drain, a live tail of a session, the cluster view
 * and /metrics. Reads the primary through AdminContext (a narrow view, not the
 * Primary itself) and the shards through admin queries. Runs on the primary thread.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { decode } from '../../protocol/codec.js';
import { SESSION_ID_PATTERN } from '../../protocol/frames.js';
import type { ResumePoint } from '../../protocol/frames.js';
import type { StreamMessage } from '../engine/broker.js';
import type { ShardLink } from '../primary/shard-link.js';
import type { AuditTrail } from './audit.js';
import { AdminError, type AdminReply, type AdminRequest, type AdminRouter } from './admin-server.js';
import type { InstanceInfo } from './cluster-registry.js';
import type { InstanceFigures, InstanceMetrics } from './metrics.js';
import type { TailHub } from './session-tail.js';
import type { ShardQueryClient } from './shard-queries.js';
import type { ConnectionFigures, ConnectionFilter, ShardSessionFigures, ShardStats } from './shard-query.js';

/** What the admin API reads from and asks of the primary. */
export interface AdminContext {
  log: Logger;
  instanceId: string;
  version: string;
  engineKind: string;
  /** When the admin side started (the instance's start, ms). */
  startedAt(): number;
  /** Client port and shard count as configured. */
  port(): number;
  configuredShards: number;
  ready(): boolean;
  draining(): boolean;
  links(): Iterable<ShardLink>;
  queries: ShardQueryClient;
  admittedConnections(): number;
  streamedSessions(): number;
  streamCounters(): InstanceFigures['streams'];
  /** The session's position in the broker (head seq and epoch). */
  position(session: string): Promise<ResumePoint>;
  /** Users present in the session (first `max`) and how many in all. */
  presence(session: string, max: number): Promise<{ users: Array<{ u: string }>; total: number }>;
  /** Events the session's namespace keeps for resume. */
  historySize(session: string): number;
  /** Drains the whole instance (as SIGTERM does). */
  drainInstance(): void;
  /** Drains one shard; throws AdminError when it cannot. */
  drainShard(shard: number): void;
  tails: TailHub;
  metrics: InstanceMetrics;
  /** RabbitMQ ingress counters (undefined without RabbitMQ). */
  amqpCounters(): InstanceFigures['amqp'];
  /** The command relay's cursor while it runs here (undefined otherwise). */
  relayPosition(): number | undefined;
  /** The command journal's head position (undefined when it did not answer in time). */
  journalHead(): Promise<number | undefined>;
  /** Metric label of each namespace, by namespace index. */
  namespaceLabels: readonly string[];
  /** Frames the session streams dropped, by reason and namespace index. */
  streamDrops(): InstanceFigures['streamDrops'];
  /** Seconds one Redis round trip takes (undefined without Redis or when it fails). */
  redisPing(): Promise<number | undefined>;
  /** Instances registered in Redis (undefined without Redis). */
  clusterInstances(): Promise<InstanceInfo[] | undefined>;
  audit: AuditTrail;
}

/** Default and largest `top` of the sessions list; largest `limit` of the connections list. */
const DEFAULT_TOP = 20;
const MAX_TOP = 1000;
const DEFAULT_CONN_LIMIT = 100;
const MAX_CONN_LIMIT = 10_000;
const MAX_REASON_LENGTH = 100;
/** A tail whose reader falls this far behind is ended rather than buffered without bound. */
const TAIL_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

const SESSION_PATH = /^\/v1\/admin\/sessions\/([^/]+)(\/tail)?$/;

/** Builds the router of the admin API over `ctx`. */
export function adminRouter(ctx: AdminContext): AdminRouter {
  return async (req) => {
    const { method, path } = req;
    const route = `${method} ${path}`;
    switch (route) {
      case 'GET /metrics':
        return { stream: (res) => void renderMetrics(ctx, res) };
      case 'GET /v1/admin/status':
        return ok(await status(ctx));
      case 'GET /v1/admin/shards':
        return ok(await shards(ctx));
      case 'GET /v1/admin/sessions':
        return ok(await sessions(ctx, intParam(req.query, 'top', DEFAULT_TOP, 1, MAX_TOP)));
      case 'GET /v1/admin/connections':
        return ok(await connections(ctx, req.query));
      case 'POST /v1/admin/kick':
        return ok(await kick(ctx, req));
      case 'POST /v1/admin/drain':
        return { status: 202, body: await drain(ctx, req) };
      case 'GET /v1/admin/instances':
        return ok(await instances(ctx));
    }
    const m = SESSION_PATH.exec(path);
    if (m !== null) {
      if (method !== 'GET') throw new AdminError(405, 'method_not_allowed', `${path} takes GET`);
      const session = sessionParam(decodeURIComponent(m[1]));
      return m[2] === undefined ? ok(await sessionDetail(ctx, session)) : tail(ctx, session, req);
    }
    const known = ['/metrics', '/v1/admin/status', '/v1/admin/shards', '/v1/admin/sessions', '/v1/admin/connections', '/v1/admin/kick', '/v1/admin/drain', '/v1/admin/instances'];
    if (known.includes(path)) throw new AdminError(405, 'method_not_allowed', `${method} is not allowed on ${path} (see docs/admin.md)`);
    throw new AdminError(404, 'not_found', `no admin route ${method} ${path} (see docs/admin.md)`);
  };
}

const ok = (body: unknown): AdminReply => ({ status: 200, body });

function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^[0-9]{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new AdminError(400, 'invalid_request', `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function sessionParam(session: string): string {
  if (!SESSION_ID_PATTERN.test(session)) throw new AdminError(400, 'invalid_request', `not a session id: ${JSON.stringify(session.slice(0, 200))}`);
  return session;
}

/** The answers that came, and the shards that did not answer (named in the response). */
function split<T>(answers: Array<{ shard: number; ok: true; result: T } | { shard: number; ok: false; error: string }>): { results: Array<{ shard: number; result: T }>; unanswered: Array<{ shard: number; error: string }> } {
  const results: Array<{ shard: number; result: T }> = [];
  const unanswered: Array<{ shard: number; error: string }> = [];
  for (const a of answers) {
    if (a.ok) results.push({ shard: a.shard, result: a.result });
    else unanswered.push({ shard: a.shard, error: a.error });
  }
  return { results, unanswered };
}

async function status(ctx: AdminContext) {
  return {
    instance: ctx.instanceId,
    version: ctx.version,
    engine: ctx.engineKind,
    startedAt: new Date(ctx.startedAt()).toISOString(),
    uptimeS: Math.round((Date.now() - ctx.startedAt()) / 1000),
    ready: ctx.ready(),
    draining: ctx.draining(),
    port: ctx.port(),
    shards: { configured: ctx.configuredShards, live: [...ctx.links()].length },
    connections: ctx.admittedConnections(),
    streamedSessions: ctx.streamedSessions(),
    pid: process.pid,
    node: process.version,
  };
}

async function shardStats(ctx: AdminContext): Promise<{ shards: ShardStats[]; unanswered: Array<{ shard: number; error: string }> }> {
  const { results, unanswered } = split(await ctx.queries.askAll(ctx.links(), 'stats', {}));
  return { shards: results.map((r) => r.result), unanswered };
}

async function shards(ctx: AdminContext) {
  const { shards: stats, unanswered } = await shardStats(ctx);
  // Drops by namespace index are for /metrics, which names the namespaces; here the totals say enough.
  const shards = stats.map(({ counters: { drops: _drops, ...counters }, ...s }) => ({ ...s, counters }));
  return { instance: ctx.instanceId, shards, unanswered };
}

/** One session across this instance's shards. */
export interface SessionFigures {
  session: string;
  subscribers: number;
  /** Subscribers by shard id. */
  perShard: Record<string, number>;
  joining: number;
  lagging: number;
  seq: number;
  epoch: string;
}

/** One row of GET /v1/admin/sessions: the session's figures with its history length and presence count (null when presence could not be read). */
export interface SessionRow extends SessionFigures {
  historyLength: number;
  presence: number | null;
}

async function localSessions(ctx: AdminContext): Promise<{ sessions: Map<string, SessionFigures>; unanswered: Array<{ shard: number; error: string }> }> {
  const { results, unanswered } = split(await ctx.queries.askAll(ctx.links(), 'sessions', {}));
  const sessions = new Map<string, SessionFigures>();
  for (const { shard, result } of results) {
    for (const s of result as ShardSessionFigures[]) {
      let f = sessions.get(s.session);
      if (f === undefined) sessions.set(s.session, (f = { session: s.session, subscribers: 0, perShard: {}, joining: 0, lagging: 0, seq: 0, epoch: s.epoch }));
      f.subscribers += s.subscribers;
      f.perShard[String(shard)] = s.subscribers;
      f.joining += s.joining;
      f.lagging += s.lagging;
      if (s.seq >= f.seq) {
        f.seq = s.seq;
        if (s.epoch !== '') f.epoch = s.epoch;
      }
    }
  }
  return { sessions, unanswered };
}

async function sessions(ctx: AdminContext, top: number) {
  const { sessions: all, unanswered } = await localSessions(ctx);
  const sorted = [...all.values()].sort((a, b) => b.subscribers - a.subscribers || a.session.localeCompare(b.session)).slice(0, top);
  const rows = await Promise.all(
    sorted.map(async (s): Promise<SessionRow> => ({
      ...s,
      historyLength: Math.min(s.seq, ctx.historySize(s.session)),
      presence: await ctx.presence(s.session, 0).then((p) => p.total, () => null),
    })),
  );
  return { instance: ctx.instanceId, total: all.size, top, sessions: rows, unanswered };
}

async function sessionDetail(ctx: AdminContext, session: string) {
  const { sessions: all, unanswered } = await localSessions(ctx);
  const local = all.get(session);
  const position = await ctx.position(session);
  if (local === undefined && position.seq === 0) {
    throw new AdminError(404, 'unknown_session', `session ${session} has no subscribers on this instance and no events`);
  }
  const presence = await ctx.presence(session, 100).catch(() => null);
  const conns = split(await ctx.queries.askAll(ctx.links(), 'connections', { filter: { session }, limit: 100 }));
  return {
    instance: ctx.instanceId,
    session,
    epoch: position.ep,
    head: position.seq,
    historyLength: Math.min(position.seq, ctx.historySize(session)),
    historySize: ctx.historySize(session),
    subscribers: local?.subscribers ?? 0,
    perShard: local?.perShard ?? {},
    joining: local?.joining ?? 0,
    lagging: local?.lagging ?? 0,
    routedSeq: local?.seq ?? 0,
    presence: presence === null ? null : { total: presence.total, users: presence.users.map((u) => u.u) },
    connections: conns.results.flatMap((r) => r.result.connections),
    unanswered: [...unanswered, ...conns.unanswered],
  };
}

function filterOf(query: URLSearchParams | Record<string, unknown>): ConnectionFilter {
  const get = (k: string): unknown => (query instanceof URLSearchParams ? (query.get(k) ?? undefined) : query[k]);
  const filter: ConnectionFilter = {};
  for (const key of ['session', 'user', 'conn'] as const) {
    const v = get(key);
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string' || v.length > 256) throw new AdminError(400, 'invalid_request', `${key} must be a string of at most 256 characters`);
    filter[key] = v;
  }
  return filter;
}

async function connections(ctx: AdminContext, query: URLSearchParams) {
  const filter = filterOf(query);
  const limit = intParam(query, 'limit', DEFAULT_CONN_LIMIT, 1, MAX_CONN_LIMIT);
  const { results, unanswered } = split(await ctx.queries.askAll(ctx.links(), 'connections', { filter, limit }));
  const list: ConnectionFigures[] = results.flatMap((r) => r.result.connections).slice(0, limit);
  const total = results.reduce((n, r) => n + r.result.total, 0);
  return { instance: ctx.instanceId, filter, total, connections: list, unanswered };
}

function objectBody(req: AdminRequest): Record<string, unknown> {
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) throw new AdminError(400, 'invalid_body', 'the body must be a JSON object');
  return req.body as Record<string, unknown>;
}

async function kick(ctx: AdminContext, req: AdminRequest) {
  const body = objectBody(req);
  const filter = filterOf(body);
  if ((filter.user === undefined) === (filter.conn === undefined) || filter.session !== undefined) {
    throw new AdminError(400, 'invalid_request', 'kick takes exactly one of "user" (every connection of that user) or "conn" (one connection id)');
  }
  const reason = body.reason === undefined ? 'kicked by an admin' : body.reason;
  if (typeof reason !== 'string' || reason.length === 0 || reason.length > MAX_REASON_LENGTH) {
    throw new AdminError(400, 'invalid_request', `reason must be a non-empty string of at most ${MAX_REASON_LENGTH} characters`);
  }
  const target = filter.user !== undefined ? `user:${filter.user}` : `conn:${filter.conn}`;
  const { results, unanswered } = split(await ctx.queries.askAll(ctx.links(), 'kick', { filter, reason }));
  const kicked = results.flatMap((r) => r.result.kicked);
  await ctx.audit.record({ action: 'kick', target, reason, remote: req.remote, outcome: `kicked ${kicked.length}` });
  if (kicked.length === 0 && unanswered.length === 0) {
    throw new AdminError(404, 'not_found', `no open connection matches ${target} on this instance`);
  }
  return { instance: ctx.instanceId, kicked, closeCode: 4505, unanswered };
}

async function drain(ctx: AdminContext, req: AdminRequest) {
  const body = objectBody(req);
  const reason = typeof body.reason === 'string' && body.reason !== '' ? body.reason.slice(0, MAX_REASON_LENGTH) : 'admin drain';
  if (body.shard === undefined || body.shard === null) {
    if (ctx.draining()) throw new AdminError(409, 'already_draining', 'the instance is already draining');
    await ctx.audit.record({ action: 'drain', target: 'instance', reason, remote: req.remote, outcome: 'accepted' });
    ctx.drainInstance();
    return { instance: ctx.instanceId, draining: 'instance' };
  }
  if (typeof body.shard !== 'number' || !Number.isInteger(body.shard) || body.shard < 0) {
    throw new AdminError(400, 'invalid_request', `shard must be a shard id (a whole number ≥ 0), got ${JSON.stringify(body.shard)}`);
  }
  const shard = body.shard;
  try {
    ctx.drainShard(shard);
  } catch (err) {
    if (err instanceof AdminError) await ctx.audit.record({ action: 'drain', target: `shard:${shard}`, reason, remote: req.remote, outcome: `refused: ${err.message}` });
    throw err;
  }
  await ctx.audit.record({ action: 'drain', target: `shard:${shard}`, reason, remote: req.remote, outcome: 'accepted' });
  return { instance: ctx.instanceId, draining: 'shard', shard };
}

async function instances(ctx: AdminContext) {
  const list = await ctx.clusterInstances();
  if (list === undefined) {
    return { registry: false, instances: [{ instance: ctx.instanceId, version: ctx.version, startedAt: new Date(ctx.startedAt()).toISOString(), self: true }] };
  }
  return { registry: true, instances: list.map((i) => ({ ...i, self: i.instance === ctx.instanceId })) };
}

async function renderMetrics(ctx: AdminContext, res: ServerResponse): Promise<void> {
  try {
    // The relay's position is read below, once the head has arrived: the backlog is
    // the head's moment's, less what the relay delivered during the read (never below 0).
    const [{ shards: stats }, redisPingSeconds, journalHead] = await Promise.all([shardStats(ctx), ctx.redisPing(), ctx.journalHead()]);
    const text = await ctx.metrics.render(
      {
        instance: ctx.instanceId,
        version: ctx.version,
        engine: ctx.engineKind,
        ready: ctx.ready(),
        draining: ctx.draining(),
        liveShards: [...ctx.links()].length,
        admittedConnections: ctx.admittedConnections(),
        streamedSessions: ctx.streamedSessions(),
        streams: ctx.streamCounters(),
        namespaces: ctx.namespaceLabels,
        streamDrops: ctx.streamDrops(),
        ...(journalHead !== undefined ? { journalHead } : {}),
        ...(redisPingSeconds !== undefined ? { redisPingSeconds } : {}),
        ...(ctx.amqpCounters() !== undefined ? { amqp: ctx.amqpCounters() } : {}),
        ...(ctx.relayPosition() !== undefined ? { relayPosition: ctx.relayPosition() } : {}),
      },
      stats,
    );
    res.writeHead(200, { 'content-type': ctx.metrics.contentType });
    res.end(text);
  } catch (err) {
    ctx.log.error({ err }, 'metrics could not be rendered');
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('metrics could not be rendered\n');
  }
}

/** JSON has no binary type: bytes become {"$base64": "..."} (as in the HTTP API). */
function binAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? { $base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') } : value;
}

function tail(ctx: AdminContext, session: string, req: AdminRequest): AdminReply {
  // A drain stops the session streams: a tail started now would hold one open on a stopping engine.
  if (ctx.draining()) throw new AdminError(409, 'already_draining', 'the instance is draining: tail another instance');
  return {
    stream: (res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      const write = (line: unknown) => {
        res.write(`${JSON.stringify(line, binAsBase64)}\n`);
        if (res.writableLength > TAIL_MAX_BUFFERED_BYTES) {
          res.end(`${JSON.stringify({ t: 'end', reason: 'the reader fell too far behind' })}\n`);
          stop();
        }
      };
      const stop = ctx.tails.add(session, {
        frame(msg: StreamMessage) {
          const decoded = decode(msg.frame);
          write({ t: 'frame', seq: msg.seq, epoch: msg.epoch, ...(msg.to !== undefined ? { to: msg.to } : {}), frame: decoded.ok ? decoded.value : { undecodable: decoded.reason } });
        },
        resync(epoch: string, head: number) {
          write({ t: 'resync', epoch, seq: head });
        },
      });
      write({ t: 'tailing', session, instance: ctx.instanceId });
      req.signal.addEventListener('abort', stop, { once: true });
      res.once('close', stop);
    },
  };
}
