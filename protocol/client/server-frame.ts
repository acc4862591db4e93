/**
 * Checks that a decoded msgpack value is a well-formed server frame before the SDK
 * trusts its fields. Unknown extra keys are allowed (a newer server may add some);
 * missing or mistyped required keys make the frame invalid.
 */
import type {
  PresenceEntry,
  ResumePoint,
  ServerFrame,
  SnapshotEntry,
  Value,
} from './wire/frames.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optStr = (v: unknown): boolean => v === undefined || isStr(v);
const optBool = (v: unknown): boolean => v === undefined || typeof v === 'boolean';

function isValue(v: unknown): v is Value {
  // The codec only yields msgpack types; what remains to exclude is what msgpackr's
  // built-in extensions can produce (Date, RegExp, Set, Map, BigInt, Error…).
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return true;
  if (typeof v === 'number') return true;
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.every(isValue);
  if (isObj(v)) {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(v).every(isValue);
  }
  return false;
}

const isPresenceEntry = (v: unknown): v is PresenceEntry => isObj(v) && isStr(v.u) && isUint(v.n);
const isPresenceList = (v: unknown): v is PresenceEntry[] => Array.isArray(v) && v.every(isPresenceEntry);
const isSnapshotEntry = (v: unknown): v is SnapshotEntry =>
  isObj(v) && isUint(v.seq) && isStr(v.type) && isValue(v.data) && isNum(v.ts);
const isResumePoint = (v: unknown): v is ResumePoint => isObj(v) && isStr(v.s) && isStr(v.ep) && isUint(v.seq);

/** Returns the value typed as a server frame, or null when it is not a valid one. */
export function parseServerFrame(v: unknown): ServerFrame | null {
  if (!isObj(v)) return null;
  switch (v.t) {
    case 'hello':
      return isUint(v.v) && isStr(v.conn) && isStr(v.user) && isNum(v.ping) ? (v as unknown as ServerFrame) : null;
    case 'joined':
      if (!(isUint(v.id) && isStr(v.s) && isStr(v.ep) && isUint(v.seq) && typeof v.rec === 'boolean')) return null;
      if (v.snap !== undefined && !(isObj(v.snap) && Object.values(v.snap).every(isSnapshotEntry))) return null;
      if (v.pres !== undefined && !isPresenceList(v.pres)) return null;
      return v as unknown as ServerFrame;
    case 'resync':
      return isStr(v.s) && isStr(v.ep) && isUint(v.seq) && isObj(v.snap) && Object.values(v.snap).every(isSnapshotEntry)
        ? (v as unknown as ServerFrame)
        : null;
    case 'left':
      return isUint(v.id) && isStr(v.s) ? (v as unknown as ServerFrame) : null;
    case 'ev':
      return isStr(v.s) && isUint(v.seq) && isStr(v.ep) && isStr(v.type) && isValue(v.data) && isNum(v.ts) && optStr(v.k) && optBool(v.c)
        ? (v as unknown as ServerFrame)
        : null;
    case 'ack':
      return isUint(v.id) && (v.seq === undefined || isUint(v.seq)) && optStr(v.cid) && optBool(v.dup)
        ? (v as unknown as ServerFrame)
        : null;
    case 'error':
      return (v.id === undefined || isUint(v.id)) && isUint(v.code) && isStr(v.msg) && (v.after === undefined || isUint(v.after)) ? (v as unknown as ServerFrame) : null;
    case 'presence':
      return isUint(v.id) && isStr(v.s) && isPresenceList(v.users) ? (v as unknown as ServerFrame) : null;
    case 'pjoin':
    case 'pleave':
      return isStr(v.s) && isStr(v.u) ? (v as unknown as ServerFrame) : null;
    case 'pong':
      return isUint(v.id) && (v.now === undefined || isUint(v.now)) ? (v as unknown as ServerFrame) : null;
    case 'goaway':
      return isStr(v.reason) && isUint(v.delay) && Array.isArray(v.pos) && v.pos.every(isResumePoint)
        ? (v as unknown as ServerFrame)
        : null;
    default:
      return null;
  }
}
