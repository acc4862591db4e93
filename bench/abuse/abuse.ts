/**
 * The abuse run: hostile clients and upstreams hammer a live daemon while a canary
 * client receives a steady stream and a probe times `/healthz`. Every attack shape
 * of the hardening issue is here, chosen by a seeded generator so a run can be
 * replayed: mutated protocol frames, decoded-size bombs in commands, presence,
 * replay and join floods, snapshot-key floods, command-feed reads, admission churn,
 * stalled readers, HTTP framing edge cases and raw WebSocket framing violations.
 * Besides the canary, an upstream follows the command feed, as a deployment's does.
 *
 * It reports what the daemon did under it; the caller judges (a short run in
 * `npm test`, test/e2e/abuse.test.ts; a long one from `bench/abuse/run.ts`).
 * Loopback only: the URLs come from a daemon the caller started on this machine.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { decode, encode } from '../../protocol/codec.js';
import { fromHex, loadFrameVectors, loadInvalidVectors } from '../../protocol/vectors/load.js';
import { seededRandom } from '../../daemon/engine/seeded-random.js';
import type { ProbeOptions, ProbeReport } from './probe.js';

/** What to attack and for how long. */
export interface AbuseOptions {
  /** ws://host:port/v1/ws of a dev-mode daemon. */
  ws: string;
  /** http://host:port of the same daemon. */
  http: string;
  /** Daemon process id, for its RSS (optional). */
  pid?: number;
  durationMs: number;
  /** Concurrent attackers. */
  attackers: number;
  seed: number;
  /** Canary events per second. */
  canaryRate?: number;
  /** After the attacks, how long to watch the daemon's RSS come back (ms; default 0: one reading after 1 s). */
  settleMs?: number;
  /** Only these attack shapes (names as in the report's `shapes`); all when absent. */
  shapes?: readonly string[];
  /** Niceness the attackers' process takes once the probe runs (the long run: 10); unchanged when absent. */
  attackerNice?: number;
}

