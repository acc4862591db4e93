/**
 * The HTTP API served on the WebSocket port by every shard (the kernel spreads
 * HTTP connections over shards like WebSocket ones): publishing for upstreams,
 * health and readiness for Kubernetes, the standalone command feed, and the test
 * hooks. Publishing is validated here and sequenced by the primary.
 */
import type { TurnScheduler } from './turn-scheduler.js';
import { decodedEntry, type EncodedJournalEntry } from '../engine/command-journal.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { decodePublishBody, parsePublishBody, type PublishLimits } from '../ingress/publish-request.js';
import type { Logger } from '../log.js';
import type { App, HttpRequest, HttpResponse } from '../uws.js';
import { PrimaryCallError, type PrimaryLink } from './primary-link.js';
import { ErrorCode, HTTP_ERRORS, HttpErrorCode, type HttpErrorStatus } from '../../protocol/codes.js';

/** Largest publish body accepted. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Most commands returned by one GET /v1/commands. */
export const MAX_COMMANDS_PER_READ = 1000;

/** What the HTTP API needs from the shard. */
export interface HttpContext {
  config: Config;
  primary: PrimaryLink;
  log: Logger;
  /** Readiness as the primary last reported it. */
  isReady(): boolean;
  /** The shard's queue of heavy work: publish bodies are decoded in turn (turn-scheduler.ts). */
  scheduler: TurnScheduler;
}

type Status = '200 OK' | '400 Bad Request' | '401 Unauthorized' | '404 Not Found' | '405 Method Not Allowed' | '413 Payload Too Large' | '415 Unsupported Media Type' | '503 Service Unavailable' | '504 Gateway Timeout';

/** Status lines of the statuses the HTTP error registry (protocol/codes.ts HTTP_ERRORS) uses. */
const STATUS_LINE: Readonly<Record<HttpErrorStatus, Status>> = {
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
};

/**
 * JSON has no binary type: msgpack bin values (from commands or msgpack publishes)
 * are rendered as `{"$base64": "..."}` rather than JSON.stringify's index-keyed map.
 */
function binAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? { $base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') } : value;
}

/** How a response ends besides its status and body. */
interface ReplyOptions {
  /** Close the connection after it: the rest of the request is not read (uWS would go on reading it). */
  close?: boolean;
  /** A HEAD request: status and headers, no body (never combined with `close`). */
  head?: boolean;
  /** More headers (e.g. `Allow`). */
  headers?: ReadonlyArray<readonly [string, string]>;
}

function sendJson(res: HttpResponse, status: Status, body: unknown, opts: ReplyOptions = {}): void {
  sendJsonText(res, status, JSON.stringify(body, binAsBase64), opts);
}

/** Sends a body already turned into JSON. */
function sendJsonText(res: HttpResponse, status: Status, json: string, opts: ReplyOptions = {}): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    for (const [name, value] of opts.headers ?? []) res.writeHeader(name, value);
    // endWithoutBody() takes no undefined arguments: a throw here, inside the request
    // handler, would leave it unanswered, which aborts the whole process.
    if (opts.head) res.endWithoutBody();
    else res.end(json, opts.close === true);
  });
}

/**
 * Answers `GET /v1/commands` with a page the primary read without decoding: each
 * command's data is decoded and turned into JSON here, one command per task of the
 * shard's scheduler (a page holds up to ~1 MiB of msgpack, e.g. 70 commands of
 * 5,000 maps each: 350,000 objects), and the page goes out whole after the last.
 */
function answerCommandsPage(res: HttpResponse, open: () => boolean, scheduler: TurnScheduler, entries: EncodedJournalEntry[], after: number): void {
  const next = entries.length > 0 ? entries[entries.length - 1].pos : after;
  const parts: string[] = [];
  for (const entry of entries) {
    scheduler.run(res, () => {
      if (open()) parts.push(JSON.stringify(decodedEntry(entry), binAsBase64));
    });
  }
  scheduler.run(res, () => {
    if (open()) sendJsonText(res, '200 OK', `{"commands":[${parts.join(',')}],"next":${next}}`);
  });
}

/** Sends `{"error": {code, message}}` with the status the registry gives the code, so the two cannot disagree. */
function sendError(res: HttpResponse, code: HttpErrorCode, message: string, opts: ReplyOptions = {}): void {
  // A backend outage (Redis down) is retryable: say when, as HTTP does (RFC 9110 §10.2.3).
  const status = HTTP_ERRORS[code].status;
  if (status === 503) opts = { ...opts, headers: [...(opts.headers ?? []), ['retry-after', String(RETRY_AFTER_S)]] };
  sendJson(res, STATUS_LINE[status], { error: { code, message } }, opts);
}

/** Seconds a 503 asks the caller to wait before retrying. */
const RETRY_AFTER_S = 1;

