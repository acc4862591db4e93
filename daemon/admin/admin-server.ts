/**
 * The admin listener (primary thread): its own node:http server on
 * `adminHost:adminPort`, apart from the clients' uWS port, serving the admin API
 * (admin-api.ts), /metrics, and /healthz and /readyz for Kubernetes. node:http
 * rather than uWS: the traffic is a few requests a minute, the figures live on the
 * primary thread (a uWS App there would be a second native event source beside the
 * shards' for no gain), and node:http gives streamed responses (the tail), request
 * bodies and a graceful close with no crash-prone corners (docs/architecture.md,
 * "Facts about this uWS build").
 *
 * Every /v1/admin/* and /metrics request needs `Authorization: Bearer <adminToken>`
 * (compared in constant time on SHA-256 digests); in devMode without a token the
 * listener is open (it binds loopback by default). /healthz and /readyz are open:
 * probes carry no token, and they reveal nothing. The server is closed last in the
 * shutdown, so /readyz answers 503 through the whole drain.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';

/** An admin API failure: HTTP status, a stable code and an actionable message. */
export class AdminError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** One parsed request as handlers see it. */
export interface AdminRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Address of the caller (for the audit trail). */
  remote: string;
  /** The JSON body of a POST ({} when empty). */
  body: unknown;
  /** Aborted when the caller goes away (ends a tail). */
  signal: AbortSignal;
}

/** What a handler answers: JSON with a status, or it takes the response over (streams). */
export type AdminReply = { status: number; body: unknown } | { stream: (res: ServerResponse) => void };

/** Routes requests to handlers; throws AdminError for a refusal. */
export type AdminRouter = (req: AdminRequest) => Promise<AdminReply>;

/** Largest request body accepted (kick and drain bodies are tiny). */
const MAX_BODY_BYTES = 16 * 1024;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when the Authorization header carries `token` (constant time on equal-length digests). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(header.slice(7).trim()), digest(token));
}

/** Options of the admin listener. */
export interface AdminServerOptions {
  host: string;
  port: number;
  /** Bearer token; undefined only in devMode (open). */
  token: string | undefined;
  log: Logger;
  /** /readyz: true while the instance takes traffic. */
  ready(): boolean;
  router: AdminRouter;
}

/** The admin listener; see the header comment. */
export class AdminServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;

  constructor(private readonly opts: AdminServerOptions) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // Slow or idle callers must not hold sockets forever.
    this.server.requestTimeout = 15_000;
    this.server.headersTimeout = 10_000;
  }

  /** The port it listens on (after start()). */
  get listenPort(): number {
    return this.port;
  }

  /** Listens; rejects with an actionable message when the address is taken. */
  start(): Promise<number> {
    const { host, port } = this.opts;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(
          new Error(
            err.code === 'EADDRINUSE'
              ? `admin port ${port} on ${host} is already in use: set SHARDCAST_ADMIN_PORT to a free port (0 = any)`
              : `cannot listen on the admin address ${host}:${port}: ${err.message} (SHARDCAST_ADMIN_HOST, SHARDCAST_ADMIN_PORT)`,
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        this.port = (this.server.address() as AddressInfo).port;
        resolve(this.port);
      });
    });
  }

  /** Stops listening and closes every connection (open tails included). */
  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    try {
      if (url.pathname === '/healthz') {
        sendJson(res, 200, { ok: true });
        return;
      }
      if (url.pathname === '/readyz') {
        const ready = this.opts.ready();
        sendJson(res, ready ? 200 : 503, { ready });
        return;
      }
      if (this.opts.token !== undefined && !bearerMatches(req.headers.authorization, this.opts.token)) {
        throw new AdminError(401, 'unauthorized', 'send Authorization: Bearer <SHARDCAST_ADMIN_TOKEN>');
      }
      const controller = new AbortController();
      res.once('close', () => controller.abort());
      const body = method === 'POST' ? await readJson(req) : {};
      const reply = await this.opts.router({
        method,
        path: url.pathname,
        query: url.searchParams,
        remote: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`,
        body,
        signal: controller.signal,
      });
      if ('stream' in reply) reply.stream(res);
      else sendJson(res, reply.status, reply.body);
    } catch (err) {
      if (err instanceof AdminError) {
        sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
        return;
      }
      this.opts.log.error({ err, path: url.pathname }, 'admin request failed');
      sendJson(res, 500, { error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } });
    }
  }
}

/** Writes a JSON response (unless the response already started, e.g. a failed stream). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a small JSON body; an empty body is `{}`. */
function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new AdminError(413, 'too_large', `admin request bodies are limited to ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') {
        resolve({});
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new AdminError(400, 'invalid_body', `the body is not JSON: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  });
}
