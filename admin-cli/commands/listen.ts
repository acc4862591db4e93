/**
 * `shardcast-admin listen`: joins a session as a client and prints what a client
 * gets as JSON lines: events, and the snapshot a join receives when it could not
 * resume (a late joiner, or a position history no longer covers: `rec: false`).
 */
import { ShardcastClient, type EventFrame, type SnapshotInfo, type WebSocketConstructor } from '../../protocol/client/index.js';
import { CliError, UsageError } from '../cli-errors.js';
import { parseCount, parseFlags, required, type Command } from '../command.js';
import { daemonHttpUrl, websocketUrlOf } from '../daemon-url.js';

const usage = `Usage: shardcast-admin listen --session S (--token T | --user U) [--since SEQ --epoch E] [--count N]

Joins a session like a client and prints what it receives as JSON lines (binary
data as base64), in order:
  an event     {"session":S,"seq":N,"epoch":E,"type":T,"data":…,"ts":MS[,"key":K]}
  a snapshot   {"session":S,"snapshot":{KEY:{"seq","type","data","ts"},…},"epoch":E,"seq":N,"rec":false}
A snapshot line comes when the join could not replay what was missed (no --since,
or history no longer reaches back to it: rec false) or the gateway lost continuity
(resync): it holds the latest value of each snapshot key, and events after seq N
follow (a join without --since into a session with no snapshot keys prints none). Reconnects and resumes on its own; progress notes go to stderr.

  --session S     session id                                            required
  --token T       client JWT (see: shardcast-admin token)
  --user U        user id, for daemons in dev mode (instead of --token)
  --since SEQ     resume after this seq (with --epoch): missed events are replayed
  --epoch E       epoch of --since
  --count N       exit 0 after N events (default: run until interrupted)

Environment: SHARDCAST_URL (default http://127.0.0.1:8080; the WebSocket URL is derived).
Exit: 0 after --count events or on Ctrl-C; 1 when the daemon refuses or ends the connection.`;

/** JSON for event data: msgpack binary becomes base64 text. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') : value;
}

function snapshotLine(session: string, info: SnapshotInfo): string {
  const at = info.resync ?? info.joined;
  return JSON.stringify({ session, snapshot: info.snap, epoch: at.ep, seq: at.seq, rec: false, ...(info.resync ? { resync: true } : {}) }, jsonReplacer);
}

/** `ws`'s WebSocket (Node 20 has no global one), or a CliError saying how to get it. */
async function loadWebSocket(): Promise<WebSocketConstructor> {
  try {
    const { WebSocket } = await import('ws');
    return WebSocket as unknown as WebSocketConstructor;
  } catch (err) {
    const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (global !== undefined) return global;
    throw new CliError(`listen needs the \`ws\` package, which is missing from this install (${(err as Error).message}); reinstall shardcast's dependencies (npm ci)`);
  }
}

function eventLine(ev: EventFrame): string {
  return JSON.stringify(
    { session: ev.s, seq: ev.seq, epoch: ev.ep, type: ev.type, data: ev.data, ts: ev.ts, ...(ev.k !== undefined ? { key: ev.k } : {}) },
    jsonReplacer,
  );
}

/** The listen verb. */
export const listenCommand: Command = {
  name: 'listen',
  summary: 'join a session and print its events as JSON lines',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, {
      session: { type: 'string' },
      token: { type: 'string' },
      user: { type: 'string' },
      since: { type: 'string' },
      epoch: { type: 'string' },
      count: { type: 'string' },
    });
    const session = required(flags.session, '--session');
    if ((flags.token === undefined) === (flags.user === undefined)) throw new UsageError('give exactly one of --token and --user');
    if ((flags.since === undefined) !== (flags.epoch === undefined)) throw new UsageError('--since and --epoch go together');
    const since = flags.since !== undefined ? { epoch: flags.epoch as string, seq: parseCount(flags.since, '--since') } : undefined;
    const count = flags.count !== undefined ? parseCount(flags.count, '--count', 1) : undefined;
    const url = websocketUrlOf(daemonHttpUrl(io.env));
    // Loaded here so the other verbs work even where `ws` could not be loaded.
    const WebSocket = await loadWebSocket();

    const client = new ShardcastClient({
      url,
      WebSocket,
      ...(flags.token !== undefined ? { token: flags.token } : { user: flags.user }),
    });
    return new Promise<number>((resolve) => {
      let done = false;
      let connectedOnce = false;
      let received = 0;
      const finish = (code: number, message?: string): void => {
        if (done) return;
        done = true;
        if (message) io.stderr(message);
        io.signal.removeEventListener('abort', onAbort);
        void client.close().then(() => resolve(code));
      };
      const onAbort = (): void => finish(0);
      if (io.signal.aborted) return finish(0);
      io.signal.addEventListener('abort', onAbort);

      client.on('connected', () => {
        connectedOnce = true;
      });
      client.on('disconnected', (d) => {
        const why = d.error ?? `close code ${d.code}${d.reason ? ` (${d.reason})` : ''}`;
        // Before the first hello, a failure is a wrong URL, a daemon that is down or a
        // refused upgrade: say so instead of retrying forever.
        if (!connectedOnce) finish(1, `cannot connect to ${url}: ${why}`);
        else io.stderr(`connection lost: ${why}; reconnecting in ${d.reconnectInMs} ms`);
      });
      client.on('error', (err) => {
        if (client.state === 'closed') finish(1, err.message);
        else io.stderr(`server error: ${err.message}`);
      });
      const sub = client.join(session, since ? { since } : {});
      let firstJoin = true;
      sub.on('joined', (j) => {
        const asked = firstJoin && since !== undefined;
        firstJoin = false;
        let note = '';
        if (j.rec) note = ' (resumed: missed events follow)';
        else if (asked) note = ` (rec: false: could not resume after seq ${since.seq} of epoch ${since.epoch}, history no longer covers it; the snapshot line stands for what was missed)`;
        else note = ' (rec: false: new listener, no position; events after it follow the snapshot)';
        io.stderr(`joined ${session} at epoch ${j.ep} seq ${j.seq}${note}`);
      });
      sub.on('snapshot', (info) => {
        if (done) return;
        // A plain join into a session without snapshot keys has nothing to show.
        if (!info.resync && since === undefined && Object.keys(info.snap).length === 0) return;
        if (info.resync) io.stderr(`resync: ${session} lost continuity; now at epoch ${info.resync.ep} seq ${info.resync.seq}, the snapshot follows`);
        io.stdout(snapshotLine(session, info));
      });
      sub.on('end', (end) => {
        if (end.reason === 'failed') finish(1, `cannot listen to ${session}: ${end.error?.message ?? 'subscription failed'}`);
      });
      sub.on('event', (ev) => {
        if (done) return;
        io.stdout(eventLine(ev));
        received += 1;
        if (count !== undefined && received >= count) finish(0);
      });
    });
  },
};
