/**
 * A participant from the command line, for trying the examples by hand: connects
 * with the SDK (protocol/client), joins a session, sends one command (`cmd`), prints
 * the gateway's ack, then prints the session's events as JSON lines for `--watch`
 * seconds (0: exit after the ack). Exits 1 with the reason when the command fails.
 *
 *   node dist/examples/send-command.js --session quiz:42 --user alice --type join --data '{"name":"Alice"}'
 *   node dist/examples/send-command.js --session quiz:42 --token "$HOST_TOKEN" --type start --watch 30
 *
 * Options: `--url` (default ws://127.0.0.1:8080/v1/ws), `--user` (dev mode) or
 * `--token`, `--session`, `--type`, `--data` (JSON, default null), `--cid`,
 * `--watch` (seconds).
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import type { Value } from '../protocol/frames.js';
import { ShardcastClient } from '../protocol/client/index.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'ws://127.0.0.1:8080/v1/ws' },
      user: { type: 'string' },
      token: { type: 'string' },
      session: { type: 'string' },
      type: { type: 'string' },
      data: { type: 'string', default: 'null' },
      cid: { type: 'string' },
      watch: { type: 'string', default: '0' },
    },
  });
  if (values.session === undefined || values.type === undefined) throw new Error('--session and --type are required');
  if ((values.user === undefined) === (values.token === undefined)) throw new Error('give one of --user (dev mode) or --token');
  const watchS = Number(values.watch);
  if (!Number.isFinite(watchS) || watchS < 0) throw new Error('--watch must be a number of seconds');
  let data: Value;
  try {
    data = JSON.parse(values.data) as Value;
  } catch (err) {
    throw new Error(`--data is not JSON: ${(err as Error).message}`);
  }
  const client = new ShardcastClient({ url: values.url, WebSocket, ...(values.user !== undefined ? { user: values.user } : { token: values.token }) });
  try {
    await client.connect();
    const sub = client.join(values.session);
    sub.on('snapshot', ({ snap }) => console.log(JSON.stringify({ snapshot: snap })));
    sub.on('event', (e) => console.log(JSON.stringify({ seq: e.seq, type: e.type, data: e.data })));
    await sub.ready;
    const ack = await sub.command(values.type, data, values.cid !== undefined ? { cid: values.cid } : {});
    console.log(JSON.stringify({ ack }));
    if (watchS > 0) await new Promise((r) => setTimeout(r, watchS * 1000));
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
