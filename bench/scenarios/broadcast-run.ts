/**
 * The measured run every scenario is built on: connect and join the clients,
 * optionally hold them idle or start churn, publish `events` ticks at `rate` to
 * every session, wait until everything expected arrived (or a drain deadline), and
 * read the server process before and after the publishing phase.
 */
import { loadavg } from 'node:os';
import type { LoadGenerator, LoadProgress, LoadResult } from '../load/load-generator.js';
import { nowUs } from '../load/payload.js';
import { hostBusyUs, sampleProcess, sampleProcesses, type ProcessSample } from '../targets/process-stats.js';
import { targetEndpoints, targetPids, type RunningTarget } from '../targets/target.js';
import type { ProgressDisplay } from '../progress-display.js';

/** One row of the results: the fields the issue asks for, then scenario extras. */
export interface BenchResult {
  scenario: string;
  target: string;
  clients: number;
  sessions: number;
  events: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  frames_per_s: number;
  server_cpu_us_per_frame: number | null;
  server_rss_mb: number;
  /** CPU of the whole bench process (clients and publisher) per delivered frame. */
  client_cpu_us_per_frame: number | null;
  rate: number;
  failed_connections: number;
  closed_early: number;
  unexpected: number;
  [extra: string]: number | string | null | boolean;
}

/** Shape of one broadcast run. */
export interface BroadcastPlan {
  scenario: string;
  clients: number;
  sessionCount: number;
  events: number;
  /** Publish ticks per second (each tick: one event to every session). */
  rate: number;
  /** Ticks published (at `rate`) before the measured ones, to warm both sides' JIT; default 0. */
  warmup?: number;
  /** Idle time between "all joined" and the first publish, with heartbeats. */
  holdMs?: number;
  heartbeatMs?: number;
  /** Churn connections per client thread while publishing; 0 for none. */
  churnPerThread?: number;
  churnHoldMs?: [number, number];
  /** Extra wait after the last publish for stragglers. */
  drainMs?: number;
  connectTimeoutMs?: number;
}

/** What scenarios add on top of the common result. */
export interface BroadcastOutcome {
  result: BenchResult;
  load: LoadResult;
  base: ProcessSample;
  loaded: ProcessSample;
  end: ProcessSample;
  connectMs: number;
}

/** Publishes ticks first … first+count-1, tick i due at i / rate seconds from now. */
async function publishTicks(target: RunningTarget, sessions: string[], first: number, count: number, rate: number): Promise<void> {
  const startMs = Date.now();
  for (let i = 0; i < count; i++) {
    const wait = startMs + (i * 1000) / rate - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await target.publisher.publish(sessions, first + i);
  }
}

const ms = (us: number): number => Math.round(us / 10) / 100;

