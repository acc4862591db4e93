/**
 * The admin API's answers as the CLI reads them (docs/admin.md). Each reader
 * checks the fields the CLI uses before typing the value, so a daemon of another
 * version fails with a clear message rather than a crash in a table.
 */
import type { SessionRow } from '../daemon/admin/admin-api.js';
import type { ConnectionFigures, ShardStats } from '../daemon/admin/shard-query.js';
import { CliError } from './cli-errors.js';

export type { ConnectionFigures, SessionRow, ShardStats };

/** GET /v1/admin/status */
export interface StatusReply {
  instance: string;
  version: string;
  engine: string;
  startedAt: string;
  uptimeS: number;
  ready: boolean;
  draining: boolean;
  port: number;
  shards: { configured: number; live: number };
  connections: number;
  streamedSessions: number;
}

/** GET /v1/admin/shards */
export interface ShardsReply {
  instance: string;
  shards: ShardStats[];
  unanswered: Array<{ shard: number; error: string }>;
}


/** GET /v1/admin/sessions */
export interface SessionsReply {
  instance: string;
  total: number;
  top: number;
  sessions: SessionRow[];
  unanswered: Array<{ shard: number; error: string }>;
}

/** GET /v1/admin/sessions/{id} */
export interface SessionReply {
  instance: string;
  session: string;
  epoch: string;
  head: number;
  historyLength: number;
  historySize: number;
  subscribers: number;
  perShard: Record<string, number>;
  joining: number;
  lagging: number;
  presence: { total: number; users: string[] } | null;
  connections: ConnectionFigures[];
}

/** GET /v1/admin/connections */
export interface ConnectionsReply {
  instance: string;
  total: number;
  connections: ConnectionFigures[];
}

/** POST /v1/admin/kick */
export interface KickReply {
  instance: string;
  kicked: ConnectionFigures[];
  closeCode: number;
}

/** POST /v1/admin/drain */
export interface DrainReply {
  instance: string;
  draining: 'instance' | 'shard';
  shard?: number;
}

/** GET /v1/admin/instances */
export interface InstancesReply {
  registry: boolean;
  instances: Array<{ instance: string; admin?: string; version: string; startedAt: string; heartbeatAt?: string; draining?: boolean; self: boolean }>;
}

/** Checks that `value` is an object with each of `fields` (array fields as arrays) and types it. */
export function expectReply<T>(value: unknown, what: string, fields: readonly string[], arrays: readonly string[] = []): T {
  if (typeof value !== 'object' || value === null) throw new CliError(`unexpected ${what} reply: not a JSON object`);
  const o = value as Record<string, unknown>;
  for (const f of fields) if (!(f in o)) throw new CliError(`unexpected ${what} reply: no "${f}" (a daemon of another version?)`);
  for (const f of arrays) if (!Array.isArray(o[f])) throw new CliError(`unexpected ${what} reply: "${f}" is not a list`);
  return value as T;
}