/** Timing summary in ms. */
export interface Timing {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** What happened during a run. */
export interface AbuseReport {
  seed: number;
  durationMs: number;
  hostileFrames: number;
  hostileRequests: number;
  /** Hostile units run per attack shape. */
  shapes: Record<string, number>;
  /** Close codes the attackers' sockets got, with counts. */
  closeCodes: Record<string, number>;
  canary: { published: number; received: number; inOrder: boolean; missing: number; duplicates: number; latency: Timing; closed?: { code: number; reason: string; afterMs: number } };
  health: { latency: Timing; failures: number };
  /** The upstream following the command feed: commands and pages it read, requests that failed. */
  upstream: { commands: number; pages: number; failures: number };
  /** Event-loop delay of the attackers' own process (ms): how busy the attack tool itself was. */
  attackerLagMs?: { p50: number; p99: number; max: number };
  /**
   * The daemon's RSS: before the attacks, its peak, one second after them (`endMb`),
   * and, with `settleMs`, every 5 s of the settle that follows (`settleMb`) and the
   * first second of it at which RSS was back within 20 % of the baseline (null: never).
   */
  rss?: { baselineMb: number; peakMb: number; endMb: number; settleMb?: number[]; backAfterS?: number | null };
}

const CANARY = 'quiz:canary';
const BIG_ROOM = 'quiz:big-room';
const HISTORY = 'quiz:history';

function timing(samples: number[]): Timing {
  if (samples.length === 0) return { count: 0, p50: 0, p99: 0, max: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { count: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** The built probe: next to this file when built, else (tests run the TypeScript) under dist/, which `npm test` builds first. */
function probeScript(): string {
  const sibling = fileURLToPath(new URL('./probe.js', import.meta.url));
  if (existsSync(sibling)) return sibling;
  const built = fileURLToPath(new URL('../../dist/bench/abuse/probe.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new Error(`abuse: ${built} is missing; run \`npm run build\` first`);
}

/** Starts the probe process. */
function startProbe(opts: ProbeOptions): { ready: Promise<void>; report: Promise<ProbeReport> } {
  const script = probeScript();
  const child = spawn(process.execPath, [script, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('ready\n')) markReady();
  });
  const report = new Promise<ProbeReport>((resolve, reject) => {
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as ProbeReport);
      else reject(new Error(`the abuse probe exited (${code}) without a report`));
    });
  });
  // A probe that dies before `ready` fails the run instead of hanging it.
  return { ready: Promise.race([ready, report.then(() => {})]), report };
}

/** Runs the abuse for `durationMs`; resolves with the report once everything it opened is closed. */
export async function runAbuse(opts: AbuseOptions): Promise<AbuseReport> {
  const random = seededRandom(opts.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const report: AbuseReport = {
    seed: opts.seed,
    durationMs: opts.durationMs,
    hostileFrames: 0,
    hostileRequests: 0,
    shapes: {},
    closeCodes: {},
    canary: { published: 0, received: 0, inOrder: true, missing: 0, duplicates: 0, latency: timing([]) },
    health: { latency: timing([]), failures: 0 },
    upstream: { commands: 0, pages: 0, failures: 0 },
  };
  const sockets = new Set<WebSocket>();
  const url = (user: string) => `${opts.ws}?user=${encodeURIComponent(user)}`;
  const host = new URL(opts.http);
  const port = Number(host.port);

  /** Opens a dev-mode client; resolves once it got `hello` (or undefined when refused). */
  const open = (user: string): Promise<WebSocket | undefined> =>
    new Promise((resolve) => {
      const ws = new WebSocket(url(user), ['shardcast.v1']);
      sockets.add(ws);
      ws.binaryType = 'nodebuffer';
      const timer = setTimeout(() => resolve(undefined), 5000);
      ws.once('message', () => {
        clearTimeout(timer);
        resolve(ws);
      });
      ws.on('error', () => {});
      ws.on('close', (code) => {
        clearTimeout(timer);
        sockets.delete(ws);
        report.closeCodes[code] = (report.closeCodes[code] ?? 0) + 1;
        resolve(undefined);
      });
    });
  const send = (ws: WebSocket, data: Uint8Array | string) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(data);
    report.hostileFrames++;
  };
  const frame = (value: unknown) => encode(value);
  // A hostile encoder: every map as small as msgpack allows (an empty one is one byte;
  // msgpackr's default writes three), the densest decoded-size bomb a frame can carry.
  const compact = new Packr({ useRecords: false, variableMapSize: true });
  const post = async (path: string, body: string, type = 'application/json') => {
    report.hostileRequests++;
    try {
      const res = await fetch(`${opts.http}${path}`, { method: 'POST', headers: { 'content-type': type }, body, signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
    } catch {
      // refused or reset: what the attack is about
    }
  };
  const rawTcp = (bytes: string | Buffer, waitMs = 1000) =>
    new Promise<void>((resolve) => {
      report.hostileRequests++;
      const socket = tcpConnect(port, host.hostname);
      socket.on('error', () => {});
      socket.on('data', () => {});
      const done = () => {
        socket.destroy();
        resolve();
      };
      socket.setTimeout(waitMs, done);
      socket.on('close', done);
      socket.write(bytes);
    });

  // Protocol material to mutate.
  const validFrames = loadFrameVectors('client').map((v) => fromHex(v.hex));
  const invalidFrames = loadInvalidVectors().map((v) => fromHex(v.hex));
  const mutate = (bytes: Uint8Array): Uint8Array => {
    const out = Uint8Array.from(bytes);
    const how = random();
    if (how < 0.4 && out.length > 0) {
      for (let i = 0; i < 1 + Math.floor(random() * 4); i++) out[Math.floor(random() * out.length)] ^= 1 << Math.floor(random() * 8);
      return out;
    }
    if (how < 0.6) return out.subarray(0, Math.floor(random() * out.length));
    if (how < 0.8) return Uint8Array.from([...out, ...Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * 256))]);
    return Uint8Array.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
  };

  // The shapes. Each runs one bounded unit of hostility.
  const shapes: Record<string, (n: number) => Promise<void>> = {
    async mutatedFrames(n) {
      const ws = await open(`fuzz${n}`);
      if (!ws) return;
      for (let i = 0; i < 40 && ws.readyState === WebSocket.OPEN; i++) {
        const r = random();
        if (r < 0.5) send(ws, mutate(pick(validFrames)));
        else if (r < 0.8) send(ws, pick(invalidFrames));
        else if (r < 0.9) send(ws, 'text is not the protocol');
        else send(ws, frame({ t: 'pub', id: i, s: CANARY, type: 'x', data: JSON.parse('{"__proto__":{"admin":true}}') }));
      }
      await sleep(50);
      ws.terminate();
    },
    async commandBombs(n) {
      const ws = await open(`bomber${n}`);
      if (!ws) return;
      send(ws, frame({ t: 'join', id: 1, s: 'quiz:bombs' }));
      await sleep(20);
      // Within maxFrameValues (10,000): taken and journaled.
      const bomb = Array.from({ length: 5000 }, () => ({}));
      for (let i = 0; i < 30; i++) send(ws, frame({ t: 'cmd', id: 10 + i, s: 'quiz:bombs', cid: `b${n}-${i}`, type: 'answer', data: bomb }));
      // 16,000 one-byte maps in 16 KiB: over maxFrameValues, refused (109) before decoding.
      const dense = Array.from({ length: 16_000 }, () => ({}));
      for (let i = 0; i < 10; i++) send(ws, new Uint8Array(compact.pack({ t: 'cmd', id: 40 + i, s: 'quiz:bombs', cid: `d${n}-${i}`, type: 'answer', data: dense })));
      await sleep(100);
      ws.terminate();
    },
    async presenceFlood(n) {
      const ws = await open(`curious${n}`);
      if (!ws) return;
      send(ws, frame({ t: 'join', id: 1, s: BIG_ROOM, pres: true }));
      await sleep(20);
      for (let i = 0; i < 60; i++) send(ws, frame({ t: 'presence', id: 10 + i, s: BIG_ROOM }));
      await sleep(100);
      ws.terminate();
    },
    async replayFlood(n) {
      const ws = await open(`rewinder${n}`);
      if (!ws) return;
      const epoch = historyEpoch;
      for (let i = 0; i < 10; i++) {
        send(ws, frame({ t: 'join', id: 2 * i + 1, s: HISTORY, ep: epoch, seq: 0 }));
        send(ws, frame({ t: 'leave', id: 2 * i + 2, s: HISTORY }));
      }
      await sleep(100);
      ws.terminate();
    },
    async joinFlood(n) {
      const ws = await open(`joiner${n}`);
      if (!ws) return;
      for (let i = 0; i < 80; i++) send(ws, frame({ t: 'join', id: i + 1, s: `quiz:many-${n}-${i}` }));
      await sleep(100);
      ws.terminate();
    },
    async snapshotKeys(n) {
      const events = Array.from({ length: 200 }, (_, i) => ({ session: 'quiz:keys', type: 'k', data: i, snapshot: `k${n}-${i}` }));
      await post('/v1/publish', JSON.stringify({ events }));
    },
    async feedReads() {
      report.hostileRequests++;
      try {
        const res = await fetch(`${opts.http}/v1/commands?limit=1000`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
      } catch {
        // a refusal is fine; a hang is what the report's health figures show
      }
    },
    async badPublishes() {
      const huge: Record<string, number> = {};
      for (let i = 0; i <= 65_535; i++) huge[`k${i}`] = i;
      await post('/v1/publish', JSON.stringify({ session: 'quiz:bad', type: 't', data: huge }));
      await post('/v1/publish', '{"session":"quiz:bad","type":"t","data":{"__proto__":1}}');
      await post('/v1/publish', '{"session":', 'APPLICATION/JSON');
      await post('/v1/publish', 'x'.repeat(1024 * 1024 + 10));
    },
    async httpFraming() {
      const body = '{"session":"quiz:smuggle","type":"t","data":1}';
      await rawTcp(`POST /v1/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: 3\r\n\r\n${body}`);
      await rawTcp(`POST /v1/publish HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{`);
      await rawTcp('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
      await rawTcp('GET /healthz HTTP/1.0\r\n\r\n', 300);
      await rawTcp(`GET /healthz HTTP/1.1\r\n${Array.from({ length: 60 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`, 300);
      await rawTcp('HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n');
      await rawTcp(Buffer.from(Array.from({ length: 200 }, () => Math.floor(random() * 256))), 300);
    },
    async admissionChurn(n) {
      const pending: Array<Promise<unknown>> = [];
      for (let i = 0; i < 20; i++) {
        const ws = new WebSocket(url(`churn${n}`), ['shardcast.v1']);
        ws.on('error', () => {});
        report.hostileRequests++;
        // Half are dropped before `hello` (admission in flight), half right after.
        pending.push(
          new Promise<void>((resolve) => {
            ws.on('close', () => resolve());
            if (i % 2 === 0) ws.on('open', () => ws.terminate());
            else ws.once('message', () => ws.terminate());
            setTimeout(() => {
              ws.terminate();
              resolve();
            }, 3000);
          }),
        );
      }
      await Promise.all(pending);
    },
    async stalledReader(n) {
      const ws = await open(`stalled${n}`);
      if (!ws) return;
      send(ws, frame({ t: 'join', id: 1, s: HISTORY }));
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      await sleep(1500);
      ws.terminate();
    },
    async wsFraming() {
      // A raw upgrade, then frames a conforming client never sends.
      const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(random() * 256))).toString('base64');
      const upgrade = `GET /v1/ws?user=raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: shardcast.v1\r\n\r\n`;
      const mask = [1, 2, 3, 4];
      const masked = (first: number, payload: number[]) => Buffer.from([first, 0x80 | payload.length, ...mask, ...payload.map((b, i) => b ^ mask[i % 4])]);
      const variants = [
        Buffer.from([0xc2, 0x80 | 1, ...mask, 0x80 ^ 1]), // RSV1 set
        masked(0x83, [1, 2]), // reserved opcode 3
        Buffer.from([0x82, 0x01, 0x80]), // unmasked
        masked(0x81, [0xff, 0xfe]), // text that is not UTF-8
        Buffer.from([0x89, 0x80 | 126, 0, 200, ...mask, ...Array.from({ length: 200 }, () => 0)]), // ping over 125 bytes
      ];
      await rawTcp(Buffer.concat([Buffer.from(upgrade), pick(variants)]), 500);
    },
  };
  const unknown = (opts.shapes ?? []).filter((name) => !(name in shapes));
  if (unknown.length > 0) throw new Error(`abuse: unknown shape(s) ${unknown.join(', ')}; the shapes are ${Object.keys(shapes).join(', ')}`);
  const shapeNames = opts.shapes !== undefined && opts.shapes.length > 0 ? [...opts.shapes] : Object.keys(shapes);

  // Set the scene: a big room with idle members, a session with history.
  const members: WebSocket[] = [];
  for (let i = 0; i < 50; i++) {
    const ws = await open(`member${i}`);
    if (!ws) continue;
    ws.send(encode({ t: 'join', id: 1, s: BIG_ROOM }));
    members.push(ws);
  }
  let historyEpoch = '';
  for (let b = 0; b < 5; b++) {
    const events = Array.from({ length: 200 }, (_, i) => ({ session: HISTORY, type: 'h', data: { n: b * 200 + i, pad: 'p'.repeat(500) } }));
    const res = await fetch(`${opts.http}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    const body = (await res.json()) as { results?: Array<{ epoch: string }> };
    historyEpoch = body.results?.[0]?.epoch ?? historyEpoch;
  }

  // The upstream every deployment has: a service following the command feed by its
  // position, as upstreams reading GET /v1/commands do (so the journal may let go of
  // what it took). It runs through the attacks and the settle.
  let following = true;
  const follower = (async () => {
    let after = 0;
    while (following) {
      try {
        const res = await fetch(`${opts.http}/v1/commands?after=${after}&limit=1000`, { signal: AbortSignal.timeout(5000) });
        const page = (await res.json()) as { commands: unknown[]; next: number };
        report.upstream.pages++;
        report.upstream.commands += page.commands.length;
        after = page.next;
        if (page.commands.length > 0) continue;
      } catch {
        report.upstream.failures++;
      }
      await sleep(500);
    }
  })();

  // The canary and the /healthz timer run in a process of their own (probe.ts).
  const probe = startProbe({ ws: opts.ws, http: opts.http, durationMs: opts.durationMs, canaryRate: opts.canaryRate ?? 20, session: CANARY });
  await probe.ready;
  // Attackers elsewhere on the internet take no CPU from the daemon's machine; here
  // they share it, and a lower priority keeps their own work out of the figures.
  if (opts.attackerNice !== undefined) setPriority(opts.attackerNice);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();

  const baseline = opts.pid !== undefined ? rssMb(opts.pid) : 0;
  let peak = baseline;
  const deadline = Date.now() + opts.durationMs;
  const rssLoop = (async () => {
    while (opts.pid !== undefined && Date.now() < deadline) {
      peak = Math.max(peak, rssMb(opts.pid));
      await sleep(200);
    }
  })();
  // Every attacker cycles through all shapes in one seeded order, each from its own
  // place in it: every shape runs early, in a different mix at each moment.
  const order = [...shapeNames];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const attackers = Array.from({ length: opts.attackers }, async (_, a) => {
    let n = a * 1_000_000;
    for (let k = 0; Date.now() < deadline; k++) {
      const name = order[(k + a * 3) % order.length];
      report.shapes[name] = (report.shapes[name] ?? 0) + 1;
      try {
        await shapes[name](n++);
      } catch {
        // an attack that throws on our side is still an attack; keep going
      }
    }
  });
  await Promise.all([rssLoop, ...attackers]);
  lag.disable();
  const seen = await probe.report;

  // Settle, close everything, and read the memory the attacks left.
  for (const ws of [...sockets]) ws.terminate();
  await sleep(1000);
  const end = opts.pid !== undefined ? rssMb(opts.pid) : 0;
  // Memory the attacks made the daemon take is given back over time (V8 shrinks its
  // heaps once allocation slows): watch for `settleMs`, noting when it is back.
  const settleMb: number[] = [];
  let backAfterS: number | null = end <= baseline * 1.2 ? 1 : null;
  for (let s = 2; opts.pid !== undefined && s <= Math.ceil((opts.settleMs ?? 0) / 1000); s++) {
    await sleep(1000);
    const now = rssMb(opts.pid);
    if (backAfterS === null && now <= baseline * 1.2) backAfterS = s;
    if (s % 5 === 0) settleMb.push(Math.round(now));
  }
  following = false;
  await follower;

  const seqs = seen.seqs;
  report.canary = {
    published: seen.published,
    received: seqs.length,
    inOrder: seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
    missing: Math.max(0, seen.published - new Set(seqs).size),
    duplicates: seqs.length - new Set(seqs).size,
    latency: timing(seen.latencies),
    ...(seen.closed !== undefined && seen.closed.afterMs < opts.durationMs ? { closed: seen.closed } : {}),
  };
  report.health = { latency: timing(seen.healthMs), failures: seen.healthFailures };
  report.attackerLagMs = { p50: Math.round(lag.percentile(50) / 1e6), p99: Math.round(lag.percentile(99) / 1e6), max: Math.round(lag.max / 1e6) };
  if (opts.pid !== undefined) {
    report.rss = { baselineMb: Math.round(baseline), peakMb: Math.round(peak), endMb: Math.round(end) };
    if (opts.settleMs !== undefined) Object.assign(report.rss, { settleMb, backAfterS });
  }
  return report;
}
