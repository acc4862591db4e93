// The idle watch (daemon/shard/idle.ts): pings a silent connection at half the
// timeout, closes it with 1000 after all of it, and keeps a connection that answers
// its pings open forever — also when the pong comes back in the very millisecond of
// the ping (loopback), which once left such a client unpinged and closed as idle
// after a few rounds (found by the long abuse run: the canary, reading but never
// sending, was closed after 120 s).
import t from 'tap';
import type { Connection } from '../../daemon/shard/connection.js';
import { IdleWatch } from '../../daemon/shard/idle.js';

function fakeConnection() {
  const log: string[] = [];
  const conn = {
    closed: false,
    cutAt: 0,
    goAwaySent: false,
    heardAt: 0,
    pingedAt: -1,
    ws: { cork: (f: () => void) => f(), ping: () => log.push('ping') },
    end(code: number) {
      this.closed = true;
      log.push(`end ${code}`);
    },
  };
  return { conn: conn as unknown as Connection, log };
}

t.test('a client that answers every ping at once stays connected, round after round', async (t) => {
  const watch = new IdleWatch(8);
  const { conn, log } = fakeConnection();
  let now = 1_000_000;
  watch.heard(conn, now);
  for (let step = 0; step < 400; step++) {
    now += 250;
    const before = log.length;
    watch.sweep([conn], now);
    // The pong arrives in the same millisecond as the ping.
    if (log.length > before && log.at(-1) === 'ping') watch.heard(conn, now);
  }
  t.notOk(log.some((l) => l.startsWith('end')), 'never closed over 100 s of silence answered by pongs');
  t.ok(log.filter((l) => l === 'ping').length >= 20, `pinged every half timeout (${log.filter((l) => l === 'ping').length} pings)`);
});

t.test('a silent client that does not answer is pinged once and closed with 1000 after the timeout', async (t) => {
  const watch = new IdleWatch(8);
  const { conn, log } = fakeConnection();
  let now = 2_000_000;
  watch.heard(conn, now);
  for (let step = 0; step < 40 && !(conn as unknown as { closed: boolean }).closed; step++) {
    now += 250;
    watch.sweep([conn], now);
  }
  t.same(log, ['ping', 'end 1000'], 'one ping at 4 s, the close at 8 s');
});