/** Runs one broadcast against a started target. */
export async function runBroadcast(
  target: RunningTarget,
  generator: LoadGenerator,
  plan: BroadcastPlan,
  progress: ProgressDisplay,
): Promise<BroadcastOutcome> {
  const runTag = `${plan.scenario}-${Date.now().toString(36)}`;
  const sessions = Array.from({ length: plan.sessionCount }, (_, k) => `bench-${runTag}-${k}`);
  const expected = plan.clients * plan.events;
  // Every process of the target, summed (several instances for shardcast-redis3).
  const pids = targetPids(target);
  const sampleTarget = (): ProcessSample => sampleProcesses(pids);
  const backing = target.backing;
  const base = sampleTarget();
  // Other work on the machine skews every figure: record how busy it was.
  const hostLoad = Math.round(loadavg()[0] * 100) / 100;

  const run = generator.start({
    host: target.host,
    port: target.port,
    ...(target.endpoints ? { endpoints: targetEndpoints(target) } : {}),
    protocol: target.protocol,
    clients: plan.clients,
    sessions,
    warmup: plan.warmup ?? 0,
    events: plan.events,
    heartbeatMs: plan.heartbeatMs,
    connectTimeoutMs: plan.connectTimeoutMs,
  });
  const label = `${plan.scenario} ${target.name}`;
  const show = (phase: string, p: LoadProgress): void =>
    progress.update(
      `${label}: ${phase} joined ${p.joined}/${plan.clients}` +
        (p.failed ? ` failed ${p.failed}` : '') +
        ` delivered ${p.delivered}/${expected}` +
        (plan.churnPerThread ? ` churn ${p.churnCycles}` : ''),
    );
  let phase = 'connecting';
  const ticker = setInterval(() => show(phase, run.progress()), 250);
  let load: LoadResult | undefined;
  try {
    const ready = await run.ready;
    if (ready.joined === 0) {
      throw new Error(`bench: no client of ${target.name} could join${ready.firstError ? `: ${ready.firstError}` : ''}`);
    }
    const connected = sampleTarget();
    if (plan.holdMs) {
      phase = 'holding';
      await new Promise((r) => setTimeout(r, plan.holdMs));
    }
    const held = sampleTarget();
    // CPU the server spends holding idle connections (heartbeats, timers, sweeps).
    const idleCpuPct = plan.holdMs ? Math.round(((held.cpuUs - connected.cpuUs) / (plan.holdMs * 1000)) * 1000) / 10 : null;
    const warmup = plan.warmup ?? 0;
    if (warmup > 0) {
      phase = 'warming up';
      await publishTicks(target, sessions, 0, warmup, plan.rate);
      await run.waitFor((p) => p.warmupDelivered >= ready.joined * warmup, plan.drainMs ?? 10_000);
    }
    const loaded = sampleTarget();
    const loadedEach = pids.length > 1 ? pids.map((pid) => sampleProcess(pid).cpuUs) : [];
    const backingLoaded = backing ? sampleProcess(backing.pid) : undefined;
    const backingCommandsLoaded = backing?.commandsProcessed ? await backing.commandsProcessed().catch(() => NaN) : NaN;
    if (plan.churnPerThread) {
      run.churn(plan.churnPerThread, plan.churnHoldMs?.[0] ?? 20, plan.churnHoldMs?.[1] ?? 200);
    }

    phase = 'publishing';
    const clientCpuBefore = process.cpuUsage();
    const hostBusyBefore = hostBusyUs();
    const publishStartUs = nowUs();
    const startMs = Date.now();
    await publishTicks(target, sessions, warmup, plan.events, plan.rate);
    const publishedMs = Date.now() - startMs;
    phase = 'draining';
    // Joined clients are the ones that can receive; failed ones are reported apart.
    const reachable = ready.joined * plan.events;
    await run.waitFor((p) => p.delivered >= reachable, plan.drainMs ?? 10_000);
    const after = sampleTarget();
    const afterEach = pids.length > 1 ? pids.map((pid) => sampleProcess(pid).cpuUs) : [];
    const backingAfter = backing ? sampleProcess(backing.pid) : undefined;
    const backingCommandsAfter = backing?.commandsProcessed ? await backing.commandsProcessed().catch(() => NaN) : NaN;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const hostBusy = hostBusyUs() - hostBusyBefore;
    const measuredUs = nowUs() - publishStartUs;

    phase = 'closing';
    load = await run.stop();
    const end = sampleTarget();

    const frames = load.delivered + load.duplicated + load.churnFrames;
    const backingCpuUs = backingLoaded && backingAfter ? backingAfter.cpuUs - backingLoaded.cpuUs : 0;
    const spanUs = load.lastReceiptUs > publishStartUs ? load.lastReceiptUs - publishStartUs : 0;
    const h = load.histogram;
    const result: BenchResult = {
      scenario: plan.scenario,
      target: target.name,
      clients: plan.clients,
      sessions: plan.sessionCount,
      events: plan.events,
      expected,
      delivered: load.delivered,
      lost: load.lost + (plan.clients - load.joined) * plan.events,
      duplicated: load.duplicated,
      p50_ms: ms(h.percentile(50)),
      p90_ms: ms(h.percentile(90)),
      p99_ms: ms(h.percentile(99)),
      max_ms: ms(h.max),
      frames_per_s: spanUs > 0 ? Math.round(frames / (spanUs / 1e6)) : 0,
      // With a backing server (Redis), its CPU over the same phase is part of the target's.
      server_cpu_us_per_frame:
        frames > 0 ? Math.round(((after.cpuUs - loaded.cpuUs + backingCpuUs) / frames) * 100) / 100 : null,
      server_rss_mb: Math.round(after.rssKb / 102.4) / 10,
      client_cpu_us_per_frame: frames > 0 ? Math.round(((clientCpu.user + clientCpu.system) / frames) * 100) / 100 : null,
      rate: Math.round((plan.events / Math.max(publishedMs, 1)) * 1000 * 10) / 10,
      failed_connections: load.failed,
      closed_early: load.closedEarly,
      unexpected: load.unexpected,
      warmup_events: warmup,
      server_idle_cpu_pct: idleCpuPct,
      host_load_1m: hostLoad,
      // Other work on the machine while this target was measured: the machine's busy CPU
      // minus the target's (and its Redis's) and the bench's, in % of one core.
      other_cpu_pct:
        measuredUs > 0
          ? Math.round(
              (Math.max(0, hostBusy - (after.cpuUs - loaded.cpuUs) - backingCpuUs - (clientCpu.user + clientCpu.system)) / measuredUs) * 1000,
            ) / 10
          : null,
    };
    if (pids.length > 1) {
      result.instances = pids.length;
      // Each instance's share of server_cpu_us_per_frame, in the order of the endpoints
      // (the first one also takes the publisher's requests).
      result.instance_cpu_us_per_frame =
        frames > 0 ? afterEach.map((cpu, k) => Math.round(((cpu - loadedEach[k]) / frames) * 100) / 100).join(' / ') : null;
    }
    if (backing && backingLoaded && backingAfter) {
      // The backing server's share of server_cpu_us_per_frame, its RSS, and the commands
      // it ran meanwhile (anyone's: a shared Redis also serves other clients).
      result[`${backing.name}_cpu_us_per_frame`] = frames > 0 ? Math.round((backingCpuUs / frames) * 100) / 100 : null;
      result[`${backing.name}_rss_mb`] = Math.round(backingAfter.rssKb / 102.4) / 10;
      if (backing.commandsProcessed) result[`${backing.name}_commands`] = Number.isFinite(backingCommandsAfter - backingCommandsLoaded)
        ? backingCommandsAfter - backingCommandsLoaded
        : null;
    }
    if (load.firstError) result.first_error = load.firstError;
    return { result, load, base, loaded, end, connectMs: load.connectMs };
  } finally {
    clearInterval(ticker);
    if (!load) await run.stop().catch(() => undefined);
    progress.clear();
  }
}
