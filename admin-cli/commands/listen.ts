/** `shardcast-admin listen`: joins a session as a client and prints its events as JSON lines. */
import { ShardcastClient, type EventFrame } from '../../protocol/client/index.js';
import { UsageError } from '../cli-errors.js';
import { parseCount, parseFlags, required, type Command } from '../command.js';
import { daemonHttpUrl, websocketUrlOf } from '../daemon-url.js';

const usage = `Usage: shardcast-admin listen --session S (--token T | --user U) [--since SEQ --epoch E] [--count N]

Joins a session like a client and prints each event it receives as one JSON line:
{"session":S,"seq":N,"epoch":E,"type":T,"data":…,"ts":MS[,"key":K]} (binary data as base64).
Reconnects and resumes on its own; progress notes go to stderr.

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
    // Loaded here so the other verbs work where `ws` is not installed.
    const { WebSocket } = await import('ws');

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
      sub.on('joined', (j) => {
        io.stderr(`joined ${session} at epoch ${j.ep} seq ${j.seq}${j.rec ? ' (resumed: missed events follow)' : ''}`);
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
