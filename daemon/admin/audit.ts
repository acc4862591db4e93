/**
 * The audit trail of mutating admin calls (kick, drain): every one is logged, and
 * with Postgres configured also stored in `admin_audit` (migration 5). A failed
 * insert is logged and does not fail the call: the action already happened, and the
 * log line holds the same record.
 */
import type { Logger } from 'pino';
import { quoteSchema, type Sql } from '../engine/migrations.js';

/** One mutating admin call. */
export interface AuditRecord {
  /** `kick` or `drain`. */
  action: string;
  /** What it acted on (e.g. `user:alice`, `conn:ab12.0.3`, `shard:1`, `instance`). */
  target: string;
  reason: string;
  /** Address of the caller. */
  remote: string;
  /** What came of it (e.g. `kicked 2`, `accepted`, or the refusal). */
  outcome: string;
}

/** Writes audit records; see the header comment. */
export class AuditTrail {
  constructor(
    private readonly log: Logger,
    private readonly instanceId: string,
    private readonly sql: Sql | undefined,
    private readonly schema: string,
  ) {}

  /** Logs the record and, with Postgres, stores it; resolves once stored (or failed to). */
  async record(r: AuditRecord): Promise<void> {
    this.log.info({ audit: { ...r, instance: this.instanceId } }, `admin ${r.action}`);
    if (this.sql === undefined) return;
    try {
      const table = this.sql.unsafe(`${quoteSchema(this.schema)}.admin_audit`);
      await this.sql`insert into ${table} (instance, action, target, reason, remote, outcome)
                     values (${this.instanceId}, ${r.action}, ${r.target}, ${r.reason}, ${r.remote}, ${r.outcome})`;
    } catch (err) {
      this.log.warn({ err, audit: r }, 'admin audit record not stored in Postgres (it is in this log)');
    }
  }
}
