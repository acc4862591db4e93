/**
 * uws-raw: the floor for this runtime. One uWebSockets.js App on one thread, the
 * Shardcast wire shapes (msgpack `join`/`joined`/`ev`), each event encoded once and
 * handed to `app.publish` for its session's topic. No auth, no history, no limits.
 */
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { decode, encodeServerFrame } from '../../../protocol/codec.js';
import { SUBPROTOCOL } from '../../../protocol/frames.js';
import { announceListening, encodeEvent, handlePublish, portFromEnv, SessionSequence } from './publish-request.js';

const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof UWS;
if (typeof uws.SSLApp !== 'function') throw new Error('uws-raw: the native uWebSockets.js binding did not load');

interface SocketData {
  user: string;
}

const sequence = new SessionSequence();
const app = uws.App();

app.ws<SocketData>('/*', {
  idleTimeout: 120,
  maxBackpressure: 1024 * 1024,
  upgrade(res, req, context) {
    const user = new URLSearchParams(req.getQuery() ?? '').get('user') ?? 'anonymous';
    res.upgrade<SocketData>(
      { user },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol') ? SUBPROTOCOL : '',
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open(ws) {
    ws.send(encodeServerFrame({ t: 'hello', v: 1, conn: ws.getUserData().user, user: ws.getUserData().user, ping: 120 }), true);
  },
  message(ws, message) {
    const result = decode(new Uint8Array(message));
    if (!result.ok || typeof result.value !== 'object' || result.value === null) return;
    const frame = result.value as { t?: unknown; id?: unknown; s?: unknown };
    const id = typeof frame.id === 'number' ? frame.id : 0;
    if (frame.t === 'join' && typeof frame.s === 'string') {
      ws.subscribe(frame.s);
      ws.send(encodeServerFrame({ t: 'joined', id, s: frame.s, ep: sequence.epoch, seq: 0, rec: false }), true);
    } else if (frame.t === 'leave' && typeof frame.s === 'string') {
      ws.unsubscribe(frame.s);
      ws.send(encodeServerFrame({ t: 'left', id, s: frame.s }), true);
    } else if (frame.t === 'ping') {
      ws.send(encodeServerFrame({ t: 'pong', id }), true);
    }
  },
});

app.post('/v1/publish', (res) => {
  let aborted = false;
  const chunks: Buffer[] = [];
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((chunk, isLast) => {
    // The chunk is neutered when this callback returns: copy it.
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast || aborted) return;
    let reply: string;
    try {
      reply = handlePublish(Buffer.concat(chunks).toString(), sequence, (event, seq) => {
        app.publish(event.session, encodeEvent(event, seq, sequence.epoch), true);
      });
    } catch (err) {
      res.cork(() => res.writeStatus('400 Bad Request').end(JSON.stringify({ error: String(err) })));
      return;
    }
    res.cork(() => res.writeHeader('content-type', 'application/json').end(reply));
  });
});

app.listen('127.0.0.1', portFromEnv(), (listenSocket) => {
  if (!listenSocket) {
    process.stderr.write('uws-raw: listen failed\n');
    process.exit(1);
  }
  announceListening(uws.us_socket_local_port(listenSocket));
});
