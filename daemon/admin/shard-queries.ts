/**
 * The primary's side of admin queries to shard threads: sends an `admin` message,
 * matches the `admin-reply` by its id, and gives up after a timeout (a busy or
 * dying shard must not hang an admin request). Owned by the primary thread; every
 * pending query ends by its reply or its timer.
 */
import type { ShardLink } from '../primary/shard-link.js';
import type { ShardQueries, ShardQuery, ShardQueryName } from './shard-query.js';

/** How long a shard has to answer an admin query. */
export const SHARD_QUERY_TIMEOUT_MS = 3000;

/** One shard's answer, or why there is none. */
export type ShardAnswer<K extends ShardQueryName> = { shard: number; ok: true; result: ShardQueries[K]['result'] } | { shard: number; ok: false; error: string };

interface Pending {
  resolve(answer: { ok: true; result: unknown } | { ok: false; error: string }): void;
  timer: NodeJS.Timeout;
}

/** Outstanding admin queries to shards; see the header comment. */
export class ShardQueryClient {
  private nextReq = 1;
  private readonly pending = new Map<number, Pending>();

  /** Asks every link in `links` the same query; resolves with one answer per shard, in shard order. */
  async askAll<K extends ShardQueryName>(links: Iterable<ShardLink>, name: K, args: ShardQueries[K]['args']): Promise<Array<ShardAnswer<K>>> {
    const asked = [...links].sort((a, b) => a.id - b.id);
    return Promise.all(asked.map((link) => this.ask(link, name, args)));
  }

  /** Asks one shard. */
  ask<K extends ShardQueryName>(link: ShardLink, name: K, args: ShardQueries[K]['args']): Promise<ShardAnswer<K>> {
    const req = this.nextReq++;
    return new Promise((resolve) => {
      const settle = (answer: { ok: true; result: unknown } | { ok: false; error: string }) =>
        resolve(answer.ok ? { shard: link.id, ok: true, result: answer.result as ShardQueries[K]['result'] } : { shard: link.id, ok: false, error: answer.error });
      const timer = setTimeout(() => {
        this.pending.delete(req);
        settle({ ok: false, error: `shard ${link.id} did not answer within ${SHARD_QUERY_TIMEOUT_MS} ms` });
      }, SHARD_QUERY_TIMEOUT_MS);
      this.pending.set(req, { resolve: settle, timer });
      link.send({ op: 'admin', req, query: { name, args } as ShardQuery });
    });
  }

  /** Settles a query with a shard's `admin-reply`. */
  settle(reply: { req: number; ok: true; result: unknown } | { req: number; ok: false; message: string }): void {
    const p = this.pending.get(reply.req);
    if (p === undefined) return;
    this.pending.delete(reply.req);
    clearTimeout(p.timer);
    p.resolve(reply.ok ? { ok: true, result: reply.result } : { ok: false, error: reply.message });
  }

  /** Fails every pending query (the instance is stopping). */
  close(): void {
    for (const [req, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, error: 'the instance is stopping' });
      this.pending.delete(req);
    }
  }
}
