/**
 * Strict validation of untrusted client frames. One function, parseClientFrame, turns
 * the bytes of one binary WebSocket message into a typed ClientFrame, an error to
 * answer (the connection stays), or a protocol violation (the connection closes).
 * protocol/SPEC.md, "Validation of client frames", is the normative policy.
 *
 * Bytes are checked by a structural pre-scan before msgpackr sees them, because
 * msgpackr is lenient where we must not be: it decodes extension types (timestamps,
 * RegExp, Set, records…), turns ext 0 into `undefined`, converts integer map keys to
 * strings, renames `__proto__` keys and recurses until the stack overflows. The scan
 * is iterative, allocation-free and linear in the frame size. It also counts the
 * frame's values, so a frame over maxFrameValues is answered (error 109) without ever
 * being materialised.
 */
import { isUtf8 } from 'node:buffer';
import { Unpackr } from 'msgpackr';
import { CloseCode, ErrorCode, closeReason } from './codes.js';
import { SESSION_ID_PATTERN, type ClientFrame } from './frames.js';

/** Limits parseClientFrame enforces; the server fills them from its config (defaults: DEFAULT_LIMITS). */
export interface ClientLimits {
  maxFrameBytes: number;
  maxSessionLength: number;
  maxTypeLength: number;
  maxCidLength: number;
  maxDepth: number;
  /**
   * Most msgpack values one frame may hold, the frame's own map and fields included:
   * what bounds the memory decoding it costs (wire bytes do not: a one-byte empty map
   * becomes a JS object of about 60 bytes). Counted by the pre-scan, before decoding.
   */
  maxFrameValues: number;
}

/** Outcome of parsing one client message. */
export type ParseResult =
  /**
   * A valid frame. For `cmd` and `pub`, `data` also holds the exact msgpack bytes of
   * the frame's `data` (a view into the message: copy it to keep it), so a server can
   * store or pass on what it validated without encoding it again.
   */
  | { kind: 'frame'; frame: ClientFrame; data?: Uint8Array }
  /** Answer with an error frame and keep the connection. */
  | { kind: 'error'; id?: number; code: ErrorCode; msg: string }
  /** Protocol violation: close the connection with this code and reason. */
  | { kind: 'close'; code: CloseCode; reason: string };

/** Largest request id: a msgpack uint32. */
export const MAX_REQUEST_ID = 0xffff_ffff;
/** Longest epoch string a client may send back. */
export const MAX_EPOCH_LENGTH = 64;

/**
 * Nesting allowed anywhere in a frame before it is a protocol violation. Deeper than
 * maxDepth but within this bound is a client bug answered with error 109; beyond it
 * the frame is hostile or broken and the connection closes.
 */
export function hardNestingLimit(maxDepth: number): number {
  return Math.max(8, 4 * maxDepth);
}

// Same options as protocol/codec.ts, plus copyBuffers: bin values in a parsed frame
// must not alias the incoming message, whose ArrayBuffer uWS neuters after the handler.
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  copyBuffers: true,
  int64AsType: 'auto' as 'number',
});

/**
 * A caller's check of a well-formed frame before it is decoded, given the number of
 * values it holds (the server's rate limit, which charges by size): a message refuses
 * the frame, answered as error 106 RateLimited with the frame's id; null admits it.
 */
export type FrameAdmission = (values: number) => string | null;

