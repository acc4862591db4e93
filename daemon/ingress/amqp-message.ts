/**
 * One RabbitMQ message as one event: the body (JSON or msgpack by `content-type`)
 * holds the fields of the HTTP publish API, the session comes from the routing key
 * (or the body, which must then agree), and `message_id` is the event id for
 * dedupe. Decoding and validation are the HTTP API's (publish-request.ts), so the
 * error messages are the same.
 */
import type { PublishRequest } from '../engine/broker.js';
import { DEFAULT_PUBLISH_LIMITS, decodePublishBody, parsePublishBody, type PublishLimits } from './publish-request.js';

/** What the ingress needs of a delivery. */
export interface DeliveryFields {
  routingKey: string;
  contentType: string | undefined;
  messageId: string | undefined;
  content: Buffer;
}

/** The event a message carries, or why it is refused (the dead-letter reason). */
export type ParsedMessage = { ok: true; event: PublishRequest } | { ok: false; reason: string };

/** Largest message body taken, as for the HTTP API. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Parses and validates one message (`limits`: from the config, as for the HTTP API). */
export function eventOfMessage(d: DeliveryFields, limits: PublishLimits = DEFAULT_PUBLISH_LIMITS): ParsedMessage {
  if (d.content.length > MAX_MESSAGE_BYTES) return { ok: false, reason: `message bodies are limited to ${MAX_MESSAGE_BYTES} bytes (got ${d.content.length})` };
  const decoded = decodePublishBody(d.contentType ?? '', d.content);
  if (!decoded.ok) return { ok: false, reason: decoded.message };
  const body = decoded.value;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || body instanceof Uint8Array) {
    return { ok: false, reason: 'body must be an object' };
  }
  const fields = { ...(body as Record<string, unknown>) };
  if ('events' in fields) return { ok: false, reason: 'a RabbitMQ message carries one event: publish each event of a batch as its own message' };
  if (fields.session === undefined) fields.session = d.routingKey;
  else if (fields.session !== d.routingKey) {
    return { ok: false, reason: `session ${JSON.stringify(fields.session)} differs from the routing key ${JSON.stringify(d.routingKey)}: publish with the session id as routing key` };
  }
  if (d.messageId !== undefined && d.messageId !== '') {
    if (fields.id !== undefined && fields.id !== d.messageId) {
      return { ok: false, reason: `id ${JSON.stringify(fields.id)} differs from message_id ${JSON.stringify(d.messageId)}: give the event id once` };
    }
    fields.id = d.messageId;
  }
  const parsed = parsePublishBody(fields, Date.now(), limits);
  if (!parsed.ok) return { ok: false, reason: parsed.message };
  return { ok: true, event: parsed.events[0] };
}
