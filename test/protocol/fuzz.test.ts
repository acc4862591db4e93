// Seeded fuzzing of parseClientFrame: random and mutated messages must always come back
// as exactly one of the three outcomes, with codes from the registries, and never throw.
import { isDeepStrictEqual } from 'node:util';
import t, { type Test } from 'tap';
import { encode } from '../../protocol/codec.js';
import { CloseCode, ErrorCode } from '../../protocol/codes.js';
import { DEFAULT_LIMITS } from '../../protocol/frames.js';
import { parseClientFrame, type ClientLimits, type ParseResult } from '../../protocol/validate.js';
import { seededRandom } from '../../daemon/engine/seeded-random.js';

const limits: ClientLimits = { ...DEFAULT_LIMITS, maxFrameBytes: 2048 };
const errorCodes = new Set<number>(Object.values(ErrorCode));
const closeCodes = new Set<number>(Object.values(CloseCode));


const seedFrames: Array<Record<string, unknown>> = [
  { t: 'join', id: 1, s: 'quiz:42', ep: 'e7', seq: 120, pres: true },
  { t: 'leave', id: 2, s: 'quiz:42' },
  { t: 'pub', id: 3, s: 'chat:1', type: 'msg', data: { text: 'hello', tags: ['a', 'b'], n: 1.5 } },
  { t: 'cmd', id: 4, s: 'quiz:42', cid: 'c-9', type: 'answer', data: { q: 3, pick: [1, 2], bin: new Uint8Array([1, 2, 3]) } },
  { t: 'presence', id: 5, s: 'quiz:42' },
  { t: 'ping', id: 6 },
];
const seeds = seedFrames.map((f) => encode(f));

const nest = (depth: number): unknown => (depth === 0 ? 0 : [nest(depth - 1)]);
// Field values that are right somewhere and wrong elsewhere.
const pool: unknown[] = [
  null, true, 0, 1, -1, 1.5, NaN, Infinity, 2 ** 32, 2 ** 32 - 1, 2 ** 53, -(2 ** 53),
  '', 'x', 'quiz:1', 'a b', 'é', 'x'.repeat(65), 'x'.repeat(129), [], {}, [1, 'a'], { a: { b: 1 } },
  new Uint8Array(3), nest(16), nest(17), nest(40), 'join', 'ping', 'cmd',
];
const keys = ['t', 'id', 's', 'ep', 'seq', 'pres', 'type', 'cid', 'data', 'k', '__proto_', ''];

/** Swaps, adds or removes one field of a valid frame: type confusion at the field level. */
function confuse(r: () => number): Uint8Array {
  const f = { ...seedFrames[Math.floor(r() * seedFrames.length)] };
  const key = keys[Math.floor(r() * keys.length)];
  if (r() < 0.2) delete f[key];
  else f[key] = pool[Math.floor(r() * pool.length)];
  return encode(f);
}

// Bytes that steer a decoder into its rare branches: ext, reserved, huge lengths, int64.
const interesting = [0xc1, 0xd4, 0xd6, 0xc7, 0xff, 0xdd, 0xdf, 0xdb, 0xc6, 0xcf, 0xd3, 0x91, 0x81, 0xa9, 0x00, 0x7f, 0xca, 0xcb];

function mutate(r: () => number, src: Uint8Array): Uint8Array {
  const bytes = Array.from(src);
  const n = 1 + Math.floor(r() * r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (bytes.length + 1));
    switch (Math.floor(r() * 6)) {
      case 0: // flip a bit
        if (at < bytes.length) bytes[at] ^= 1 << Math.floor(r() * 8);
        break;
      case 1: // overwrite with an interesting byte
        if (at < bytes.length) bytes[at] = interesting[Math.floor(r() * interesting.length)];
        break;
      case 2: // insert
        bytes.splice(at, 0, r() < 0.5 ? interesting[Math.floor(r() * interesting.length)] : Math.floor(r() * 256));
        break;
      case 3: // delete
        bytes.splice(at, 1);
        break;
      case 4: // truncate
        bytes.length = Math.min(bytes.length, at);
        break;
      case 5: // 0xff-fill a few bytes: maximal lengths and counts
        for (let k = at; k < Math.min(bytes.length, at + 4); k++) bytes[k] = 0xff;
        break;
    }
  }
  return Uint8Array.from(bytes);
}

function checkShape(tt: Test, res: ParseResult, input: Uint8Array): boolean {
  const where = Buffer.from(input).toString('hex').slice(0, 80);
  switch (res.kind) {
    case 'frame':
      return typeof res.frame === 'object' && typeof res.frame.t === 'string' && typeof res.frame.id === 'number'
        ? true
        : tt.fail(`frame without t/id for ${where}`);
    case 'error':
      if (!errorCodes.has(res.code) || typeof res.msg !== 'string') return tt.fail(`bad error result for ${where}`);
      if (res.id !== undefined && !(Number.isInteger(res.id) && res.id >= 0 && res.id <= 0xffff_ffff)) {
        return tt.fail(`error with invalid id for ${where}`);
      }
      return true;
    case 'close':
      return closeCodes.has(res.code) && typeof res.reason === 'string' && res.reason.length > 0 && Buffer.byteLength(res.reason) <= 123
        ? true
        : tt.fail(`bad close result for ${where}`);
    default:
      return tt.fail(`unknown kind for ${where}`);
  }
}

t.test('random and mutated messages never throw and always classify', async (tt) => {
  const r = seededRandom(0x5eed);
  const started = Date.now();
  const seen = { frame: 0, error: 0, close: 0 };
  let bad = 0;
  for (let i = 0; i < 8000; i++) {
    let input: Uint8Array;
    if (i % 2 === 1) {
      input = confuse(r);
    } else if (i % 8 === 0) {
      input = new Uint8Array(Math.floor(r() * 64));
      for (let k = 0; k < input.length; k++) input[k] = Math.floor(r() * 256);
    } else {
      input = mutate(r, seeds[Math.floor(r() * seeds.length)]);
    }
    let res: ParseResult;
    try {
      res = parseClientFrame(input, limits);
    } catch (err) {
      bad++;
      tt.fail(`threw on ${Buffer.from(input).toString('hex')}: ${String(err)}`);
      continue;
    }
    if (!checkShape(tt, res, input)) bad++;
    seen[res.kind]++;
    if (res.kind === 'frame') {
      // Whatever passes must survive a round trip through our own encoder unchanged.
      const again = parseClientFrame(encode(res.frame), limits);
      if (again.kind !== 'frame' || !isDeepStrictEqual(again.frame, res.frame)) {
        bad++;
        tt.fail(`accepted frame does not round-trip: ${Buffer.from(input).toString('hex')}`);
      }
    }
  }
  const elapsed = Date.now() - started;
  tt.equal(bad, 0, 'no throw, no malformed result');
  tt.ok(seen.frame > 0 && seen.error > 0 && seen.close > 0, `all three outcomes reached: ${JSON.stringify(seen)}`);
  tt.ok(elapsed < 3000, `runs in under 3 s (${elapsed} ms)`);
  // Object.prototype must come out as clean as it went in.
  tt.same(Object.keys(Object.prototype), []);
});
