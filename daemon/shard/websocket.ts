/**
 * The WebSocket endpoint of a shard: upgrade (origin, subprotocol, token), open
 * (limits, hello), messages, drain and close. Refusals are delivered as close codes
 * right after the upgrade, because browsers cannot read an HTTP status from a
 * failed upgrade but can read a close code.
 */
import { randomBytes } from 'node:crypto';
import { encodeServerFrame } from '../../protocol/codec.js';
import { CloseCode } from '../../protocol/codes.js';
import { PROTOCOL_VERSION, SUBPROTOCOL } from '../../protocol/frames.js';
import type { ClientLimits } from '../../protocol/validate.js';
import { authenticate } from '../auth/authenticate.js';
import type { Logger } from '../log.js';
import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from '../uws.js';
import { closeSocket, Connection, type SocketData } from './connection.js';
import { pumpQueue } from './delivery.js';
import { IdleWatch } from './idle.js';
import { backstopBytes, type BufferPolicy } from './slow-consumers.js';
import { failConnection, handleMessage, type RequestContext } from './client-requests.js';
import { countRefusal, refusals } from './shard-counters.js';
import { HeavyFrames } from './heavy-frames.js';
import type { TurnScheduler } from './turn-scheduler.js';

/** What the endpoint needs from the shard. */
export interface EndpointContext extends RequestContext {
  log: Logger;
  limits: ClientLimits;
  /** False while draining: new connections are turned away with 1001. */
  accepting(): boolean;
  policy: BufferPolicy;
  /** The shard's queue of heavy work (turn-scheduler.ts). */
  scheduler: TurnScheduler;
}

const instanceTag = randomBytes(3).toString('hex');

/**
 * Picks the subprotocol to answer with. When only other shardcast versions are
 * offered, one of them is still selected (a browser fails a handshake whose answer
 * selects none of its offers, and would then see only 1006) and `refuse` says why
 * the connection is closed with 4504 right after.
 */
export function negotiateSubprotocol(offered: string): { selected: string; refuse?: string } {
  const list = offered.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (list.length === 0) return { selected: '' };
  if (list.includes(SUBPROTOCOL)) return { selected: SUBPROTOCOL };
  const ours = list.filter((p) => p.startsWith('shardcast.'));
  if (ours.length > 0) {
    return { selected: ours[0], refuse: `unsupported protocol ${ours.join(', ')}: this server speaks ${SUBPROTOCOL}` };
  }
  // Foreign subprotocols only: speak v1 without selecting one.
  return { selected: '' };
}

function originAllowed(allowed: readonly string[], origin: string): boolean {
  return allowed.length === 0 || origin === '' || allowed.includes(origin);
}

/** Prefix of the subprotocol that carries a token (SPEC §3): `bearer.<token>`. */
const BEARER_PROTOCOL = 'bearer.';

/**
 * The token of an upgrade: the Authorization header, else a `bearer.<token>`
 * subprotocol (how browsers keep it out of URLs and logs), else the `token` query
 * parameter. The bearer entry is never selected as the answer's subprotocol.
 */
export function tokenOf(authorization: string, protocols: string, query: string | undefined): string | undefined {
  if (authorization.startsWith('Bearer ')) return authorization.slice(7).trim();
  for (const entry of protocols.split(',')) {
    const offered = entry.trim();
    if (offered.startsWith(BEARER_PROTOCOL) && offered.length > BEARER_PROTOCOL.length) return offered.slice(BEARER_PROTOCOL.length);
  }
  return query === '' || query === undefined ? undefined : query;
}

