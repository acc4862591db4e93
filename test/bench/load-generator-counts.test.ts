/**
 * The load generator counts what each client receives per event: against a server
 * that drops one frame for one client and repeats another, it must report exactly
 * one lost and one duplicated frame; against a correct server, none.
 * Client threads run the built worker (dist/), which `npm test` builds first.
 */
import { createServer, type Server } from 'node:http';
import t, { type Test } from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { decode, encodeServerFrame } from '../../protocol/codec.js';
import { SUBPROTOCOL } from '../../protocol/frames.js';
import { LoadGenerator } from '../../bench/load/load-generator.js';
import { shardcastPublisher } from '../../bench/load/publisher.js';
import { stderrProgress } from '../../bench/progress-display.js';
import { runBroadcast } from '../../bench/scenarios/broadcast-run.js';
import type { RunningTarget } from '../../bench/targets/target.js';

interface Faults {
  /** For the first client to join: skip its event with this seq… */
  dropSeq?: number;
  /** …and send it this one twice. */
  repeatSeq?: number;
}

/** A tiny pub/sub server in the Shardcast wire shapes, with optional faults. */
async function startFlawedServer(faults: Faults): Promise<{ server: Server; port: number }> {
  const members: WebSocket[] = [];
  const seqs = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { session: string; type: string; data: string };
      const seq = (seqs.get(body.session) ?? 0) + 1;
      seqs.set(body.session, seq);
      const bytes = encodeServerFrame({ t: 'ev', s: body.session, seq, ep: 'e', type: body.type, data: body.data, ts: Date.now() });
      members.forEach((ws, i) => {
        if (i === 0 && seq === faults.dropSeq) return;
        ws.send(bytes);
        if (i === 0 && seq === faults.repeatSeq) ws.send(bytes);
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ seq, epoch: 'e', duplicate: false }));
    });
  });
  const wss = new WebSocketServer({ server, handleProtocols: () => SUBPROTOCOL });
  wss.on('connection', (ws) => {
    ws.on('message', (message: Buffer) => {
      const frame = decode(message);
      if (!frame.ok) return;
      const join = frame.value as { t: string; id: number; s: string };
      if (join.t !== 'join') return;
      members.push(ws);
      ws.send(encodeServerFrame({ t: 'joined', id: join.id, s: join.s, ep: 'e', seq: 0, rec: false }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

const generator = new LoadGenerator(2);
t.teardown(() => generator.close());

async function measure(t: Test, faults: Faults, warmup = 0) {
  const { server, port } = await startFlawedServer(faults);
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const publisher = shardcastPublisher({ host: '127.0.0.1', port });
  const target: RunningTarget = {
    name: 'in-test',
    host: '127.0.0.1',
    port,
    protocol: 'shardcast',
    pid: process.pid,
    publisher,
    output: () => '',
    stop: async () => publisher.close(),
  };
  const { result } = await runBroadcast(
    target,
    generator,
    { scenario: 'fanout', clients: 4, sessionCount: 1, events: 6, rate: 200, drainMs: 1500, warmup },
    stderrProgress(true),
  );
  await target.stop();
  return result;
}

t.test('a correct server: everything delivered once, warm-up events kept out', async (t) => {
  const result = await measure(t, {}, 3);
  t.equal(result.expected, 24);
  t.equal(result.delivered, 24);
  t.equal(result.lost, 0);
  t.equal(result.duplicated, 0);
  t.ok(result.p99_ms > 0 && result.p99_ms < 1000, `p99 ${result.p99_ms} ms is a plausible latency`);
});

t.test('a server that drops one frame and repeats another', async (t) => {
  const result = await measure(t, { dropSeq: 2, repeatSeq: 5 });
  t.equal(result.expected, 24);
  t.equal(result.delivered, 23);
  t.equal(result.lost, 1);
  t.equal(result.duplicated, 1);
});
