/**
 * Command line of `npm run bench -- <scenario> [options]`, parsed and validated into
 * one typed options object with per-scenario defaults.
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_TARGETS, isTargetName, TARGET_NAMES, type TargetName } from './targets/target.js';

/** Scenario names. */
export const SCENARIOS = ['fanout', 'sessions', 'capacity', 'churn', 'jitter'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Everything a bench run is told. */
export interface BenchOptions {
  scenario: ScenarioName;
  clients: number;
  sessions: number;
  events: number;
  /** Publish ticks per second. */
  rate: number;
  /** Ticks published before the measured ones (JIT warm-up of server and clients). */
  warmup: number;
  targets: TargetName[];
  json: boolean;
  /** shardcast targets: pjoin/pleave notices on for the bench sessions. */
  joinLeave: boolean;
  /** Print a Markdown table (RESULTS.md) instead of the text table. */
  markdown: boolean;
  /** Client threads. */
  threads: number;
  /** capacity: idle seconds with heartbeats before the check broadcast. */
  holdS: number;
  /** churn: cycling connections in total. */
  churn: number;
  /** churn: how many times the whole run is repeated on the same server process. */
  rounds: number;
  /** How many times the whole target list runs, each time in a rotated order (round-summary.ts). */
  repeat: number;
}

/** A bad command line; the message says what to type instead. */
export class UsageError extends Error {
  readonly code = 'BENCH_USAGE';
}

/** Help text. */
export const USAGE = `usage: npm run bench -- <${SCENARIOS.join('|')}> [options]

  --clients N     client connections (fanout 1000, sessions 10000, capacity 15000, churn 1000, jitter 1000)
  --sessions S    sessions the clients are spread over (fanout 1, sessions 1000, capacity 100, churn 10, jitter 1)
  --events E      events per session (fanout 50, sessions 20, capacity 1, churn 100, jitter 120)
  --rate R        publish ticks per second, one event to every session per tick
                  (fanout: 20, lowered to keep clients×rate ≤ 50,000 frames/s; sessions 5; capacity 1; churn 10; jitter 2)
  --warmup W      unmeasured ticks first, to warm up JITs (default 5; capacity 0)
  --targets a,b   any of ${TARGET_NAMES.join(', ')}
                  (default: ${DEFAULT_TARGETS.join(', ')}; jitter: shardcast; the shardcast-redis* targets need the
                  Redis of BENCH_REDIS_URL, default redis://127.0.0.1:6379; shardcast-amqp the
                  RabbitMQ of BENCH_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)
  --threads T     client threads (default: cores; jitter: client processes, at least 2)
  --hold S        capacity: idle seconds with heartbeats before the check broadcast (default 10)
  --churn C       churn: connections cycling at once (default 100)
  --rounds K      churn: repeat the run K times on the same server (default 2)
  --repeat N      run the target list N times, each round in a rotated order, and add one
                  summary row per target: medians over the rounds, and its median per-round
                  p50 difference and CPU-per-frame ratio to the first target listed (default 1)
  --join-leave    shardcast: pjoin/pleave notices to every member on for the bench sessions
                  (off by default, as in the daemon's defaults)
  --json          print a JSON array (one object per target) instead of the table
  --markdown      print the table as Markdown (for bench/RESULTS.md)
`;

function positive(flag: string, value: string | undefined, integer = true): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${flag} needs a positive ${integer ? 'integer' : 'number'}, got ${value ?? 'nothing'}`);
  }
  return n;
}

/** Parses argv (without node and script). */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const [scenario, ...rest] = argv;
  if (!scenario || !(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new UsageError(`first argument must be a scenario (${SCENARIOS.join(', ')}), got ${scenario ?? 'nothing'}`);
  }
  const given: Partial<Record<'clients' | 'sessions' | 'events' | 'rate' | 'threads' | 'hold' | 'churn' | 'warmup' | 'rounds' | 'repeat', number>> =
    {};
  let targets: TargetName[] | undefined;
  let json = false;
  let markdown = false;
  let joinLeave = false;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    switch (flag) {
      case '--json':
        json = true;
        break;
      case '--markdown':
        markdown = true;
        break;
      case '--join-leave':
        joinLeave = true;
        break;
      case '--targets': {
        const names = (rest[++i] ?? '').split(',').filter(Boolean);
        const unknown = names.filter((n) => !isTargetName(n));
        if (names.length === 0 || unknown.length > 0) {
          throw new UsageError(`--targets takes a comma list of ${TARGET_NAMES.join(', ')}; unknown: ${unknown.join(', ') || 'none given'}`);
        }
        targets = names as TargetName[];
        break;
      }
      case '--clients':
      case '--sessions':
      case '--events':
      case '--threads':
      case '--hold':
      case '--churn':
      case '--rounds':
      case '--repeat':
        given[flag.slice(2) as 'clients'] = positive(flag, rest[++i]);
        break;
      case '--rate':
        given.rate = positive(flag, rest[++i], false);
        break;
      case '--warmup': {
        const n = Number(rest[++i]);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`--warmup needs an integer ≥ 0, got ${rest[i] ?? 'nothing'}`);
        given.warmup = n;
        break;
      }
      default:
        throw new UsageError(`unknown option ${flag}\n\n${USAGE}`);
    }
  }
  const name = scenario as ScenarioName;
  const defaults = {
    fanout: { clients: 1000, sessions: 1, events: 50, rate: 0 },
    sessions: { clients: 10_000, sessions: 1000, events: 20, rate: 5 },
    capacity: { clients: 15_000, sessions: 100, events: 1, rate: 1 },
    churn: { clients: 1000, sessions: 10, events: 100, rate: 10 },
    jitter: { clients: 1000, sessions: 1, events: 120, rate: 2 },
  }[name];
  const clients = given.clients ?? defaults.clients;
  const sessions = name === 'fanout' ? 1 : (given.sessions ?? defaults.sessions);
  if (given.sessions !== undefined && name === 'fanout' && given.sessions !== 1) {
    throw new UsageError('fanout always uses one session; use the sessions scenario for more');
  }
  if (sessions > clients) throw new UsageError(`--sessions (${sessions}) cannot exceed --clients (${clients})`);
  const rate = given.rate ?? (name === 'fanout' ? Math.min(20, Math.max(2, Math.floor(50_000 / clients))) : defaults.rate);
  return {
    scenario: name,
    clients,
    sessions,
    events: given.events ?? defaults.events,
    rate,
    warmup: given.warmup ?? (name === 'capacity' ? 0 : 5),
    // jitter drives the Shardcast SDK: only shardcast targets speak its protocol.
    targets: targets ?? (name === 'jitter' ? ['shardcast'] : [...DEFAULT_TARGETS]),
    json,
    markdown,
    joinLeave,
    threads: given.threads ?? availableParallelism(),
    holdS: given.hold ?? 10,
    churn: given.churn ?? 100,
    rounds: given.rounds ?? 2,
    repeat: given.repeat ?? 1,
  };
}
