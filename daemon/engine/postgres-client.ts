/**
 * The daemon's Postgres client (postgres.js), made in one place so every pool gets
 * the options that keep a Postgres outage from crashing the process.
 *
 * `fetch_types: false`: by default postgres.js runs a query for the array types on
 * every new connection, from an async function whose promise nobody holds. When
 * Postgres goes away during that query (a restart, a failover, a reset between the
 * handshake and the first answer), the rejection is unhandled and Node ends the
 * process: the Postgres outage test saw the primary crash on `read ECONNRESET` this
 * way. The daemon passes no JavaScript arrays as parameters (batches go as JSON), so
 * it needs no array types.
 */
import postgres from 'postgres';
import type { Sql } from './migrations.js';

/** A postgres.js pool on `url` with the daemon's options; `end()` it on shutdown. */
export function connectPostgres(url: string, opts: { applicationName: string; max?: number }): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: 5,
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: opts.applicationName },
  }) as unknown as Sql;
}
