/**
 * Shared setup of the seeds' live-flow tests (flows-*.test.ts): two daemon instances
 * on Redis and RabbitMQ (and a Postgres journal when asked), an example service
 * started in-process on the same exchanges with a queue and a schema of its own,
 * tokens with roles, and a `cmd` sender. Everything is named uniquely per file and
 * removed at teardown.
 */
import { connect as amqpConnect } from 'amqplib';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import { signJwt } from '../../daemon/auth/jwt.js';
import type { ServiceSettings } from '../../examples/toolkit/service-settings.js';
import type { EventFrame, ServerFrame } from '../../protocol/frames.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { redisEnv } from '../support/instances.js';
import { createTestSchema, DATABASE_URL } from '../support/postgres.js';
import { AMQP_URL, amqpEnv, deleteTopology, uniqueExchange } from '../support/rabbitmq.js';
import { RawClient } from '../support/raw-client.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';

export const JWT_SECRET = 'flows-test-secret-0123456789abcdef0123';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A token for `user` with `role`, valid for every session. */
export function tokenFor(user: string, role: string): string {
  return signJwt({ sub: user, sessions: ['*'], role, exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256', secret: JWT_SECRET });
}

/** A logger for an in-process service: warnings and errors only, on stderr. */
export function serviceLog(name: string): Logger {
  return pino({ name, level: 'warn' }, pino.destination(2));
}

/** Two instances and the settings an example service needs to talk to them. */
export interface FlowSetup {
  instances: DaemonProcess[];
  settings: ServiceSettings;
}

/** Starts two instances (Redis + RabbitMQ, plus a Postgres journal with `journal`) and names the service's queue and schema. */
export async function startFlow(t: Test, name: string, opts: { namespaces: unknown[]; journal?: boolean; env?: Record<string, string> }): Promise<FlowSetup> {
  const events = uniqueExchange(name);
  const commands = uniqueExchange(`${name}-cmds`);
  const queue = `${commands}.service`;
  const service = await createTestSchema();
  t.teardown(service.drop);
  t.teardown(() => deleteTopology(events, 2));
  t.teardown(async () => {
    const conn = await amqpConnect(AMQP_URL).catch(() => null);
    if (conn === null) return;
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.deleteQueue(queue).catch(() => {});
    await ch.deleteExchange(commands).catch(() => {});
    await conn.close().catch(() => {});
  });
  const env: Record<string, string> = {
    ...redisEnv(REDIS_URL, uniquePrefix(name)),
    ...amqpEnv(events, 2),
    SHARDCAST_AMQP_COMMANDS_EXCHANGE: commands,
    SHARDCAST_JWT_SECRET: JWT_SECRET,
    SHARDCAST_NAMESPACES: JSON.stringify(opts.namespaces),
    SHARDCAST_RATE_LIMIT_PER_S: '1000',
    SHARDCAST_RATE_LIMIT_BURST: '1000',
    SHARDCAST_USER_RATE_LIMIT_PER_S: '1000',
    ...opts.env,
  };
  if (opts.journal === true) {
    const journal = await createTestSchema();
    t.teardown(journal.drop);
    env.SHARDCAST_DATABASE_URL = DATABASE_URL;
    env.SHARDCAST_DATABASE_SCHEMA = journal.schema;
  }
  // One after the other (the machine is shared and loaded), each stopped at teardown
  // as soon as it runs.
  const instances: DaemonProcess[] = [];
  for (let i = 0; i < 2; i++) {
    const d = await startDaemon({ SHARDCAST_SHARDS: '2', ...env });
    t.teardown(() => d.stop());
    instances.push(d);
  }
  return {
    instances,
    settings: { amqpUrl: AMQP_URL, eventsExchange: events, commandsExchange: commands, queue, databaseUrl: DATABASE_URL, schema: service.schema },
  };
}

/** Connects a client (a dev-mode user, or a token) and joins `session`; closed at teardown. */
export async function participant(t: Test, daemon: DaemonProcess, session: string, who: { user?: string; token?: string }): Promise<RawClient> {
  const c = await RawClient.connect(daemon.ws, who);
  t.teardown(() => c.close());
  const joined = await c.join(session);
  if (joined.t !== 'joined') throw new Error(`join refused: ${JSON.stringify(joined)}`);
  return c;
}

let cids = 0;

/** Sends a command until the gateway acks it (retrying 110/111 with the same cid, as the SDK does); returns its cid. */
export async function command(c: RawClient, session: string, type: string, data: unknown, cid = `c${++cids}`): Promise<string> {
  for (;;) {
    const id = c.id();
    c.send({ t: 'cmd', id, s: session, cid, type, data });
    const reply: ServerFrame = await c.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 30_000);
    if (reply.t === 'ack') return cid;
    if (reply.t === 'error' && (reply.code === 110 || reply.code === 111)) {
      await sleep(200);
      continue;
    }
    throw new Error(`cmd ${type} ${cid}: ${JSON.stringify(reply)}`);
  }
}

/** Waits for the first event of `type` whose data matches `pred` and returns it. */
export async function eventOf(c: RawClient, session: string, type: string, pred: (data: any) => boolean = () => true, timeoutMs = 20_000): Promise<EventFrame> {
  const match = (f: ServerFrame): f is EventFrame => f.t === 'ev' && f.s === session && f.type === type && pred(f.data);
  return c.next(match, timeoutMs);
}

/** Events of `type` received so far. */
export function eventsOf(c: RawClient, session: string, type: string): EventFrame[] {
  return c.events(session).filter((e) => e.type === type);
}
