/**
 * A shard's end of its port to the primary: one-way notices and request/reply
 * calls with a timeout. Owned by the shard thread; close() rejects what is pending.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode } from '../../protocol/codes.js';
import type { RequestName, ShardRequests, ShardToPrimary } from '../threads/messages.js';

/** A failed call to the primary, with the protocol error code to report. */
export class PrimaryCallError extends Error {
  /** `after`: milliseconds to wait before retrying, when the primary said (a rate limit). */
  constructor(readonly code: number, message: string, readonly after?: number) {
    super(message);
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: PrimaryCallError): void;
  timer: NodeJS.Timeout;
}

/** Default time the primary has to answer a request. */
export const CALL_TIMEOUT_MS = 10_000;

/** Request/notice channel to the primary. */
export class PrimaryLink {
  private nextReq = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly port: MessagePort) {}

  /** Sends a one-way message. */
  notify(msg: ShardToPrimary): void {
    this.port.postMessage(msg);
  }

  /** Calls the primary; rejects with PrimaryCallError on failure or timeout. */
  call<K extends RequestName>(name: K, args: ShardRequests[K]['args'], timeoutMs = CALL_TIMEOUT_MS): Promise<ShardRequests[K]['result']> {
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new PrimaryCallError(ErrorCode.Timeout, `${name} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.port.postMessage({ op: 'request', req, name, args } as ShardToPrimary);
    });
  }

  /** Settles a pending call with the primary's reply. */
  settle(req: number, reply: { ok: true; result: unknown } | { ok: false; code: number; message: string; after?: number }): void {
    const p = this.pending.get(req);
    if (!p) return;
    this.pending.delete(req);
    clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new PrimaryCallError(reply.code, reply.message, reply.after));
  }

  /** Rejects every pending call (the shard is stopping). */
  close(): void {
    for (const [req, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new PrimaryCallError(ErrorCode.Unavailable, 'shard is stopping'));
      this.pending.delete(req);
    }
  }
}