/** Number of request headers named `name` (uWS's getHeader sees only the first). */
function headerCount(req: HttpRequest, name: string): number {
  let n = 0;
  req.forEach((key) => {
    if (key === name) n++;
  });
  return n;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Checks `Authorization: Bearer <apiKey>`; with no key configured only dev mode passes. */
function authorized(config: Config, header: string): boolean {
  if (config.apiKey === undefined) return config.devMode;
  if (!header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice(7).trim()), digest(config.apiKey));
}

/** Answers 401 and returns true when the request lacks the API key (see authorized). */
function refusedWithoutKey(config: Config, res: HttpResponse, header: string): boolean {
  if (authorized(config, header)) return false;
  sendError(res, HttpErrorCode.Unauthorized, 'send Authorization: Bearer <SHARDCAST_API_KEY>');
  return true;
}

/**
 * Bytes past the limit still read, and thrown away, before a 413. Closing with the
 * client's body unread makes the kernel reset the connection, and a client still
 * writing then fails on its write without ever reading the 413 (nginx's lingering
 * close avoids the same). So a body up to this much too long is read to its end and
 * answered on a connection that stays open; a longer one (or a declared length
 * beyond it) gets its 413 at once and the connection closed, the rest never read.
 */
export const REFUSED_BODY_READ_BYTES = 1024 * 1024;

/** Why a body was not read: 'too-large' once all of it was read, 'too-large-close' with the rest left unread. */
type BodyRefusal = 'too-large' | 'too-large-close';

/** Reads a request body up to `limit` bytes; calls back once with the bytes or a refusal (see REFUSED_BODY_READ_BYTES). */
function readBody(res: HttpResponse, limit: number, done: (body: Buffer | BodyRefusal) => void): void {
  let chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  res.onData((chunk, isLast) => {
    if (finished) return;
    size += chunk.byteLength;
    if (size > limit) {
      chunks = [];
      const pastReading = size > limit + REFUSED_BODY_READ_BYTES;
      if (pastReading || isLast) {
        finished = true;
        done(pastReading ? 'too-large-close' : 'too-large');
      }
      return;
    }
    // uWS neuters the chunk when this callback returns: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (isLast) {
      finished = true;
      done(Buffer.concat(chunks));
    }
  });
}

function codeOfCallError(err: unknown): HttpErrorCode {
  if (err instanceof PrimaryCallError && err.code === ErrorCode.Timeout) return HttpErrorCode.Timeout;
  // Refused by a limit (e.g. maxSnapshotKeys): retrying the same request cannot help.
  if (err instanceof PrimaryCallError && err.code === ErrorCode.PayloadTooLarge) return HttpErrorCode.InvalidRequest;
  return HttpErrorCode.Unavailable;
}

/**
 * Answers once a call to the primary settles: 200 with `body(result)`, or 503/504
 * naming `what` failed (`beforeAnswer` runs just before either). uWS needs the abort
 * handler attached before the handler returns, so `watchAbort` is called first, in
 * the route itself.
 */
function replyWhenSettled<T>(
  res: HttpResponse,
  open: () => boolean,
  call: Promise<T>,
  what: string,
  body: (result: T) => unknown,
  beforeAnswer: () => void = () => {},
): void {
  whenSettled(res, open, call, what, (result) => sendJson(res, '200 OK', body(result)), beforeAnswer);
}

/** As replyWhenSettled, but `answer` sends the 200 itself (when it is written over several turns). */
function whenSettled<T>(res: HttpResponse, open: () => boolean, call: Promise<T>, what: string, answer: (result: T) => void, beforeAnswer: () => void = () => {}): void {
  call.then(
    (result) => {
      if (!open()) return;
      beforeAnswer();
      answer(result);
    },
    (err: unknown) => {
      if (!open()) return;
      beforeAnswer();
      sendError(res, codeOfCallError(err), `${what} failed: ${(err as Error).message}`);
    },
  );
}

/** Attaches the abort handler; the returned function says whether `res` is still open. */
function watchAbort(res: HttpResponse): () => boolean {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  return () => !aborted;
}

