// A Postgres connection reset right after its handshake, before the first answer:
// the daemon's client must fail that query (its caller retries) and leave no
// unhandled rejection behind, which would end the daemon (Node's default). The
// Postgres outage e2e test crashed the primary this way on CI, with postgres.js's
// own array-types query. Real Postgres behind a proxy that resets the client at
// its first query message.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import postgres from 'postgres';
import t from 'tap';
import { connectPostgres } from '../../daemon/engine/postgres-client.js';
import type { Sql } from '../../daemon/engine/migrations.js';
import { migrate } from '../../daemon/engine/migrations.js';
import { createTestSchema, DATABASE_URL } from '../support/postgres.js';

/** A proxy to the test Postgres that resets each client as soon as it sends a query (`P` parse or `Q` simple query). */
async function resettingProxy(): Promise<{ url: string; resets: () => number; close(): Promise<void> }> {
  const target = new URL(DATABASE_URL);
  let resets = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = createConnection(Number(target.port || 5432), target.hostname);
    sockets.add(upstream);
    let startup = true; // the startup message has no type byte
    client.on('data', (chunk: Buffer) => {
      if (!startup && (chunk[0] === 0x50 || chunk[0] === 0x51)) {
        resets++;
        upstream.destroy();
        client.resetAndDestroy();
        return;
      }
      startup = false;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.writable && client.write(chunk));
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const url = new URL(DATABASE_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    resets: () => resets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Runs one query on a fresh pool through the proxy; returns how it failed and the unhandled rejections seen meanwhile. */
async function firstQueryReset(sql: Sql): Promise<{ error: string; unhandled: unknown[] }> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const error = await sql`select 1 as one`.then(
      () => 'none',
      (err: unknown) => String((err as { code?: string }).code ?? err),
    );
    // Give a rejection nobody holds the turns it needs to be reported.
    await new Promise((r) => setTimeout(r, 200));
    return { error, unhandled };
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

t.test('a reset before the first answer fails the query and leaves no unhandled rejection', async (t) => {
  const proxy = await resettingProxy();
  t.teardown(() => proxy.close());
  const r = await firstQueryReset(connectPostgres(proxy.url, { applicationName: 'shardcast-test', max: 1 }));
  t.ok(proxy.resets() >= 1, 'the proxy reset the connection at its first query');
  t.not(r.error, 'none', `the query failed (${r.error}); its caller sees it`);
  t.same(r.unhandled.map(String), [], 'no unhandled rejection');
});

t.test('control: postgres.js with its default options leaves one (the crash this guards against)', async (t) => {
  const proxy = await resettingProxy();
  t.teardown(() => proxy.close());
  const r = await firstQueryReset(postgres(proxy.url, { max: 1, onnotice: () => {} }) as unknown as Sql);
  t.ok(r.unhandled.length >= 1, `the array-types query's failure went unhandled (${r.unhandled.map(String).join('; ')})`);
});

t.test('migrations run on a fresh pool of the daemon\'s client (postgres.js never hands out a reserved connection there)', async (t) => {
  const { schema, drop } = await createTestSchema();
  t.teardown(drop);
  const sql = connectPostgres(DATABASE_URL, { applicationName: 'shardcast-test', max: 2 });
  t.teardown(() => sql.end({ timeout: 5 }));
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('migrate() did not finish within 10 s')), 10_000).unref());
  const first = await Promise.race([migrate(sql, { schema }), timeout]);
  t.ok(first.version >= 1, `migrated to version ${first.version}`);
  t.same((await migrate(sql, { schema })).applied, [], 'a second run finds nothing to apply');
});
