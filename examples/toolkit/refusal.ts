/**
 * Refusing a participant's command: the service checks a command's data and its
 * rules (one vote per poll, the host only, …) and answers a refused command with one
 * `refused` event addressed to its sender only (`to`), carrying the command id so
 * the client can match it. The gateway's `ack` only ever meant "stored"; this is
 * the service's verdict.
 */
import type { SinkEvent } from './event-sink.js';
import { eventIdFor, type UpstreamCommand } from './upstream-command.js';

/** A command the service will not apply; `reason` is a stable code, `detail` says why. */
export class Refusal extends Error {
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(detail);
  }
}

/** The `refused` event for `command`, to its sender only; its id makes a redelivery publish it once. */
export function refusalEvent(command: UpstreamCommand, refusal: Refusal): SinkEvent {
  return {
    session: command.session,
    type: 'refused',
    data: { cid: command.cid, command: command.type, reason: refusal.reason, detail: refusal.detail },
    to: [command.user],
    id: eventIdFor('refused', command),
  };
}

/** `data` as a plain object, or a Refusal naming the command. */
export function record(data: unknown, command: string): Record<string, unknown> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Refusal('invalid', `${command}: data must be an object`);
  return data as Record<string, unknown>;
}

/** A string field of 1..max characters (trimmed), or a Refusal. */
export function textField(data: Record<string, unknown>, key: string, max: number, command: string): string {
  const v = data[key];
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > max) throw new Refusal('invalid', `${command}: "${key}" must be text of 1 to ${max} characters`);
  // Control characters (other than none at all) have no place in names, questions or messages.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) throw new Refusal('invalid', `${command}: "${key}" contains control characters`);
  return v.trim();
}

/** An integer field within [min, max], or a Refusal. */
export function intField(data: Record<string, unknown>, key: string, min: number, max: number, command: string): number {
  const v = data[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new Refusal('invalid', `${command}: "${key}" must be an integer from ${min} to ${max}`);
  return v;
}
