// The vectors in protocol/vectors pin our exact bytes both ways, and show with an
// independent reader that nothing but standard msgpack goes on the wire.
import t, { type Test } from 'tap';
import { unpack as plainUnpack } from 'msgpackr';
import { decode, encodeClientFrame, encodeServerFrame } from '../../protocol/codec.js';
import { DEFAULT_LIMITS, type ClientFrame, type ServerFrame } from '../../protocol/frames.js';
import { parseClientFrame } from '../../protocol/validate.js';
import { fromHex, fromJsonValue, loadFrameVectors, loadInvalidVectors, type FrameVector } from '../../protocol/vectors/load.js';

const clientVectors = loadFrameVectors('client');
const serverVectors = loadFrameVectors('server');
const invalidVectors = loadInvalidVectors();

// Frame types and their optional fields, as protocol/frames.ts defines them.
const CLIENT_OPTIONAL: Record<ClientFrame['t'], string[]> = {
  join: ['ep', 'seq', 'pres'],
  leave: [],
  pub: [],
  cmd: [],
  presence: [],
  ping: [],
};
const SERVER_OPTIONAL: Record<ServerFrame['t'], string[]> = {
  hello: [],
  joined: ['snap', 'pres'],
  resync: [],
  left: [],
  ev: ['k', 'c'],
  ack: ['seq', 'cid', 'dup'],
  error: ['id'],
  presence: [],
  pjoin: [],
  pleave: [],
  pong: ['now'],
  goaway: [],
};

/**
 * A minimal msgpack reader written from the msgpack spec, sharing no code with msgpackr.
 * It knows only the standard families and throws on extension types and 0xc1, so a
 * vector it reads back equal to its value contains nothing non-standard.
 */
function referenceRead(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const str = (n: number) => utf8.decode(bytes.subarray(pos, (pos += n)));
  const arr = (n: number): unknown[] => Array.from({ length: n }, () => read());
  const map = (n: number) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = read();
      if (typeof k !== 'string') throw new Error('non-str key');
      o[k] = read();
    }
    return o;
  };
  const read = (): unknown => {
    if (pos >= bytes.length) throw new Error('truncated');
    const b = bytes[pos++];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return map(b & 0x0f);
    if (b <= 0x9f) return arr(b & 0x0f);
    if (b <= 0xbf) return str(b & 0x1f);
    const at = pos;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: { const n = bytes[pos]; pos += 1; return bytes.slice(pos, (pos += n)); }
      case 0xc5: { const n = view.getUint16(at); pos += 2; return bytes.slice(pos, (pos += n)); }
      case 0xc6: { const n = view.getUint32(at); pos += 4; return bytes.slice(pos, (pos += n)); }
      case 0xca: pos += 4; return view.getFloat32(at);
      case 0xcb: pos += 8; return view.getFloat64(at);
      case 0xcc: pos += 1; return view.getUint8(at);
      case 0xcd: pos += 2; return view.getUint16(at);
      case 0xce: pos += 4; return view.getUint32(at);
      case 0xcf: pos += 8; return Number(view.getBigUint64(at));
      case 0xd0: pos += 1; return view.getInt8(at);
      case 0xd1: pos += 2; return view.getInt16(at);
      case 0xd2: pos += 4; return view.getInt32(at);
      case 0xd3: pos += 8; return Number(view.getBigInt64(at));
      case 0xd9: { const n = bytes[pos]; pos += 1; return str(n); }
      case 0xda: { const n = view.getUint16(at); pos += 2; return str(n); }
      case 0xdb: { const n = view.getUint32(at); pos += 4; return str(n); }
      case 0xdc: { const n = view.getUint16(at); pos += 2; return arr(n); }
      case 0xdd: { const n = view.getUint32(at); pos += 4; return arr(n); }
      case 0xde: { const n = view.getUint16(at); pos += 2; return map(n); }
      case 0xdf: { const n = view.getUint32(at); pos += 4; return map(n); }
      default: throw new Error(`not standard msgpack for this protocol: 0x${b.toString(16)} at ${at - 1}`);
    }
  };
  const value = read();
  if (pos !== bytes.length) throw new Error('trailing bytes');
  return value;
}

function checkVectors(tt: Test, vectors: FrameVector[], enc: (v: never) => Uint8Array) {
  const names = new Set<string>();
  for (const v of vectors) {
    tt.notOk(names.has(v.name), `name ${v.name} is unique`);
    names.add(v.name);
    tt.ok(v.comment.length > 0, `${v.name} has a comment`);
    tt.match(v.hex, /^([0-9a-f]{2})+$/, `${v.name} hex is lowercase bytes`);
    const value = fromJsonValue(v.value);
    const decoded = decode(fromHex(v.hex));
    tt.ok(decoded.ok, `${v.name} decodes`);
    if (decoded.ok) tt.same(decoded.value, value, `${v.name}: decode(hex) equals value`);
    tt.equal(Buffer.from(enc(value as never)).toString('hex'), v.hex, `${v.name}: encode(value) equals hex byte for byte`);
    tt.same(referenceRead(fromHex(v.hex)), value, `${v.name}: an independent reader reads the same value`);
    tt.same(plainUnpack(Buffer.from(v.hex, 'hex')), value, `${v.name}: msgpackr with default options reads the same value`);
  }
}

