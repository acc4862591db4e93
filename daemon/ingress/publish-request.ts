/**
 * Decoding and validation of upstream publish requests, one path for the HTTP API
 * body and the RabbitMQ messages: `{ session, type, data, id?, to?, snapshot?,
 * conflate?, at? }` or `{ events: [...] }`, as JSON or msgpack. Problems name the field
 * path so an upstream developer can fix the request from the message alone.
 */
import { DEFAULT_LIMITS, SESSION_ID_PATTERN } from '../../protocol/frames.js';
import type { Value } from '../../protocol/frames.js';
import { checkValue, decodeUntrusted, hardNestingLimit, MAX_MAP_KEYS } from '../../protocol/validate.js';
import { widestObject } from './json-shape.js';
import type { PublishRequest } from '../engine/broker.js';

/** Most events in one batch request. */
export const MAX_EVENTS_PER_REQUEST = 1000;
/** Most recipients of one addressed event. */
export const MAX_RECIPIENTS = 1000;
/** Longest upstream event id, user id or snapshot key. */
export const MAX_ID_LENGTH = 128;
/** Furthest a scheduled event's `at` may lie ahead: everything sequenced after it in its session waits as long. */
export const MAX_SCHEDULE_AHEAD_MS = 3_600_000;

/** Limits of publish requests that come from the config. */
export interface PublishLimits {
  /** Most values in one event's `data` (config maxPublishValues). */
  maxPublishValues: number;
}

/** The limits of a daemon with the default config. */
export const DEFAULT_PUBLISH_LIMITS: PublishLimits = Object.freeze({ maxPublishValues: DEFAULT_LIMITS.maxPublishValues });

const EVENT_KEYS = new Set(['session', 'type', 'data', 'id', 'to', 'snapshot', 'conflate', 'at']);

/** A parsed request: one event (single) or a batch. */
export type ParsedPublish =
  | { ok: true; batch: boolean; events: PublishRequest[] }
  | { ok: false; message: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function shortString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}

function parseEvent(raw: unknown, path: string, now: number, limits: PublishLimits): PublishRequest | string {
  if (!isPlainObject(raw)) return `${path || 'body'} must be an object`;
  const at = (field: string) => (path ? `${path}.${field}` : field);
  for (const key of Object.keys(raw)) {
    if (!EVENT_KEYS.has(key)) return `${at(key)} is not a publish field (allowed: ${[...EVENT_KEYS].join(', ')})`;
  }
  const { session, type, data, id, to, snapshot, conflate, at: releaseAt } = raw;
  if (!shortString(session, DEFAULT_LIMITS.maxSessionLength) || !SESSION_ID_PATTERN.test(session)) {
    return `${at('session')} must be 1–${DEFAULT_LIMITS.maxSessionLength} characters of [A-Za-z0-9_.:@-]`;
  }
  if (!shortString(type, DEFAULT_LIMITS.maxTypeLength)) return `${at('type')} must be a string of 1–${DEFAULT_LIMITS.maxTypeLength} characters`;
  if (data === undefined) return `${at('data')} is required (use null for no data)`;
  // The body is decoded whole before this (bounded by its byte limit, and JSON.parse
  // cannot stop early); the value budget bounds what is sequenced, kept in history
  // and decoded by every client, counted in the walk that checks the depth.
  const dataProblem = checkValue(data, DEFAULT_LIMITS.maxDepth, { max: limits.maxPublishValues, setting: 'maxPublishValues' });
  if (dataProblem !== null) return `${at('data')}: ${dataProblem}`;
  const event: PublishRequest = { session, type, data: data as Value };
  if (id !== undefined) {
    if (!shortString(id, MAX_ID_LENGTH)) return `${at('id')} must be a string of 1–${MAX_ID_LENGTH} characters`;
    event.id = id;
  }
  if (to !== undefined) {
    if (!Array.isArray(to) || to.length === 0 || to.length > MAX_RECIPIENTS) {
      return `${at('to')} must be a non-empty array of at most ${MAX_RECIPIENTS} user ids`;
    }
    for (let i = 0; i < to.length; i++) {
      if (!shortString(to[i], MAX_ID_LENGTH)) return `${at(`to[${i}]`)} must be a user id of 1–${MAX_ID_LENGTH} characters`;
    }
    // A user named twice still gets the event once.
    event.to = [...new Set(to as string[])];
  }
  if (snapshot !== undefined) {
    if (!shortString(snapshot, MAX_ID_LENGTH)) return `${at('snapshot')} must be a key of 1–${MAX_ID_LENGTH} characters`;
    // It becomes a key of the `snap` map joiners get, where SPEC §4 forbids it.
    if (snapshot === '__proto__') return `${at('snapshot')} may not be "__proto__"`;
    event.snapshot = snapshot;
  }
  if (conflate !== undefined) {
    if (typeof conflate !== 'boolean') return `${at('conflate')} must be a boolean`;
    if (conflate && snapshot === undefined) return `${at('conflate')} needs ${at('snapshot')}: frames conflate per snapshot key`;
    if (conflate) event.conflate = true;
  }
  if (releaseAt !== undefined) {
    if (typeof releaseAt !== 'number' || !Number.isSafeInteger(releaseAt) || releaseAt < 0) {
      return `${at('at')} must be a release time in ms since the Unix epoch (a non-negative integer)`;
    }
    if (releaseAt - now > MAX_SCHEDULE_AHEAD_MS) {
      return `${at('at')} is ${releaseAt - now} ms ahead of the server clock; at most ${MAX_SCHEDULE_AHEAD_MS} ms`;
    }
    // A release time already past is no schedule: the event goes out at once.
    if (releaseAt > now) event.at = releaseAt;
  }
  return event;
}

