// A child process holding many SDK clients for the rolling-update e2e test
// (test/e2e/rolling-update.test.ts), so the test process does not also carry their
// sockets. Plain JavaScript on the built SDK (dist/, `npm run build` first): a
// child on the TypeScript loader takes many seconds to start on a loaded machine.
// Driven over IPC (fork()):
//   parent → {op:'start', url, sessions:[{s, ep}], users:[…]}   connect, join each user's session from seq 0
//   child  → {op:'joined'}                                       every client joined
//   parent → {op:'report'}  child → {op:'report', clients:[ClientReport]}
//   parent → {op:'close'}   child closes every client and exits
// Each client counts what the application sees (the SDK's `event`s) and, under the
// SDK, every `ev` frame that reached its socket, so a frame the server sent twice
// is counted although the SDK would drop it. ClientReport is described in the test.
import WebSocket from 'ws';
import { decode } from '../../dist/protocol/codec.js';
import { ShardcastClient } from '../../dist/protocol/client/index.js';

const clients = [];
const reports = [];

/** ws's WebSocket, counting every `ev` frame per seq before the SDK sees it. */
function countingSocket(report) {
  const seen = [];
  // A plain function: `new` on it returns the socket it builds.
  return function Counting(url, protocols) {
    const ws = new WebSocket(url, protocols);
    const add = ws.addEventListener.bind(ws);
    ws.addEventListener = (type, listener) => {
      if (type !== 'message') return add(type, listener);
      add('message', (event) => {
        const data = event.data;
        const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data instanceof Uint8Array ? data : null;
        if (bytes !== null) {
          const r = decode(bytes);
          if (r.ok && r.value.t === 'ev') {
            const seq = r.value.seq;
            const page = seen[seq >> 12] ?? (seen[seq >> 12] = new Uint8Array(4096));
            if (page[seq & 4095] === 1) report.rawDuplicates += 1;
            page[seq & 4095] = 1;
          }
        }
        listener(event);
      });
    };
    return ws;
  };
}

function startClient(url, user, session, ep) {
  const report = { user, session, received: 0, last: 0, inOrder: true, rawDuplicates: 0, notRecovered: 0, resumes: 0, resumeMs: [], goaways: 0 };
  reports.push(report);
  const client = new ShardcastClient({ url, user, WebSocket: countingSocket(report), reconnect: { maxMs: 2000 } });
  clients.push(client);
  let firstAttemptAt;
  let lost = false;
  client.on('goaway', () => {
    report.goaways += 1;
  });
  client.on('disconnected', (d) => {
    lost = true;
    firstAttemptAt ??= Date.now() + d.reconnectInMs;
  });
  const sub = client.join(session, { since: { epoch: ep, seq: 0 } });
  sub.on('joined', (j) => {
    if (!lost) return;
    lost = false;
    if (!j.rec) report.notRecovered += 1;
    report.resumes += 1;
    if (firstAttemptAt !== undefined) report.resumeMs.push(Date.now() - firstAttemptAt);
    firstAttemptAt = undefined;
  });
  sub.on('event', (ev) => {
    report.received += 1;
    if (ev.seq !== report.last + 1) report.inOrder = false;
    report.last = ev.seq;
  });
  return sub.ready;
}

process.on('message', (msg) => {
  switch (msg.op) {
    case 'start': {
      const joins = msg.users.map((user, i) => {
        const { s, ep } = msg.sessions[i % msg.sessions.length];
        return startClient(msg.url, user, s, ep);
      });
      void Promise.all(joins).then(() => process.send({ op: 'joined' }));
      return;
    }
    case 'report':
      process.send({ op: 'report', clients: reports });
      return;
    case 'close':
      void Promise.all(clients.map((c) => c.close())).then(() => process.exit(0));
      return;
  }
});
// The test process went away (or was killed on a timeout): do not linger.
process.on('disconnect', () => process.exit(0));