function coverage(tt: Test, vectors: FrameVector[], optional: Record<string, string[]>) {
  for (const [type, fields] of Object.entries(optional)) {
    const ofType = vectors.map((v) => v.value as Record<string, unknown>).filter((v) => v.t === type);
    tt.ok(ofType.length > 0, `a vector for ${type}`);
    for (const f of fields) tt.ok(ofType.some((v) => f in v), `a ${type} vector with optional ${f}`);
    if (fields.length > 0) {
      tt.ok(ofType.some((v) => fields.every((f) => !(f in v))), `a ${type} vector without optional fields`);
    }
  }
  const known = new Set(Object.keys(optional));
  for (const v of vectors) tt.ok(known.has((v.value as { t: string }).t), `${v.name} has a known frame type`);
}

t.test('client vectors: bytes and values both ways', async (tt) => {
  checkVectors(tt, clientVectors, encodeClientFrame);
  coverage(tt, clientVectors, CLIENT_OPTIONAL);
});

t.test('server vectors: bytes and values both ways', async (tt) => {
  checkVectors(tt, serverVectors, encodeServerFrame);
  coverage(tt, serverVectors, SERVER_OPTIONAL);
});

t.test('every client vector passes validation unchanged', async (tt) => {
  for (const v of clientVectors) {
    const r = parseClientFrame(fromHex(v.hex), DEFAULT_LIMITS);
    tt.equal(r.kind, 'frame', v.name);
    if (r.kind === 'frame') tt.same(r.frame, fromJsonValue(v.value), v.name);
  }
});

t.test('hand-written bytes: our encoding is plain msgpack', async (tt) => {
  const byName = (vs: FrameVector[], name: string) => {
    const v = vs.find((x) => x.name === name);
    if (!v) throw new Error(`no vector ${name}`);
    return v;
  };
  // {t:'ping', id:1}: map16 of 2 (de 0002), fixstr "t", fixstr "ping", fixstr "id", fixint 1.
  tt.equal(byName(clientVectors, 'ping').hex, ['de0002', 'a1', '74', 'a4', '70696e67', 'a2', '6964', '01'].join(''));
  // {t:'ack', id:6, seq:6}: map16 of 3, then the pairs in field order.
  tt.equal(byName(serverVectors, 'ack-pub').hex, ['de0003', 'a174', 'a3', '61636b', 'a26964', '06', 'a3', '736571', '06'].join(''));
  // {t:'ping', id:4294967295}: the id as uint32 (ce ffffffff).
  tt.equal(byName(clientVectors, 'ping-max-id').hex, 'de0002a174a470696e67a26964ceffffffff');
  // ts above 2^32 goes out as float64 (cb): readers must accept integral floats.
  tt.match(byName(serverVectors, 'ev').hex, /a27473cb4279aac7/);
  // bin is msgpack bin 8 (c4).
  tt.match(byName(serverVectors, 'ev-bin').hex, /a464617461c40300ff10/);
  // A reader that only knows fixmap headers still agrees on the value.
  tt.same(referenceRead(fromHex('82a174a470696e67a2696401')), { t: 'ping', id: 1 });
  tt.same(parseClientFrame(fromHex('82a174a470696e67a2696401'), DEFAULT_LIMITS), { kind: 'frame', frame: { t: 'ping', id: 1 } }, 'fixmap accepted');
});

t.test('invalid vectors give the stated outcome', async (tt) => {
  const names = new Set<string>();
  for (const v of invalidVectors) {
    tt.notOk(names.has(v.name), `name ${v.name} is unique`);
    names.add(v.name);
    const r = parseClientFrame(fromHex(v.hex), { ...DEFAULT_LIMITS, ...v.limits });
    const got = r.kind === 'frame' ? { kind: 'frame' } : r.kind === 'close' ? { kind: 'close', code: r.code } : { kind: 'error', code: r.code, ...(r.id === undefined ? {} : { id: r.id }) };
    tt.same(got, v.expect, `${v.name}: ${v.comment}`);
  }
  const kinds = new Set(invalidVectors.map((v) => `${v.expect.kind}:${v.expect.code}`));
  for (const k of ['close:4500', 'close:4503', 'error:101', 'error:102', 'error:109', 'error:112']) {
    tt.ok(kinds.has(k), `an invalid vector expecting ${k}`);
  }
});
