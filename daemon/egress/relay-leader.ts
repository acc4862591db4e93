/**
 * With a shared Postgres journal every instance sees every command, so exactly one
 * instance relays them: the holder of a lease row (`relay_leases`, migration 3). Every
 * `renewMs` each instance runs one statement that takes the lease when it is free or
 * expired, or renews it when it is its own; the holder relays, the others wait.
 * When the holder dies its lease expires after `leaseMs` and another instance takes
 * over from the cursor saved in Postgres. A holder that cannot reach Postgres keeps
 * its relay running: it cannot read the journal either, so it relays nothing, and it
 * resumes from its own cursor, without redelivering what it sent during the outage
 * (its cursor saves failed meanwhile), when Postgres is back and the lease is still
 * its own. A holder that learns another instance took the lease stops relaying;
 * two relays overlap only if a stalled holder resumes after its lease expired, for
 * at most one renewal round (upstreams dedupe on message_id anyway).
 *
 * No reserved connection and no session lock: a lease survives nothing but its own
 * renewals, which keeps it correct across pool reconnects and Postgres restarts.
 */
import type { Logger } from '../log.js';
import { quoteSchema, type Sql } from '../engine/migrations.js';
import type { CommandRelay } from './command-relay.js';

/** Runs `relay` only while this instance holds the relay lease. */
export class RelayLeadership {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private leading = false;
  private round: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly sql: Sql,
    private readonly relay: CommandRelay,
    private readonly opts: { name: string; holder: string; schema: string; log: Logger; leaseMs?: number; renewMs?: number },
  ) {}

  /** True while this instance relays. */
  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.tick();
  }

  private tick(): void {
    if (this.stopped) return;
    this.round = this.renew().finally(() => {
      if (this.stopped) return;
      this.timer = setTimeout(() => this.tick(), this.opts.renewMs ?? 2000);
      this.timer.unref();
    });
  }

  private async renew(): Promise<void> {
    const { name, holder, log } = this.opts;
    const leaseMs = this.opts.leaseMs ?? 10_000;
    const table = `${quoteSchema(this.opts.schema)}.relay_leases`;
    let holds: boolean;
    try {
      const rows = await this.sql.unsafe<Array<{ holder: string }>>(
        `insert into ${table} (name, holder, expires_at) values ($1, $2, now() + $3 * interval '1 millisecond')
         on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
           where ${table}.holder = excluded.holder or ${table}.expires_at < now()
         returning holder`,
        [name, holder, leaseMs],
      );
      holds = rows.length === 1 && rows[0].holder === holder;
      this.failing = false;
    } catch (err) {
      // Postgres unreachable: nothing changes until it answers (see the header).
      if (!this.failing) log.warn({ err }, 'could not renew the relay lease (Postgres unreachable); retrying');
      this.failing = true;
      return;
    }
    if (holds && this.leading && !this.relay.running && !this.stopped) {
      // The relay loop ended on an unexpected error (logged there): run it again.
      this.relay.start();
    } else if (holds && !this.leading && !this.stopped) {
      this.leading = true;
      log.info({ lease: name }, 'relaying commands: this instance holds the relay lease');
      this.relay.start();
    } else if (!holds && this.leading) {
      this.leading = false;
      await this.relay.stop();
    }
  }

  /** Stops relaying and gives the lease up, so another instance takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
    if (!this.leading) return;
    this.leading = false;
    await this.relay.stop();
    await this.sql
      .unsafe(`delete from ${quoteSchema(this.opts.schema)}.relay_leases where name = $1 and holder = $2`, [this.opts.name, this.opts.holder])
      .catch(() => {});
  }
}
