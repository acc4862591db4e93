/**
 * The chat's Postgres table (in the service's own schema): every message, numbered in
 * the order the service accepted it (`n`, the order everyone sees), unique on
 * (session, user, cid) so a redelivered command finds its message instead of
 * storing it twice.
 */
import { openServiceDatabase, type Sql } from '../toolkit/service-database.js';

const DDL = [
  `create table if not exists messages (
     n bigserial primary key,
     session text not null,
     "user" text not null,
     cid text not null,
     text text not null,
     received_at_us bigint not null,
     stored_at timestamptz not null default now(),
     unique (session, "user", cid))`,
  `create index if not exists messages_by_session on messages (session, n)`,
];

/** A stored message. */
export interface ChatMessage {
  n: number;
  from: string;
  text: string;
  /** When the gateway received it (ms since the epoch). */
  at: number;
}

/** A row; postgres.js reads bigint as a string (exact), converted here. */
interface Row {
  n: string;
  user: string;
  text: string;
  received_at_us: string;
}

const toMessage = (r: Row): ChatMessage => ({ n: Number(r.n), from: r.user, text: r.text, at: Math.floor(Number(r.received_at_us) / 1000) });

/** The chat's storage. */
export class ChatStore {
  private constructor(readonly sql: Sql) {}

  static async open(url: string, schema: string): Promise<ChatStore> {
    return new ChatStore(await openServiceDatabase(url, schema, DDL));
  }

  /** Stores a message, or finds the one stored for the same (session, user, cid). */
  async add(m: { session: string; user: string; cid: string; text: string; receivedAtUs: number }): Promise<ChatMessage> {
    const [row] = await this.sql<Row[]>`
      with inserted as (
        insert into messages (session, "user", cid, text, received_at_us)
        values (${m.session}, ${m.user}, ${m.cid}, ${m.text}, ${m.receivedAtUs})
        on conflict do nothing
        returning n, "user", text, received_at_us)
      select n, "user", text, received_at_us from inserted
      union all
      select n, "user", text, received_at_us from messages where session = ${m.session} and "user" = ${m.user} and cid = ${m.cid}
      limit 1`;
    return toMessage(row);
  }

  /** The last `limit` messages of a session, oldest first. */
  async recent(session: string, limit: number): Promise<ChatMessage[]> {
    const rows = await this.sql<Row[]>`
      select n, "user", text, received_at_us from messages where session = ${session} order by n desc limit ${limit}`;
    return rows.reverse().map(toMessage);
  }

  async end(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}