/** Decodes and validates one binary client message; `admit`, when given, may refuse it before decoding. Never throws. */
export function parseClientFrame(bytes: Uint8Array, limits: ClientLimits, admit?: FrameAdmission): ParseResult {
  try {
    return parseChecked(bytes, limits, admit);
  } catch (err) {
    // Defence in depth: the scan should leave nothing that throws, but a bug here must
    // cost one connection, never the shard.
    return violation(`undecodable frame: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Decodes untrusted msgpack bytes (an HTTP publish body) under the rules client
 * frames follow: standard msgpack, no extension types, no `__proto__` key (msgpackr
 * would rename it, silently changing the data), no repeated key, valid UTF-8,
 * nesting within `nestingLimit`, no map of more than `maxMapKeys` keys (`tooWide`,
 * found before decoding). Never throws.
 */
export function decodeUntrusted(
  bytes: Uint8Array,
  nestingLimit: number,
  maxMapKeys = Infinity,
): { ok: true; value: unknown } | { ok: false; reason: string; tooWide?: true } {
  try {
    const scanned = scan(bytes, nestingLimit);
    if (typeof scanned === 'string') return { ok: false, reason: scanned };
    // Refused before decoding: a very wide map is the dearest thing to decode.
    if (scannedWidestMap > maxMapKeys) return { ok: false, reason: `a map has ${scannedWidestMap} keys; at most ${maxMapKeys}`, tooWide: true };
    const value: unknown = unpackr.unpack(bytes);
    if (countKeys(value) !== scanned) return { ok: false, reason: 'a map repeats a key' };
    return { ok: true, value };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** A bound on the number of values in an application value, and the setting that sets it (named in the refusal). */
export interface ValueBudget {
  max: number;
  setting: string;
}

/**
 * Checks an application value (event/command `data`): only nil, bool, finite numbers,
 * str, bin, arrays, plain maps; depth ≤ maxDepth; with a budget, at most `budget.max`
 * values (countValues' rule), counted in the same walk. Returns null when fine, else a
 * message naming the problem and its path.
 */
export function checkValue(value: unknown, maxDepth: number, budget?: ValueBudget): string | null {
  valuesLeft = budget === undefined ? Infinity : budget.max;
  const problem = inspectValue(value, maxDepth, 0);
  if (problem === null) return null;
  if (problem.path === null && budget !== undefined) {
    return `value: more than ${budget.max} values (${budget.setting}; every map, array, map key, str, bin, number, bool and nil counts one)`;
  }
  return describe(problem, 'value');
}

/**
 * The number of msgpack values in a decoded value: every map, array, map key, str,
 * bin, number, bool and nil counts one. It is the count the pre-scan of client frames
 * makes on the wire, and the unit of maxFrameValues and maxPublishValues.
 */
export function countValues(v: unknown): number {
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return 1;
  let n = 1;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) n += countValues(v[i]);
    return n;
  }
  const o = v as Record<string, unknown>;
  for (const key in o) n += 1 + countValues(o[key]);
  return n;
}

// ---------------------------------------------------------------- frame fields

const FIELDS: Record<ClientFrame['t'], ReadonlySet<string>> = {
  join: new Set(['t', 'id', 's', 'ep', 'seq', 'pres']),
  leave: new Set(['t', 'id', 's']),
  pub: new Set(['t', 'id', 's', 'type', 'data']),
  cmd: new Set(['t', 'id', 's', 'cid', 'type', 'data']),
  presence: new Set(['t', 'id', 's']),
  ping: new Set(['t', 'id']),
};

function parseChecked(bytes: Uint8Array, limits: ClientLimits, admit: FrameAdmission | undefined): ParseResult {
  if (bytes.length > limits.maxFrameBytes) {
    return {
      kind: 'close',
      code: CloseCode.MessageTooBig,
      reason: `frame of ${bytes.length} bytes exceeds the limit of ${limits.maxFrameBytes}`,
    };
  }
  const scanned = scan(bytes, hardNestingLimit(limits.maxDepth));
  if (typeof scanned === 'string') return violation(scanned);
  if ((bytes[0] & 0xf0) !== 0x80 && bytes[0] !== 0xde && bytes[0] !== 0xdf) {
    return violation('frame is not a msgpack map');
  }
  if (scannedValues > limits.maxFrameValues) return overValueBudget(bytes, limits.maxFrameValues);
  const refusal = admit?.(scannedValues) ?? null;
  if (refusal !== null) return { kind: 'error', id: requestIdAt(bytes, scannedIdAt), code: ErrorCode.RateLimited, msg: refusal };
  const decoded: unknown = unpackr.unpack(bytes);
  if (!isPlainObject(decoded)) return violation('frame is not a msgpack map');
  // The scan counted every map entry on the wire; fewer keys after decoding means a
  // map repeated a key, which different decoders resolve differently.
  if (countKeys(decoded) !== scanned) return violation('a map repeats a key');

  const t = decoded.t;
  if (typeof t !== 'string') return violation('frame has no string `t`');
  const rawId = decoded.id;
  const id = isRequestId(rawId) ? rawId : undefined;
  if (!Object.hasOwn(FIELDS, t)) {
    return { kind: 'error', id, code: ErrorCode.UnknownFrame, msg: `unknown frame type ${JSON.stringify(t.slice(0, 32))}` };
  }
  const type = t as ClientFrame['t'];
  if (id === undefined) {
    return badRequest(undefined, rawId === undefined ? `${type}: missing id` : `${type}: id must be a uint ≤ ${MAX_REQUEST_ID}`);
  }
  const allowed = FIELDS[type];
  for (const key in decoded) {
    if (!allowed.has(key)) return badRequest(id, `${type}: unknown key ${JSON.stringify(key.slice(0, 32))}`);
  }
  if (type === 'ping') return { kind: 'frame', frame: decoded as unknown as ClientFrame };

  const sessionProblem = checkSession(decoded.s, limits.maxSessionLength);
  if (sessionProblem !== null) return { kind: 'error', id, ...sessionProblem, msg: `${type}: ${sessionProblem.msg}` };

  const problem = checkFields(type, decoded, limits);
  if (problem !== null) return { kind: 'error', id, code: problem.code, msg: `${type}: ${problem.msg}` };
  if ((type === 'cmd' || type === 'pub') && scannedDataAt >= 0) {
    return { kind: 'frame', frame: decoded as unknown as ClientFrame, data: bytes.subarray(scannedDataAt, scannedDataEnd) };
  }
  return { kind: 'frame', frame: decoded as unknown as ClientFrame };
}

/**
 * The answer to a well-formed frame holding more values than allowed: error 109 with
 * the request id, read from the bytes where the scan saw the top-level `t` and `id`,
 * so the frame is never decoded. The connection stays.
 */
function overValueBudget(bytes: Uint8Array, max: number): ParseResult {
  const t = topLevelString(bytes, scannedTAt);
  if (t === undefined) return violation('frame has no string `t`');
  const id = requestIdAt(bytes, scannedIdAt);
  const prefix = Object.hasOwn(FIELDS, t) ? `${t}: ` : '';
  return {
    kind: 'error',
    id,
    code: ErrorCode.PayloadTooLarge,
    msg: `${prefix}frame holds ${scannedValues} values; at most ${max} (every map, array, map key, str, bin, number, bool and nil counts one)`,
  };
}

/** The str at `at` (a position the scan recorded, so well-formed UTF-8), else undefined. */
function topLevelString(bytes: Uint8Array, at: number): string | undefined {
  if (at < 0) return undefined;
  const b = bytes[at];
  let start: number;
  let len: number;
  if (b >= 0xa0 && b <= 0xbf) {
    start = at + 1;
    len = b & 0x1f;
  } else if (b >= 0xd9 && b <= 0xdb) {
    const n = 1 << (b - 0xd9);
    start = at + 1 + n;
    len = readUint(bytes, at + 1, n);
  } else {
    return undefined;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('utf8');
}

/** The request id at `at` (where the scan saw the top-level `id`), when it is a valid one. */
function requestIdAt(bytes: Uint8Array, at: number): number | undefined {
  const id = topLevelUint(bytes, at);
  return id !== undefined && id <= MAX_REQUEST_ID ? id : undefined;
}

/** The unsigned integer at `at` (a position the scan recorded), else undefined. */
function topLevelUint(bytes: Uint8Array, at: number): number | undefined {
  if (at < 0) return undefined;
  const b = bytes[at];
  if (b <= 0x7f) return b;
  if (b >= 0xcc && b <= 0xcf) return readUint(bytes, at + 1, 1 << (b - 0xcc));
  return undefined;
}

interface Problem {
  code: ErrorCode;
  msg: string;
}

function checkSession(s: unknown, maxLength: number): Problem | null {
  if (s === undefined) return { code: ErrorCode.BadRequest, msg: 'missing s' };
  if (typeof s !== 'string') return { code: ErrorCode.BadRequest, msg: 's must be a str' };
  if (s.length === 0) return { code: ErrorCode.InvalidSession, msg: 's is empty' };
  if (s.length > maxLength) return { code: ErrorCode.InvalidSession, msg: `s is longer than ${maxLength} characters` };
  if (!SESSION_ID_PATTERN.test(s)) return { code: ErrorCode.InvalidSession, msg: 's has characters outside [A-Za-z0-9_.:@-]' };
  return null;
}

function checkFields(type: ClientFrame['t'], f: Record<string, unknown>, limits: ClientLimits): Problem | null {
  switch (type) {
    case 'join': {
      const hasEp = f.ep !== undefined;
      const hasSeq = f.seq !== undefined;
      if (hasEp !== hasSeq) return bad('ep and seq must be given together');
      if (hasEp) {
        const ep = checkString(f.ep, 'ep', MAX_EPOCH_LENGTH);
        if (ep !== null) return ep;
        if (!isSafeUint(f.seq)) return bad('seq must be a uint ≤ 2^53-1');
      }
      if (f.pres !== undefined && typeof f.pres !== 'boolean') return bad('pres must be a bool');
      return null;
    }
    case 'leave':
    case 'presence':
    case 'ping':
      return null;
    case 'cmd': {
      const cid = checkString(f.cid, 'cid', limits.maxCidLength);
      if (cid !== null) return cid;
      return checkTypeAndData(f, limits);
    }
    case 'pub':
      return checkTypeAndData(f, limits);
  }
}

function checkTypeAndData(f: Record<string, unknown>, limits: ClientLimits): Problem | null {
  const type = checkString(f.type, 'type', limits.maxTypeLength);
  if (type !== null) return type;
  if (!Object.hasOwn(f, 'data')) return bad('missing data');
  // The scan has already bounded the whole frame's values: no budget here.
  valuesLeft = Infinity;
  const problem = inspectValue(f.data, limits.maxDepth, 0);
  if (problem === null) return null;
  return { code: problem.code, msg: describe(problem, 'data') };
}

/** A non-empty str of at most maxBytes UTF-8 bytes. */
function checkString(value: unknown, name: string, maxBytes: number): Problem | null {
  if (value === undefined) return bad(`missing ${name}`);
  if (typeof value !== 'string') return bad(`${name} must be a str`);
  if (value.length === 0) return bad(`${name} is empty`);
  // UTF-8 never takes fewer bytes than UTF-16 code units, so the cheap test rejects first.
  if (value.length > maxBytes || Buffer.byteLength(value, 'utf8') > maxBytes) {
    return bad(`${name} is longer than ${maxBytes} bytes`);
  }
  return null;
}

function bad(msg: string): Problem {
  return { code: ErrorCode.BadRequest, msg };
}

function badRequest(id: number | undefined, msg: string): ParseResult {
  return { kind: 'error', id, code: ErrorCode.BadRequest, msg };
}

/** Every protocol violation leaves through here, so the close code is decided once. */
function violation(reason: string): ParseResult {
  return { kind: 'close', code: CloseCode.ProtocolError, reason: closeReason(reason) };
}

function isRequestId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_REQUEST_ID;
}

function isSafeUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Counts own keys of every map in a decoded tree (depth already bounded by the scan). */
function countKeys(v: unknown): number {
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) n += countKeys(v[i]);
    return n;
  }
  const o = v as Record<string, unknown>;
  for (const key in o) n += 1 + countKeys(o[key]);
  return n;
}

// ---------------------------------------------------------------- application values

interface ValueProblem extends Problem {
  /**
   * Path segments from the root to the offending value, built only on failure; null
   * when the value as a whole is the problem (over its value budget).
   */
  path: string[] | null;
}

// Values inspectValue may still count before the value is over its budget (Infinity:
// no budget). Module state rather than a parameter: the walk is synchronous, and this
// keeps the count in the walk that checks depth, with no allocation.
let valuesLeft = Infinity;

function inspectValue(v: unknown, maxDepth: number, depth: number): ValueProblem | null {
  if (--valuesLeft < 0) return { code: ErrorCode.PayloadTooLarge, msg: 'over the value budget', path: null };
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(v) ? null : { code: ErrorCode.BadRequest, msg: `${v} is not a finite number`, path: [] };
    case 'object':
      break;
    default:
      return { code: ErrorCode.BadRequest, msg: `${typeof v} is not a msgpack value`, path: [] };
  }
  if (v === null) return null;
  if (v instanceof Uint8Array) {
    // Buffer is a Uint8Array; other typed arrays and views are extension types on the wire.
    const ctor = v.constructor;
    if (ctor === Uint8Array || ctor === Buffer) return null;
    return { code: ErrorCode.BadRequest, msg: `${ctor.name} is not a msgpack value (use bin: Uint8Array)`, path: [] };
  }
  const isArray = Array.isArray(v);
  if (!isArray && !isPlainObject(v)) {
    const name = (v as object).constructor?.name ?? 'object';
    return { code: ErrorCode.BadRequest, msg: `${name} is not a msgpack value`, path: [] };
  }
  if (depth + 1 > maxDepth) {
    return { code: ErrorCode.PayloadTooLarge, msg: `nests deeper than ${maxDepth} levels`, path: [] };
  }
  if (isArray) {
    for (let i = 0; i < v.length; i++) {
      const p = inspectValue(v[i], maxDepth, depth + 1);
      if (p !== null) {
        p.path?.unshift(`[${i}]`);
        return p;
      }
    }
    return null;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  // The server writes every map as map 16 (SPEC §4): more keys cannot be sent on.
  if (keys.length > MAX_MAP_KEYS) {
    return { code: ErrorCode.PayloadTooLarge, msg: `a map has ${keys.length} keys; at most ${MAX_MAP_KEYS}`, path: [] };
  }
  // Each key is a value too (a string the decoder built).
  valuesLeft -= keys.length;
  if (valuesLeft < 0) return { code: ErrorCode.PayloadTooLarge, msg: 'over the value budget', path: null };
  for (const key of keys) {
    // SPEC §4: never a key. JSON.parse makes it an own property; a client that
    // assigns it would change the object's prototype instead.
    if (key === '__proto__') return { code: ErrorCode.BadRequest, msg: 'the map key "__proto__" is not allowed', path: [] };
    const p = inspectValue(o[key], maxDepth, depth + 1);
    if (p !== null) {
      p.path?.unshift(/^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key.slice(0, 32))}]`);
      return p;
    }
  }
  return null;
}