/** Validates a decoded publish body (`now`: the server clock, for `at`; `limits`: from the config). */
export function parsePublishBody(body: unknown, now = Date.now(), limits: PublishLimits = DEFAULT_PUBLISH_LIMITS): ParsedPublish {
  if (isPlainObject(body) && 'events' in body) {
    const { events } = body;
    if (Object.keys(body).length !== 1) return { ok: false, message: 'a batch body has only the "events" field' };
    if (!Array.isArray(events) || events.length === 0 || events.length > MAX_EVENTS_PER_REQUEST) {
      return { ok: false, message: `events must be an array of 1–${MAX_EVENTS_PER_REQUEST} events` };
    }
    const out: PublishRequest[] = [];
    for (let i = 0; i < events.length; i++) {
      const e = parseEvent(events[i], `events[${i}]`, now, limits);
      if (typeof e === 'string') return { ok: false, message: e };
      out.push(e);
    }
    return { ok: true, batch: true, events: out };
  }
  const e = parseEvent(body, '', now, limits);
  return typeof e === 'string' ? { ok: false, message: e } : { ok: true, batch: false, events: [e] };
}

/**
 * A decoded body, or why it was not decoded: its media type, bytes that are not
 * what the media type says, or (`request`) a body that is well formed but
 * refused, found before decoding it.
 */
export type DecodedBody = { ok: true; value: unknown } | { ok: false; problem: 'media-type' | 'body' | 'request'; message: string };

/** Decodes a publish body by its media type: JSON (also when none is given) or msgpack. */
export function decodePublishBody(contentType: string, body: Buffer): DecodedBody {
  // Media types are case-insensitive (RFC 9110 §8.3.1).
  const type = contentType.split(';')[0].trim().toLowerCase();
  if (type === 'application/msgpack' || type === 'application/x-msgpack') {
    const r = decodeUntrusted(body, hardNestingLimit(DEFAULT_LIMITS.maxDepth), MAX_MAP_KEYS);
    if (r.ok) return r;
    return r.tooWide ? { ok: false, problem: 'request', message: r.reason } : { ok: false, problem: 'body', message: `body is not valid msgpack: ${r.reason}` };
  }
  if (type === '' || type === 'application/json') {
    // Refused anyway, and far dearer to parse than to scan (json-shape.ts).
    const widest = widestObject(body, MAX_MAP_KEYS);
    if (widest > MAX_MAP_KEYS) return { ok: false, problem: 'request', message: `a map has more than ${MAX_MAP_KEYS} keys; at most ${MAX_MAP_KEYS}` };
    try {
      return { ok: true, value: JSON.parse(body.toString('utf8')) };
    } catch (err) {
      return { ok: false, problem: 'body', message: `body is not valid JSON: ${(err as Error).message}` };
    }
  }
  return { ok: false, problem: 'media-type', message: `unsupported content-type "${type}": use application/json or application/msgpack` };
}
