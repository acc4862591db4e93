/**
 * The abuse run's observer, in a process of its own: the canary client (a steady
 * stream it must receive whole and in order) and the `/healthz` timer. Apart from
 * the attackers so that what it measures is the daemon: in the attackers' process
 * its timestamps waited for their work (building a 65,536-key object, encoding
 * 5,000-map commands) and charged that to the daemon.
 *
 * `node dist/bench/abuse/probe.js <json options>`; prints `ready` once the canary
 * has joined, then starts; prints one JSON line (ProbeReport) when done.
 */
import WebSocket from 'ws';
import { decode, encode } from '../../protocol/codec.js';

/** What the probe is told. */
export interface ProbeOptions {
  ws: string;
  http: string;
  durationMs: number;
  /** Canary events per second. */
  canaryRate: number;
  /** Session of the canary stream. */
  session: string;
}

/** What the probe saw. */
export interface ProbeReport {
  published: number;
  /** The seqs the canary received, in arrival order. */
  seqs: number[];
  /** Publish → receipt of each canary event (ms). */
  latencies: number[];
  /** `/healthz` answer times (ms) of the probes that got 200. */
  healthMs: number[];
  healthFailures: number;
  closed?: { code: number; reason: string; afterMs: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function probe(opts: ProbeOptions): Promise<ProbeReport> {
  const report: ProbeReport = { published: 0, seqs: [], latencies: [], healthMs: [], healthFailures: 0 };
  const canary = new WebSocket(`${opts.ws}?user=canary`, ['shardcast.v1']);
  canary.binaryType = 'nodebuffer';
  canary.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the canary could not connect within 5 s')), 5000);
    canary.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    canary.once('close', (code) => reject(new Error(`the canary was closed (${code}) before hello`)));
  });
  const startedAt = Date.now();
  canary.on('close', (code: number, reason: Buffer) => {
    report.closed = { code, reason: reason.toString(), afterMs: Date.now() - startedAt };
  });
  canary.on('message', (data: Buffer) => {
    const r = decode(data);
    if (!r.ok) return;
    const f = r.value as { t?: string; s?: string; seq?: number; data?: { at?: number } };
    if (f.t !== 'ev' || f.s !== opts.session || typeof f.seq !== 'number') return;
    report.seqs.push(f.seq);
    if (typeof f.data?.at === 'number') report.latencies.push(Date.now() - f.data.at);
  });
  canary.send(encode({ t: 'join', id: 1, s: opts.session }));
  await sleep(200);
  process.stdout.write('ready\n');

  const deadline = Date.now() + opts.durationMs;
  const canaryLoop = async () => {
    const every = 1000 / opts.canaryRate;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${opts.http}/v1/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ session: opts.session, type: 'tick', data: { at: Date.now() } }),
          signal: AbortSignal.timeout(10_000),
        });
        if (res.ok) report.published++;
        await res.arrayBuffer();
      } catch {
        // counted as not published; the receive check judges delivery
      }
      await sleep(every);
    }
  };
  const healthLoop = async () => {
    while (Date.now() < deadline) {
      const started = Date.now();
      try {
        const res = await fetch(`${opts.http}/healthz`, { signal: AbortSignal.timeout(5000) });
        await res.arrayBuffer();
        if (res.ok) report.healthMs.push(Date.now() - started);
        else report.healthFailures++;
      } catch {
        report.healthFailures++;
      }
      await sleep(200);
    }
  };
  await Promise.all([canaryLoop(), healthLoop()]);
  // The last events' way back.
  for (let i = 0; i < 100 && new Set(report.seqs).size < report.published; i++) await sleep(50);
  canary.terminate();
  return report;
}

probe(JSON.parse(process.argv[2] ?? '{}') as ProbeOptions).then(
  (report) => {
    process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
  },
  (err: unknown) => {
    process.stderr.write(`abuse probe: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
