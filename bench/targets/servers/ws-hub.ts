/**
 * ws-hub: the hub-and-loop broadcast most tutorials teach. A plain `ws` server, a
 * Map from session to its set of sockets, and a `for … of` loop of `send` per
 * event (the frame encoded once, in the same msgpack shapes as Shardcast).
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { decode, encodeServerFrame } from '../../../protocol/codec.js';
import { SUBPROTOCOL } from '../../../protocol/frames.js';
import { announceListening, encodeEvent, nodePublishHandler, portFromEnv, SessionSequence } from './publish-request.js';

const sequence = new SessionSequence();
const rooms = new Map<string, Set<WebSocket>>();

const server = createServer(
  nodePublishHandler(sequence, (event, seq) => {
    const room = rooms.get(event.session);
    if (!room) return;
    const bytes = encodeEvent(event, seq, sequence.epoch);
    for (const ws of room) ws.send(bytes);
  }),
);

const wss = new WebSocketServer({
  server,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

wss.on('connection', (ws) => {
  const joined = new Set<string>();
  ws.send(encodeServerFrame({ t: 'hello', v: 1, conn: '', user: '', ping: 120 }));
  ws.on('message', (message: Buffer) => {
    const result = decode(message);
    if (!result.ok || typeof result.value !== 'object' || result.value === null) return;
    const frame = result.value as { t?: unknown; id?: unknown; s?: unknown };
    const id = typeof frame.id === 'number' ? frame.id : 0;
    if (frame.t === 'join' && typeof frame.s === 'string') {
      let room = rooms.get(frame.s);
      if (!room) rooms.set(frame.s, (room = new Set()));
      room.add(ws);
      joined.add(frame.s);
      ws.send(encodeServerFrame({ t: 'joined', id, s: frame.s, ep: sequence.epoch, seq: 0, rec: false }));
    } else if (frame.t === 'leave' && typeof frame.s === 'string') {
      leave(ws, frame.s);
      joined.delete(frame.s);
      ws.send(encodeServerFrame({ t: 'left', id, s: frame.s }));
    } else if (frame.t === 'ping') {
      ws.send(encodeServerFrame({ t: 'pong', id }));
    }
  });
  ws.on('close', () => {
    for (const session of joined) leave(ws, session);
  });
  ws.on('error', () => ws.terminate());
});

function leave(ws: WebSocket, session: string): void {
  const room = rooms.get(session);
  if (!room) return;
  room.delete(ws);
  if (room.size === 0) rooms.delete(session);
}

server.listen(portFromEnv(), '127.0.0.1', () => {
  const address = server.address();
  announceListening(typeof address === 'object' && address ? address.port : 0);
});
