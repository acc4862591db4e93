/**
 * A target of several instances (shardcast-redis3): the load generator spreads its
 * clients over the target's endpoints and still counts exactly. Three in-test
 * WebSocket servers share one member list and one publish API; a frame dropped on
 * one instance and one repeated on another must show as lost = 1, duplicated = 1.
 * Client threads run the built worker (dist/), which `npm test` builds first.
 */
import { createServer, type Server } from 'node:http';
import t, { type Test } from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { decode, encodeServerFrame } from '../../protocol/codec.js';
import { SUBPROTOCOL } from '../../protocol/frames.js';
import { endpointFor } from '../../bench/load/client-worker.js';
import { LoadGenerator } from '../../bench/load/load-generator.js';
import { shardcastPublisher } from '../../bench/load/publisher.js';
import { stderrProgress } from '../../bench/progress-display.js';
import { runBroadcast } from '../../bench/scenarios/broadcast-run.js';
import { sampleProcesses } from '../../bench/targets/process-stats.js';
import type { RunningTarget } from '../../bench/targets/target.js';

t.test('endpointFor: each session dealt round-robin over the instances, the clients evenly', async (t) => {
  const endpoints = [0, 1, 2].map((k) => ({ host: '127.0.0.1', port: 1000 + k }));
  const count = (clients: number, sessions: number) => {
    const task = { host: 'unused', targetPort: 0, endpoints, sessions: Array.from({ length: sessions }, (_, k) => `s${k}`) };
    const perEndpoint = [0, 0, 0];
    const perSession = Array.from({ length: sessions }, () => [0, 0, 0]);
    for (let g = 0; g < clients; g++) {
      const e = endpointFor(task, g).port - 1000;
      perEndpoint[e]++;
      perSession[g % sessions][e]++;
    }
    return { perEndpoint, perSession };
  };
  t.same(count(1000, 1).perEndpoint, [334, 333, 333]);
  // 300 sessions of 10: with client g → g mod 3 every session would sit on one instance.
  const { perEndpoint, perSession } = count(3000, 300);
  t.same(perEndpoint, [1000, 1000, 1000]);
  t.ok(
    perSession.every((c) => Math.max(...c) - Math.min(...c) <= 1),
    'every session has its members on all three instances (±1)',
  );
  t.same(endpointFor({ host: 'h', targetPort: 7, sessions: ['s'] }, 5), { host: 'h', port: 7 }, 'no endpoints: host and port');
});

t.test('sampleProcesses sums the readings', async (t) => {
  const one = sampleProcesses([process.pid]);
  const two = sampleProcesses([process.pid, process.pid]);
  t.ok(two.rssKb >= 2 * one.rssKb * 0.9 && two.threads >= 2 * one.threads - 2, 'RSS and threads add up');
});

interface Faults {
  /** Instance 1's first member skips the event with this seq… */
  dropSeq?: number;
  /** …and instance 2's first member gets this one twice. */
  repeatSeq?: number;
}

/** Three WebSocket "instances" and one publish API over a shared member list. */
async function startInstances(faults: Faults) {
  const members: Array<{ ws: WebSocket; instance: number }> = [];
  const joins = [0, 0, 0];
  let seq = 0;
  const api = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { session: string; type: string; data: string };
      seq++;
      const bytes = encodeServerFrame({ t: 'ev', s: body.session, seq, ep: 'e', type: body.type, data: body.data, ts: Date.now() });
      const firstOf = [0, 1, 2].map((k) => members.find((m) => m.instance === k));
      for (const m of members) {
        if (m === firstOf[1] && seq === faults.dropSeq) continue;
        m.ws.send(bytes);
        if (m === firstOf[2] && seq === faults.repeatSeq) m.ws.send(bytes);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ seq, epoch: 'e', duplicate: false }));
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  const servers: Server[] = [api];
  const ports: number[] = [];
  for (let instance = 0; instance < 3; instance++) {
    const server = createServer();
    const wss = new WebSocketServer({ server, handleProtocols: () => SUBPROTOCOL });
    wss.on('connection', (ws) => {
      ws.on('message', (message: Buffer) => {
        const frame = decode(message);
        if (!frame.ok) return;
        const join = frame.value as { t: string; id: number; s: string };
        if (join.t !== 'join') return;
        members.push({ ws, instance });
        joins[instance]++;
        ws.send(encodeServerFrame({ t: 'joined', id: join.id, s: join.s, ep: 'e', seq: 0, rec: false }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    ports.push(typeof address === 'object' && address ? address.port : 0);
    servers.push(server);
  }
  const apiAddress = api.address();
  return { servers, ports, apiPort: typeof apiAddress === 'object' && apiAddress ? apiAddress.port : 0, joins };
}

const generator = new LoadGenerator(2);
t.teardown(() => generator.close());

async function measure(t: Test, faults: Faults) {
  const { servers, ports, apiPort, joins } = await startInstances(faults);
  t.teardown(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });
  const publisher = shardcastPublisher({ host: '127.0.0.1', port: apiPort });
  const target: RunningTarget = {
    name: 'in-test-3',
    host: '127.0.0.1',
    port: ports[0],
    endpoints: ports.map((port) => ({ host: '127.0.0.1', port })),
    pids: [process.pid, process.pid],
    protocol: 'shardcast',
    pid: process.pid,
    publisher,
    output: () => '',
    stop: async () => publisher.close(),
  };
  const { result } = await runBroadcast(
    target,
    generator,
    { scenario: 'fanout', clients: 9, sessionCount: 1, events: 6, rate: 200, drainMs: 1500, warmup: 2 },
    stderrProgress(true),
  );
  await target.stop();
  return { result, joins };
}

t.test('three instances, a correct fan-out: every client on its instance, everything once', async (t) => {
  const { result, joins } = await measure(t, {});
  t.same(joins, [3, 3, 3], 'clients spread evenly over the three endpoints');
  t.equal(result.expected, 54);
  t.equal(result.delivered, 54);
  t.equal(result.lost, 0);
  t.equal(result.duplicated, 0);
  t.equal(result.instances, 2, 'the row says how many processes were read');
});

t.test('three instances, one frame dropped on one and one repeated on another', async (t) => {
  // Seqs 1–2 are the warm-up; measured events are seqs 3–8.
  const { result } = await measure(t, { dropSeq: 4, repeatSeq: 7 });
  t.equal(result.expected, 54);
  t.equal(result.delivered, 53);
  t.equal(result.lost, 1);
  t.equal(result.duplicated, 1);
});