/** Registers the HTTP routes on a shard's App. */
export function registerHttpApi(app: App, ctx: HttpContext): void {
  const { config } = ctx;
  const publishLimits: PublishLimits = { maxPublishValues: config.maxPublishValues };

  app.get('/healthz', (res) => sendJson(res, '200 OK', { status: 'ok' }));
  app.get('/readyz', (res) => {
    if (ctx.isReady()) sendJson(res, '200 OK', { ready: true });
    else sendJson(res, '503 Service Unavailable', { ready: false });
  });
  // HEAD too (status only): some load balancers probe with it.
  app.head('/healthz', (res) => {
    res.cork(() => res.writeStatus('200 OK').endWithoutBody());
  });
  app.head('/readyz', (res) => {
    res.cork(() => res.writeStatus(ctx.isReady() ? '200 OK' : '503 Service Unavailable').endWithoutBody());
  });

  app.post('/v1/publish', (res: HttpResponse, req: HttpRequest) => {
    const auth = req.getHeader('authorization');
    const contentType = req.getHeader('content-type');
    const declaredLength = req.getHeader('content-length');
    const lengthHeaders = headerCount(req, 'content-length');
    const open = watchAbort(res);
    // Two Content-Length headers make the body's end ambiguous (request smuggling):
    // refuse, and close rather than guess where the next request starts.
    if (lengthHeaders > 1) {
      sendError(res, HttpErrorCode.InvalidRequest, 'more than one Content-Length header', { close: true });
      return;
    }
    if (refusedWithoutKey(config, res, auth)) return;
    const tooLarge = (close: boolean) => sendError(res, HttpErrorCode.TooLarge, `publish bodies are limited to ${MAX_BODY_BYTES} bytes`, { close });
    if (declaredLength !== '' && Number(declaredLength) > MAX_BODY_BYTES + REFUSED_BODY_READ_BYTES) {
      tooLarge(true);
      return;
    }
    readBody(res, MAX_BODY_BYTES, (body) => {
      if (typeof body === 'string') {
        if (open()) tooLarge(body === 'too-large-close');
        return;
      }
      // Pipelining: uWS drops a connection that sends a request while the one before
      // is unanswered (onAborted), so a publish must not be applied before we know
      // it will be answered. Reading stops until the answer (a request sent later
      // waits in the socket, then gets its own); one already in this read makes uWS
      // abort during this turn, and the publish is then left unapplied. The body is
      // decoded in a later turn, in turn with the shard's other heavy work (a 1 MiB
      // body takes ~15 ms to parse).
      res.pause();
      ctx.scheduler.run(res, () => {
        if (!open()) return;
        const decoded = decodePublishBody(contentType, body);
        if (!decoded.ok) {
          res.resume();
          const code = { 'media-type': HttpErrorCode.UnsupportedMediaType, body: HttpErrorCode.InvalidBody, request: HttpErrorCode.InvalidRequest }[decoded.problem];
          sendError(res, code, decoded.message);
          return;
        }
        const parsed = parsePublishBody(decoded.value, Date.now(), publishLimits);
        if (!parsed.ok) {
          res.resume();
          sendError(res, HttpErrorCode.InvalidRequest, parsed.message);
          return;
        }
        const call = ctx.primary.call('publish', { events: parsed.events });
        call.catch((err: unknown) => ctx.log.warn({ err }, 'publish failed'));
        replyWhenSettled(res, open, call, 'publish', (results) => (parsed.batch ? { results } : results[0]), () => res.resume());
      });
    });
  });

  app.get('/v1/commands', (res: HttpResponse, req: HttpRequest) => {
    const auth = req.getHeader('authorization');
    const after = Number(req.getQuery('after') || '0');
    const limit = Number(req.getQuery('limit') || '100');
    if (refusedWithoutKey(config, res, auth)) return;
    if (!Number.isSafeInteger(after) || after < 0 || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_COMMANDS_PER_READ) {
      sendError(res, HttpErrorCode.InvalidRequest, `after must be a position ≥ 0 and limit 1–${MAX_COMMANDS_PER_READ}`);
      return;
    }
    const open = watchAbort(res);
    whenSettled(res, open, ctx.primary.call('commands', { after, limit }), 'reading commands', (entries) => answerCommandsPage(res, open, ctx.scheduler, entries, after));
  });

  if (config.testHooks) {
    app.post('/v1/test/crash', (res: HttpResponse, req: HttpRequest) => {
      if (refusedWithoutKey(config, res, req.getHeader('authorization'))) return;
      const shard = Number(req.getQuery('shard'));
      replyWhenSettled(res, watchAbort(res), ctx.primary.call('crash', { shard }), 'crash', (r) => r);
    });
    // The session's history is lost, as when a backend restarts empty: its stream continues under a new epoch.
    app.post('/v1/test/reset-epoch', (res: HttpResponse, req: HttpRequest) => {
      if (refusedWithoutKey(config, res, req.getHeader('authorization'))) return;
      const session = req.getQuery('session') ?? '';
      replyWhenSettled(res, watchAbort(res), ctx.primary.call('resetEpoch', { session }), 'reset-epoch', (r) => r);
    });
  }

  // A known path with another method: 405 and the methods it takes.
  const routes: ReadonlyArray<readonly [string, string]> = [
    ['/healthz', 'GET, HEAD'],
    ['/readyz', 'GET, HEAD'],
    ['/v1/publish', 'POST'],
    ['/v1/commands', 'GET'],
  ];
  for (const [path, allow] of routes) {
    app.any(path, (res: HttpResponse, req: HttpRequest) => {
      const method = req.getMethod().toUpperCase();
      sendError(res, HttpErrorCode.MethodNotAllowed, `${path} takes ${allow}, not ${method}`, { headers: [['allow', allow]], head: method === 'HEAD' });
    });
  }

  app.any('/*', (res: HttpResponse, req: HttpRequest) => {
    const method = req.getMethod().toUpperCase();
    sendError(res, HttpErrorCode.NotFound, `no route for ${method} ${req.getUrl()}`, { head: method === 'HEAD' });
  });
}
