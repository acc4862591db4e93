/** `shardcast-admin tail SESSION`: follows a session's events live through the admin API. */
import { AdminClient } from '../admin-client.js';
import { CliError, UsageError } from '../cli-errors.js';
import { parseCount, parseFlagsAndArgs, type Command } from '../command.js';

const usage = `Usage: shardcast-admin tail SESSION [--count N] [--json]

Follows SESSION's stream on this instance as it happens (GET
/v1/admin/sessions/SESSION/tail, newline-delimited JSON): every event in seq order,
presence notices, and resyncs; from now on (no history). Runs until interrupted.

  --count N         stop after N events
  --json            print the API's lines as they come (one JSON object per line)

Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

/** One line of the tail stream. */
interface TailLine {
  t: string;
  seq?: number;
  epoch?: string;
  to?: string[];
  frame?: Record<string, unknown>;
  session?: string;
  reason?: string;
}

function human(line: TailLine): string | undefined {
  switch (line.t) {
    case 'tailing':
      return undefined;
    case 'resync':
      return `-- resync: epoch ${line.epoch} at seq ${line.seq} (history could not fill a gap)`;
    case 'end':
      return `-- tail ended: ${line.reason}`;
    case 'frame': {
      const f = line.frame ?? {};
      const to = line.to !== undefined ? ` to=${line.to.join(',')}` : '';
      if (f.t === 'ev') return `#${line.seq} ${String(f.type)}${to}${f.k !== undefined ? ` key=${String(f.k)}` : ''} ${JSON.stringify(f.data)}`;
      return `${String(f.t)} ${f.u !== undefined ? String(f.u) : JSON.stringify(f)}`;
    }
    default:
      return JSON.stringify(line);
  }
}

/** The tail verb. */
export const tailCommand: Command = {
  name: 'tail',
  summary: 'follow a session\'s events live (admin API)',
  usage,
  async run(args, io) {
    const { values: flags, positionals } = parseFlagsAndArgs(args, { count: { type: 'string' }, json: { type: 'boolean' } });
    if (positionals.length !== 1) throw new UsageError('give exactly one session id');
    const session = positionals[0];
    const count = flags.count === undefined ? Infinity : parseCount(flags.count, '--count', 1);
    const client = new AdminClient(io.env, io.signal);
    const response = await client.stream(`/v1/admin/sessions/${encodeURIComponent(session)}/tail`);
    if (response.body === null) throw new CliError('the tail answered without a body');
    const decoder = new TextDecoder();
    let buf = '';
    let events = 0;
    const reader = response.body.getReader();
    try {
      for (;;) {
        const chunk = await reader.read().catch((err: unknown) => {
          if (io.signal.aborted) return { done: true as const, value: undefined };
          throw new CliError(`the tail broke off: ${err instanceof Error ? err.message : String(err)}`);
        });
        if (chunk.done) break;
        buf += decoder.decode(chunk.value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const text = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (text === '') continue;
          const line = JSON.parse(text) as TailLine;
          if (line.t === 'tailing') io.stderr(`tailing ${session} on instance ${String((line as { instance?: unknown }).instance)} (Ctrl-C to stop)`);
          if (flags.json) io.stdout(text);
          else {
            const out = human(line);
            if (out !== undefined) io.stdout(out);
          }
          if (line.t === 'frame' && line.frame?.t === 'ev' && ++events >= count) return 0;
          if (line.t === 'end') return 1;
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
    if (!io.signal.aborted) throw new CliError('the daemon ended the tail (draining or stopped)');
    return 0;
  },
};
