/**
 * socketio: the common Node choice. A Socket.IO server (WebSocket transport only),
 * rooms per session, `io.to(session).emit('ev', event)` per published event. The
 * HTTP publish endpoint shares the server's port.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { announceListening, nodePublishHandler, portFromEnv, SessionSequence } from './publish-request.js';

const sequence = new SessionSequence();

const publish = nodePublishHandler(sequence, (event, seq) => {
  io.to(event.session).emit('ev', { s: event.session, seq, ep: sequence.epoch, type: event.type, data: event.data, ts: Date.now() });
});
const server = createServer((req, res) => {
  // Socket.IO answers its own path from its own listener.
  if (req.url?.startsWith('/socket.io/')) return;
  publish(req, res);
});

const io = new Server(server, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (session: unknown) => {
    if (typeof session !== 'string') return;
    void socket.join(session);
    socket.emit('joined', session);
  });
  socket.on('leave', (session: unknown) => {
    if (typeof session !== 'string') return;
    void socket.leave(session);
    socket.emit('left', session);
  });
});

server.listen(portFromEnv(), '127.0.0.1', () => {
  const address = server.address();
  announceListening(typeof address === 'object' && address ? address.port : 0);
});
