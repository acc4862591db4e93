/**
 * Publishes benchmark events to a target over HTTP, from the main thread, the way an
 * upstream service would: Shardcast's publish API (`POST /v1/publish`, JSON
 * `{session, type, data}` or `{events: […]}`, bearer key) — also served by the
 * bench's own uws-raw, socketio and ws-hub servers — or Pusher's signed events API
 * (soketi). One tick publishes the same payload to every listed session; the
 * payload carries the publish time, taken just before the request is written.
 */
import { createHash, createHmac } from 'node:crypto';
import { Agent, request } from 'node:http';
import { EVENT_TYPE, makePayload, nowUs } from './payload.js';

/** Publishes one tick: event `index` to each of `sessions`. */
export interface Publisher {
  publish(sessions: readonly string[], index: number): Promise<void>;
  close(): void;
}

/** Shardcast's API key the bench starts it with (dev mode, loopback only). */
export const BENCH_API_KEY = 'bench-key-0123456789';

/** Pusher application the soketi target is started with. */
export const PUSHER_APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

const BATCH = 100;

interface HttpTarget {
  host: string;
  port: number;
}

function post(agent: Agent, target: HttpTarget, path: string, body: string, headers: Record<string, string>, retried = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: target.host,
        port: target.port,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) reject(new Error(`publish ${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
          else resolve(text);
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      // A kept-alive socket the server closed as we reused it: the request never
      // reached the server, so sending it again on a fresh socket is safe (Node's
      // documented pattern for keep-alive races).
      if (!retried && req.reusedSocket && err.code === 'ECONNRESET') {
        post(agent, target, path, body, headers, true).then(resolve, reject);
      } else reject(err);
    });
    req.end(body);
  });
}

/** Publisher for Shardcast's HTTP publish API (and the bench servers speaking it). */
export function shardcastPublisher(target: HttpTarget, apiKey = BENCH_API_KEY): Publisher {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const headers = { authorization: `Bearer ${apiKey}` };
  return {
    async publish(sessions, index) {
      const requests: Promise<string>[] = [];
      for (let from = 0; from < sessions.length; from += BATCH) {
        const data = makePayload(index, nowUs());
        const chunk = sessions.slice(from, from + BATCH);
        const body =
          chunk.length === 1
            ? JSON.stringify({ session: chunk[0], type: EVENT_TYPE, data })
            : JSON.stringify({ events: chunk.map((session) => ({ session, type: EVENT_TYPE, data })) });
        requests.push(post(agent, target, '/v1/publish', body, headers));
      }
      await Promise.all(requests);
    },
    close() {
      agent.destroy();
    },
  };
}

/**
 * Publisher for Pusher's HTTP API: `POST /apps/<id>/events` signed with HMAC-SHA256
 * over "POST\n<path>\n<sorted query>" (auth_key, auth_timestamp, auth_version,
 * body_md5), up to 100 channels per call.
 */
export function pusherPublisher(target: HttpTarget, app: { id: string; key: string; secret: string } = PUSHER_APP): Publisher {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const path = `/apps/${app.id}/events`;
  return {
    async publish(sessions, index) {
      const requests: Promise<string>[] = [];
      for (let from = 0; from < sessions.length; from += BATCH) {
        const body = JSON.stringify({
          name: EVENT_TYPE,
          channels: sessions.slice(from, from + BATCH),
          data: makePayload(index, nowUs()),
        });
        const query =
          `auth_key=${app.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0` +
          `&body_md5=${createHash('md5').update(body).digest('hex')}`;
        const signature = createHmac('sha256', app.secret).update(`POST\n${path}\n${query}`).digest('hex');
        requests.push(post(agent, target, `${path}?${query}&auth_signature=${signature}`, body, {}));
      }
      await Promise.all(requests);
    },
    close() {
      agent.destroy();
    },
  };
}
