/**
 * One participant's command as an upstream receives it from Shardcast's commands
 * exchange (docs/rabbitmq.md, "Commands upstream"), decoded and validated: nothing
 * past this file sees an unchecked body.
 *
 * Times are in microseconds since the epoch. The gateway stamps `receivedAtUs` and
 * `lastSeqAtUs` when it has them; older gateways send only the millisecond fields
 * (`receivedAt`, `lastSeqAt`), which are taken times 1000.
 */
import { createHash } from 'node:crypto';
import { decode } from '../../protocol/codec.js';

/** A validated command from the commands exchange. */
export interface UpstreamCommand {
  /** `<session>/<user>/<cid>`: the dedupe key (the relay delivers at least once). */
  messageId: string;
  routingKey: string;
  session: string;
  user: string;
  role: string;
  cid: string;
  type: string;
  data: unknown;
  /** When the gateway's shard received the frame (µs since the epoch, server clock). */
  receivedAtUs: number;
  /** The last seq handed to the participant's socket in this session (0: none). */
  lastSeq: number;
  /** When that seq was handed to the socket (µs since the epoch; 0 when lastSeq is 0). */
  lastSeqAtUs: number;
  /** Journal position (support only). */
  pos: number;
}

/** A message that is not a valid command; `reason` says which field. */
export class InvalidCommandError extends Error {
  readonly code = 'invalid_command';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new InvalidCommandError(`command field "${key}" must be a non-empty string of at most 256 characters`);
  return v;
}

function count(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidCommandError(`command field "${key}" must be a non-negative integer`);
  return v;
}

/** Microseconds from the µs field when present, else from the ms field. */
function micros(body: Record<string, unknown>, us: string, ms: string): number {
  const fine = count(body, us);
  if (fine !== undefined) return fine;
  const coarse = count(body, ms);
  if (coarse === undefined) throw new InvalidCommandError(`command has neither "${us}" nor "${ms}"`);
  return coarse * 1000;
}

/** Decodes a delivery's body by its content type and validates it; throws InvalidCommandError. */
export function parseCommand(content: Buffer, contentType: string | undefined, routingKey: string, messageId: string | undefined): UpstreamCommand {
  const type = (contentType ?? 'application/json').split(';')[0].trim().toLowerCase();
  let body: unknown;
  if (type === 'application/json') {
    try {
      body = JSON.parse(content.toString('utf8'));
    } catch (err) {
      throw new InvalidCommandError(`command body is not JSON: ${(err as Error).message}`);
    }
  } else if (type === 'application/msgpack' || type === 'application/x-msgpack') {
    const r = decode(content);
    if (!r.ok) throw new InvalidCommandError(`command body is not msgpack: ${r.reason}`);
    body = r.value;
  } else {
    throw new InvalidCommandError(`unsupported content type "${type}"`);
  }
  if (!isRecord(body)) throw new InvalidCommandError('command body must be a map');
  const session = text(body, 'session');
  const user = text(body, 'user');
  const cid = text(body, 'cid');
  const id = messageId !== undefined && messageId !== '' ? messageId : `${session}/${user}/${cid}`;
  return {
    messageId: id,
    routingKey,
    session,
    user,
    role: text(body, 'role'),
    cid,
    type: text(body, 'type'),
    data: body.data ?? null,
    receivedAtUs: micros(body, 'receivedAtUs', 'receivedAt'),
    lastSeq: count(body, 'lastSeq') ?? 0,
    lastSeqAtUs: count(body, 'lastSeqAtUs') ?? (count(body, 'lastSeqAt') ?? 0) * 1000,
    pos: count(body, 'pos') ?? 0,
  };
}

/**
 * A stable event id derived from a command (`kind` plus a digest of its message id),
 * at most 128 characters whatever the session, user and cid: publishing the same
 * outcome of a redelivered command again is then sequenced once.
 */
export function eventIdFor(kind: string, command: UpstreamCommand): string {
  return `${kind}/${idPart(command.messageId)}`;
}

/** A short, stable stand-in for `text` in an event id (a user id can be 128 characters long). */
export function idPart(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 32);
}
