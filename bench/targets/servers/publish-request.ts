/**
 * What the bench's comparison servers share with Shardcast's HTTP publish API: the
 * request body (`{session, type, data}` or `{events: […]}`), the per-session
 * sequence, the reply, and the "listening" line the bench waits for. Each server
 * then encodes and fans out in its own idiomatic way.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeServerFrame } from '../../../protocol/codec.js';

/** One event to publish. */
export interface PublishEvent {
  session: string;
  type: string;
  data: unknown;
}

/** A parsed publish request. */
export interface PublishRequest {
  events: PublishEvent[];
  /** True for `{events: […]}`, answered with `{results: […]}`. */
  batch: boolean;
}

function parseEvent(value: unknown): PublishEvent {
  if (typeof value !== 'object' || value === null) throw new Error('event must be an object');
  const { session, type, data } = value as Record<string, unknown>;
  if (typeof session !== 'string' || session.length === 0) throw new Error('event.session must be a non-empty string');
  if (typeof type !== 'string' || type.length === 0) throw new Error('event.type must be a non-empty string');
  return { session, type, data };
}

/** Parses and validates a publish body; throws with a message fit for a 400 reply. */
function parsePublishRequest(body: string): PublishRequest {
  const value: unknown = JSON.parse(body);
  if (typeof value === 'object' && value !== null && Array.isArray((value as { events?: unknown }).events)) {
    return { events: (value as { events: unknown[] }).events.map(parseEvent), batch: true };
  }
  return { events: [parseEvent(value)], batch: false };
}

/** Dense per-session sequence numbers, as Shardcast's standalone sequencer gives. */
export class SessionSequence {
  readonly epoch = Date.now().toString(36);
  private readonly seqs = new Map<string, number>();

  next(session: string): number {
    const seq = (this.seqs.get(session) ?? 0) + 1;
    this.seqs.set(session, seq);
    return seq;
  }
}

/** The reply body for a publish request whose events got `seqs`. */
function publishReply(request: PublishRequest, seqs: number[], epoch: string): string {
  const results = seqs.map((seq) => ({ seq, epoch, duplicate: false }));
  return JSON.stringify(request.batch ? { results } : results[0]);
}

/** Announces the port on stdout, in the shape of Shardcast's pino line. */
export function announceListening(port: number): void {
  process.stdout.write(`${JSON.stringify({ level: 30, msg: 'listening', port })}\n`);
}

/** Port to listen on, from BENCH_PORT (0 = any). */
export function portFromEnv(): number {
  const port = Number(process.env.BENCH_PORT ?? '0');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`BENCH_PORT must be a port number, got ${process.env.BENCH_PORT}`);
  return port;
}

/** Encodes an event's `ev` frame once, in Shardcast's wire shape (uws-raw, ws-hub). */
export function encodeEvent(event: PublishEvent, seq: number, epoch: string): Uint8Array {
  return encodeServerFrame({ t: 'ev', s: event.session, seq, ep: epoch, type: event.type, data: event.data as never, ts: Date.now() });
}

/**
 * Handles one publish body: parses it, gives each event its seq and hands it to
 * `emit` (the server's own fan-out), and returns the reply body. Throws with a
 * message fit for a 400 reply.
 */
export function handlePublish(body: string, sequence: SessionSequence, emit: (event: PublishEvent, seq: number) => void): string {
  const request = parsePublishRequest(body);
  const seqs = request.events.map((event) => {
    const seq = sequence.next(event.session);
    emit(event, seq);
    return seq;
  });
  return publishReply(request, seqs, sequence.epoch);
}

/** A node:http handler for `POST /v1/publish` around handlePublish (ws-hub, socketio). */
export function nodePublishHandler(
  sequence: SessionSequence,
  emit: (event: PublishEvent, seq: number) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/publish') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const reply = handlePublish(Buffer.concat(chunks).toString(), sequence, emit);
        res.writeHead(200, { 'content-type': 'application/json' }).end(reply);
      } catch (err) {
        res.writeHead(400).end(JSON.stringify({ error: String(err) }));
      }
    });
  };
}