/** Most keys of one map in an application value: the map 16 format's bound. */
export const MAX_MAP_KEYS = 65_535;

function describe(p: ValueProblem, root: string): string {
  return `${root}${p.path?.join('') ?? ''}: ${p.msg}`;
}

// ---------------------------------------------------------------- structural scan

const MAX_SAFE_HI = 0x20_0000; // 2^53 = MAX_SAFE_HI * 2^32
const PROTO_KEY = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

// Per-level state of the iterative scan; reused across calls (the scan is synchronous).
let remainingStack = new Float64Array(64);
let isMapStack = new Uint8Array(64);

// What the last scan saw besides map entries, as module state so the scan allocates
// nothing: the number of values, and where the values of the top-level keys `t` and
// `id` start (-1: absent), so a frame refused for its size is answered with its id
// without decoding it; where the top-level `data` value starts and ends, so its
// bytes can be passed on as they came; and the most entries one map declares.
let scannedValues = 0;
let scannedTAt = -1;
let scannedIdAt = -1;
let scannedDataAt = -1;
let scannedDataEnd = -1;
let scannedWidestMap = 0;
const TOP_OTHER = 0;
const TOP_T = 1;
const TOP_ID = 2;
const TOP_DATA = 3;

/**
 * Walks one msgpack value without building it. Returns the total number of map entries
 * when `bytes` hold exactly one value of standard msgpack within the nesting limit, with
 * str map keys (never `__proto__`), valid UTF-8 strings, integers within ±2^53 and no
 * extension types; else a reason naming the problem and its byte offset. Leaves the
 * number of values (scannedValues) and the top-level `t`/`id` positions behind.
 */