/** Builds the uWS behaviour of the WebSocket endpoint. */
export function websocketBehavior(ctx: EndpointContext): WebSocketBehavior<SocketData> {
  const { config, registry, log } = ctx;
  let seq = 0;
  // uWS's idle timeout drops a socket without a close frame (the client sees 1006);
  // the watch closes with 1000 and a reason instead, and pings halfway (idle.ts).
  const idle = config.idleTimeoutS > 0 ? new IdleWatch(config.idleTimeoutS) : null;
  const heavy = new HeavyFrames(ctx, ctx.limits, ctx.scheduler);
  if (idle !== null) ctx.policy.watchIdle(idle);

  return {
    // Frames over our limit must get the documented 4503 close, which uWS would
    // pre-empt with a bare 1006 at its own limit: give it headroom and check ours.
    maxPayloadLength: config.maxFrameBytes * 2 + 1024,
    // Our bound (maxBufferBytes) is enforced by the buffer policy with a 4001 close;
    // this is the backstop above it, where uWS closes (1006) rather than skips.
    maxBackpressure: backstopBytes(config.maxBufferBytes),
    closeOnBackpressureLimit: 1,
    // Off: the shard's IdleWatch pings and closes idle sockets with a close frame.
    // uWS still drops a closed socket whose peer does not answer the close frame
    // within a few seconds.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    compression: 0,

    upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t) {
      const key = req.getHeader('sec-websocket-key');
      const protocolHeader = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const origin = req.getHeader('origin');
      const data: SocketData = { principal: null, refusal: null, conn: null };
      const negotiated = negotiateSubprotocol(protocolHeader);
      if (negotiated.refuse !== undefined) {
        data.refusal = { code: CloseCode.UnsupportedVersion, reason: negotiated.refuse };
      } else if (!ctx.accepting()) {
        data.refusal = { code: CloseCode.GoingAway, reason: 'server is draining: reconnect elsewhere' };
      } else if (!originAllowed(config.allowedOrigins, origin)) {
        data.refusal = { code: CloseCode.Forbidden, reason: `origin ${origin.slice(0, 80)} is not allowed` };
      } else {
        const token = tokenOf(req.getHeader('authorization'), protocolHeader, req.getQuery('token'));
        const auth = authenticate({ token, devUser: req.getQuery('user') || undefined }, { config });
        if (auth.ok) data.principal = auth.principal;
        else data.refusal = { code: auth.closeCode, reason: auth.reason };
      }
      res.upgrade(data, key, negotiated.selected, extensions, context);
    },

    open(ws: WebSocket<SocketData>) {
      const data = ws.getUserData();
      if (data.refusal !== null || data.principal === null) {
        const refusal = data.refusal ?? { code: CloseCode.AuthFailed, reason: 'not authenticated' };
        countRefusal(refusals.upgradesRefused, refusal.code);
        closeSocket(ws, refusal.code, refusal.reason);
        return;
      }
      const principal = data.principal;
      const openedAt = Date.now();
      const conn = new Connection(`${instanceTag}.${ctx.shardId}.${(++seq).toString(36)}`, ws, principal, config.rateLimitBurst, openedAt);
      data.conn = conn;
      registry.add(conn);
      idle?.heard(conn, openedAt);
      // Connection caps hold for the whole instance, so the primary counts them;
      // `hello` tells the client it was admitted, and replies only ever follow it.
      ctx.primary.call('admit', { user: principal.user, conn: conn.id }).then(
        (admission) => {
          if (!admission.admitted) {
            conn.early = null;
            if (!conn.closed) countRefusal(refusals.clientCloses, CloseCode.ConnectionLimit);
            conn.end(CloseCode.ConnectionLimit, admission.reason);
            return;
          }
          // Closed meanwhile: its close already released it (after this admit, on the same port).
          if (conn.closed) return;
          conn.admitted = true;
          conn.userSlot = admission.slot;
          conn.sendNow(encodeServerFrame({ t: 'hello', v: PROTOCOL_VERSION, conn: conn.id, user: principal.user, ping: config.idleTimeoutS }));
          const early = conn.early ?? [];
          conn.early = null;
          for (const m of early) handleMessage(ctx, ctx.limits, conn, m.bytes, m.isBinary, Date.now());
        },
        () => conn.end(CloseCode.InternalError, 'could not admit the connection: retry'),
      );
    },

    message(ws: WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean) {
      const conn = ws.getUserData().conn;
      if (conn === null || conn.closed) return;
      const now = Date.now();
      idle?.heard(conn, now);
      if (!conn.admitted) {
        // Held (bounded like a burst) until the primary admits the connection.
        if (message.byteLength > config.maxFrameBytes) {
          failConnection(conn, CloseCode.MessageTooBig, `frames are limited to ${config.maxFrameBytes} bytes`);
          return;
        }
        conn.early ??= [];
        if (conn.early.length >= config.rateLimitBurst) {
          failConnection(conn, CloseCode.RateLimited, 'too many frames before hello');
          return;
        }
        conn.early.push({ bytes: new Uint8Array(message).slice(), isBinary });
        return;
      }
      if (heavy.mustQueue(conn, message.byteLength)) heavy.push(conn, message, isBinary, now);
      else handleMessage(ctx, ctx.limits, conn, new Uint8Array(message), isBinary, now);
    },

    // WebSocket pings and pongs count as traffic (SPEC.md §13); uWS answers pings itself.
    ping(ws: WebSocket<SocketData>) {
      const conn = ws.getUserData().conn;
      if (conn !== null && idle !== null) idle.heard(conn, Date.now());
    },

    pong(ws: WebSocket<SocketData>) {
      const conn = ws.getUserData().conn;
      if (conn !== null && idle !== null) idle.heard(conn, Date.now());
    },

    drain(ws: WebSocket<SocketData>) {
      const conn = ws.getUserData().conn;
      if (conn !== null) pumpQueue(conn, ctx.policy.lowWater);
    },

    close(ws: WebSocket<SocketData>, code: number) {
      const conn = ws.getUserData().conn;
      if (conn === null) return;
      conn.closed = true;
      heavy.drop(conn);
      registry.remove(conn);
      // Always: an admission the shard gave up waiting for (timeout) may still have
      // been counted; the primary releases only what it holds.
      ctx.primary.notify({ op: 'release', conn: conn.id });
      log.debug({ conn: conn.id, code }, 'connection closed');
    },
  };
}