function scan(bytes: Uint8Array, nestingLimit: number): number | string {
  if (remainingStack.length < nestingLimit + 1) {
    remainingStack = new Float64Array(nestingLimit + 1);
    isMapStack = new Uint8Array(nestingLimit + 1);
  }
  const end = bytes.length;
  if (end === 0) return 'empty message';
  let pos = 0;
  let depth = 0;
  let entries = 0;
  let values = 0;
  let topField = TOP_OTHER;
  scannedTAt = -1;
  scannedIdAt = -1;
  scannedDataAt = -1;
  scannedDataEnd = -1;
  scannedWidestMap = 0;
  for (;;) {
    const at = pos;
    if (pos >= end) return `truncated at byte ${at}`;
    const b = bytes[pos++];
    // Every turn of this loop reads the header of exactly one value.
    values++;
    const isKey = depth > 0 && isMapStack[depth - 1] === 1 && remainingStack[depth - 1] % 2 === 0;
    // The top-level value after `data` ends where the next top-level key begins.
    if (depth === 1 && isKey && scannedDataAt >= 0 && scannedDataEnd < 0) scannedDataEnd = at;
    if (depth === 1 && !isKey && topField !== TOP_OTHER) {
      if (topField === TOP_T) scannedTAt = at;
      else if (topField === TOP_ID) scannedIdAt = at;
      else scannedDataAt = at;
    }
    let strLen = -1;
    let container = -1; // element count of an array or map
    let isMap = false;
    let skip = 0;
    if (b <= 0x7f || b >= 0xe0) {
      // fixint
    } else if (b <= 0x8f) {
      container = b & 0x0f;
      isMap = true;
    } else if (b <= 0x9f) {
      container = b & 0x0f;
    } else if (b <= 0xbf) {
      strLen = b & 0x1f;
    } else {
      switch (b) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          break;
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const n = 1 << (b - 0xc4);
          if (pos + n > end) return `truncated at byte ${at}`;
          skip = readUint(bytes, pos, n);
          pos += n;
          break;
        }
        case 0xca:
          skip = 4;
          break;
        case 0xcb:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3: {
          if (pos + 8 > end) return `truncated at byte ${at}`;
          const hi = readUint(bytes, pos, 4);
          const inRange =
            b === 0xd3 && hi >= 0x8000_0000
              ? (hi | 0) >= -MAX_SAFE_HI
              : hi < MAX_SAFE_HI || (hi === MAX_SAFE_HI && readUint(bytes, pos + 4, 4) === 0);
          if (!inRange) return `integer at byte ${at} is outside ±2^53`;
          skip = 8;
          break;
        }
        case 0xd9:
        case 0xda:
        case 0xdb: {
          const n = 1 << (b - 0xd9);
          if (pos + n > end) return `truncated at byte ${at}`;
          strLen = readUint(bytes, pos, n);
          pos += n;
          break;
        }
        case 0xdc:
        case 0xdd:
        case 0xde:
        case 0xdf: {
          const n = b === 0xdc || b === 0xde ? 2 : 4;
          if (pos + n > end) return `truncated at byte ${at}`;
          container = readUint(bytes, pos, n);
          isMap = b >= 0xde;
          pos += n;
          break;
        }
        case 0xc1:
          return `reserved byte 0xc1 at byte ${at}`;
        default:
          // 0xc7–0xc9 ext 8/16/32, 0xd4–0xd8 fixext: timestamps, records, anything else.
          return `extension type at byte ${at}`;
      }
    }
    if (isKey && strLen < 0) return `map key at byte ${at} is not a str`;
    if (strLen >= 0) {
      if (pos + strLen > end) return `truncated at byte ${at}`;
      if (!isUtf8Range(bytes, pos, pos + strLen)) return `str at byte ${at} is not valid UTF-8`;
      if (isKey && isProtoKey(bytes, pos, strLen)) return `map key "__proto__" at byte ${at} is not allowed`;
      if (isKey && depth === 1) topField = topFieldOf(bytes, pos, strLen);
      pos += strLen;
    } else if (skip > 0) {
      if (pos + skip > end) return `truncated at byte ${at}`;
      pos += skip;
    } else if (container >= 0) {
      if (depth + 1 > nestingLimit) return `nesting deeper than ${nestingLimit} levels at byte ${at}`;
      // Each element takes at least one byte: a count the rest of the frame cannot hold
      // is a lie, rejected before anything is allocated for it.
      const items = isMap ? container * 2 : container;
      if (items > end - pos) return `truncated at byte ${at}: ${isMap ? 'map' : 'array'} claims ${container} entries`;
      if (isMap) {
        entries += container;
        if (container > scannedWidestMap) scannedWidestMap = container;
      }
      if (items > 0) {
        remainingStack[depth] = items;
        isMapStack[depth] = isMap ? 1 : 0;
        depth++;
        continue;
      }
    }
    // One value is complete: count it against its parents, closing finished containers.
    while (depth > 0) {
      if (--remainingStack[depth - 1] > 0) break;
      depth--;
    }
    if (depth === 0) {
      scannedValues = values;
      if (scannedDataAt >= 0 && scannedDataEnd < 0) scannedDataEnd = pos;
      return pos === end ? entries : `${end - pos} trailing bytes after the frame`;
    }
  }
}

function readUint(bytes: Uint8Array, pos: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + bytes[pos + i];
  return v;
}

function isUtf8Range(bytes: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    if (bytes[i] >= 0x80) return isUtf8(bytes.subarray(start, end));
  }
  return true;
}

/** Which top-level key the str of `len` bytes at `pos` is: `t`, `id`, `data` or another. */
function topFieldOf(bytes: Uint8Array, pos: number, len: number): number {
  if (len === 1 && bytes[pos] === 0x74) return TOP_T;
  if (len === 2 && bytes[pos] === 0x69 && bytes[pos + 1] === 0x64) return TOP_ID;
  if (len === 4 && bytes[pos] === 0x64 && bytes[pos + 1] === 0x61 && bytes[pos + 2] === 0x74 && bytes[pos + 3] === 0x61) return TOP_DATA;
  return TOP_OTHER;
}

function isProtoKey(bytes: Uint8Array, pos: number, len: number): boolean {
  if (len !== PROTO_KEY.length) return false;
  for (let i = 0; i < len; i++) if (bytes[pos + i] !== PROTO_KEY[i]) return false;
  return true;
}
