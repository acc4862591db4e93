import t, { type Test } from 'tap';
import { Packr } from 'msgpackr';
import { encode } from '../../protocol/codec.js';
import { CloseCode, ErrorCode } from '../../protocol/codes.js';
import { DEFAULT_LIMITS } from '../../protocol/frames.js';
import { compactPackr } from '../support/msgpack-bytes.js';
import { checkValue, countValues, hardNestingLimit, parseClientFrame, type ClientLimits, type ParseResult } from '../../protocol/validate.js';

const limits: ClientLimits = { ...DEFAULT_LIMITS };
const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const parse = (bytes: Uint8Array, l: ClientLimits = limits) => parseClientFrame(bytes, l);
const parseValue = (v: unknown, l: ClientLimits = limits) => parse(encode(v), l);
const toHex = (v: unknown) => Buffer.from(encode(v)).toString('hex');
/** Wire bytes of the fields of a cmd frame before `data`: map16 of 6 entries, then t, id, s, cid, type. */
const CMD_PREFIX =
  'de0006' +
  [['t', 'cmd'], ['id', 7], ['s', 'q:1'], ['cid', 'c1'], ['type', 'answer']].map(([k, v]) => toHex(k) + toHex(v)).join('') +
  toHex('data');
/** A cmd frame whose data is the msgpack given in hex, spliced in raw. */
const cmdWithRawData = (dataHex: string) => hex(CMD_PREFIX + dataHex);

/** A copy without `key` (an `undefined` value would encode as msgpackr's ext 0, not as absence). */
function without(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...o };
  delete copy[key];
  return copy;
}

function expectClose(tt: Test, bytes: Uint8Array, code: number, reasonPattern?: RegExp, l: ClientLimits = limits) {
  const r = parse(bytes, l);
  tt.equal(r.kind, 'close', `closes (${Buffer.from(bytes.subarray(0, 24)).toString('hex')})`);
  if (r.kind !== 'close') return;
  tt.equal(r.code, code, `close code ${code}: ${r.reason}`);
  tt.type(r.reason, 'string');
  tt.ok(r.reason.length > 0, 'reason says why');
  if (reasonPattern) tt.match(r.reason, reasonPattern);
}

function expectError(tt: Test, value: unknown, code: number, id: number | undefined, msgPattern?: RegExp, parseWith: (v: unknown) => ParseResult = parseValue) {
  const r = parseWith(value);
  tt.equal(r.kind, 'error', `error for ${JSON.stringify(value)?.slice(0, 80)}`);
  if (r.kind !== 'error') return;
  tt.equal(r.code, code, `code ${code}: ${r.msg}`);
  tt.equal(r.id, id, 'id echoed only when valid');
  if (msgPattern) tt.match(r.msg, msgPattern);
}

t.test('valid frames of every client type parse to themselves', async (tt) => {
  const frames = [
    { t: 'join', id: 1, s: 'quiz:42' },
    { t: 'join', id: 2, s: 'quiz:42', ep: 'e1', seq: 0 },
    { t: 'join', id: 3, s: 'quiz:42', ep: 'abc', seq: 9_007_199_254_740_991, pres: true },
    { t: 'join', id: 4, s: 'A-z_0.9:@x', pres: false },
    { t: 'leave', id: 5, s: 'quiz:42' },
    { t: 'pub', id: 6, s: 'chat:1', type: 'msg', data: { text: 'hé ✓ 😀', n: -1.5, ok: true, none: null } },
    { t: 'pub', id: 7, s: 'chat:1', type: 'msg', data: null },
    { t: 'cmd', id: 8, s: 'quiz:42', cid: 'c-1', type: 'answer', data: { q: 3, choice: [1, 2], raw: new Uint8Array([0, 1, 255]) } },
    { t: 'presence', id: 9, s: 'quiz:42' },
    { t: 'ping', id: 0 },
    { t: 'ping', id: 0xffff_ffff },
  ];
  for (const f of frames) {
    const r = parseValue(f);
    tt.equal(r.kind, 'frame', `${f.t} ${JSON.stringify(f).slice(0, 60)}`);
    if (r.kind === 'frame') tt.same(r.frame, f);
  }
});

t.test('bin in data is copied out of the message buffer', async (tt) => {
  const bytes = encode({ t: 'cmd', id: 1, s: 's', cid: 'c', type: 'x', data: new Uint8Array([1, 2, 3]) });
  const r = parse(bytes);
  if (r.kind !== 'frame' || r.frame.t !== 'cmd') return tt.fail('expected cmd frame');
  bytes.fill(0);
  tt.same(Array.from(r.frame.data as Uint8Array), [1, 2, 3], 'parsed bin survives the input being reused');
});

t.test("cmd and pub hand over the exact bytes of their data, wherever it sits in the frame", async (tt) => {
  const data = { q: 3, choice: [1, 2], raw: new Uint8Array([0, 1, 255]), deep: { a: [{}, [], 'x'] } };
  const orders: Array<Record<string, unknown>> = [
    { t: 'cmd', id: 8, s: 'quiz:42', cid: 'c-1', type: 'answer', data },
    { data, t: 'cmd', id: 8, s: 'quiz:42', cid: 'c-1', type: 'answer' },
    { t: 'cmd', data, id: 8, s: 'quiz:42', cid: 'c-1', type: 'answer' },
    { t: 'pub', id: 6, s: 'chat:1', type: 'msg', data },
    { t: 'pub', id: 6, s: 'chat:1', data, type: 'msg' },
  ];
  for (const frame of orders) {
    for (const [how, bytes] of [['msgpackr', encode(frame)], ['compact maps', new Uint8Array(compactPackr.pack(frame))]] as const) {
      const r = parse(bytes);
      if (r.kind !== 'frame' || r.data === undefined) {
        tt.fail(`${how}: expected a frame with data bytes`);
        continue;
      }
      tt.same(r.data, how === 'msgpackr' ? encode(data) : new Uint8Array(compactPackr.pack(data)), `${how}, data at key ${Object.keys(frame).indexOf('data')}: the data's own bytes`);
      tt.equal(r.data.buffer, bytes.buffer, 'a view into the message, not a copy');
    }
  }
  tt.same((parse(hex(CMD_PREFIX + 'c0')) as { data?: Uint8Array }).data, Uint8Array.of(0xc0), 'nil data is its one byte');
  const ping = parseValue({ t: 'ping', id: 1 });
  tt.equal(ping.kind === 'frame' ? ping.data : 'not a frame', undefined, 'frames without data hand over none');
  const join = parseValue({ t: 'join', id: 1, s: 'quiz:42' });
  tt.equal(join.kind === 'frame' ? join.data : 'not a frame', undefined);
});

t.test('size limit: longer than maxFrameBytes closes 4503', async (tt) => {
  const small: ClientLimits = { ...limits, maxFrameBytes: 64 };
  const frame = (n: number) => encode({ t: 'pub', id: 1, s: 's', type: 'x', data: 'a'.repeat(n) });
  let n = 0;
  while (frame(n + 1).length <= 64) n++;
  tt.equal(frame(n).length, 64);
  tt.equal(parse(frame(n), small).kind, 'frame', 'exactly the limit is fine');
  expectClose(tt, frame(n + 1), CloseCode.MessageTooBig, /65 bytes exceeds the limit of 64/, small);
  // Checked before decoding: garbage over the limit is "too big", not "garbage".
  expectClose(tt, new Uint8Array(100).fill(0xc1), CloseCode.MessageTooBig, undefined, small);
});

t.test('bytes that are not exactly one msgpack value close 4500', async (tt) => {
  const ping = encode({ t: 'ping', id: 1 });
  expectClose(tt, new Uint8Array(0), CloseCode.ProtocolError, /empty/);
  expectClose(tt, hex('c1'), CloseCode.ProtocolError, /0xc1/);
  expectClose(tt, ping.subarray(0, ping.length - 1), CloseCode.ProtocolError, /truncated/);
  expectClose(tt, Uint8Array.from([...ping, 0xc0]), CloseCode.ProtocolError, /1 trailing bytes/);
  expectClose(tt, Uint8Array.from([...ping, ...ping]), CloseCode.ProtocolError, /trailing/);
  expectClose(tt, hex('82 a1 74 a4 70 69 6e 67 a2 69 64'), CloseCode.ProtocolError, /truncated/);
  expectClose(tt, hex('d9'), CloseCode.ProtocolError, /truncated/);
  expectClose(tt, hex('81 a1 74 a3 ff fe fd'), CloseCode.ProtocolError, /UTF-8/);
  for (let i = 1; i < ping.length; i++) {
    tt.equal(parse(ping.subarray(0, i)).kind, 'close', `every truncation (${i} bytes) closes`);
  }
});

t.test('top-level value must be a map with a string t', async (tt) => {
  for (const v of [[{ t: 'ping', id: 1 }], 'ping', 1, null, true, new Uint8Array(2), []]) {
    expectClose(tt, encode(v), CloseCode.ProtocolError, /not a msgpack map/);
  }
  expectClose(tt, encode({ id: 1 }), CloseCode.ProtocolError, /no string `t`/);
  expectClose(tt, encode({ t: 1, id: 1 }), CloseCode.ProtocolError, /no string `t`/);
  expectClose(tt, encode({ t: null, id: 1 }), CloseCode.ProtocolError, /no string `t`/);
  expectClose(tt, encode({}), CloseCode.ProtocolError, /no string `t`/);
});

t.test('extension types anywhere close 4500', async (tt) => {
  const more = new Packr({ moreTypes: true, useRecords: false });
  const cases: Array<[string, string]> = [
    ['timestamp 32', 'd6ff00000001'],
    ['timestamp 64', 'd7ff0000000000000001'],
    ['timestamp 96', 'c70cff000000000000000000000001'],
    ['ext 0 (undefined)', 'd40000'],
    ['RegExp', Buffer.from(more.pack(/a/g)).toString('hex')],
    ['Set', Buffer.from(more.pack(new Set([1]))).toString('hex')],
    ['Error', Buffer.from(more.pack(new Error('x'))).toString('hex')],
    ['Float32Array', Buffer.from(more.pack(new Float32Array([1]))).toString('hex')],
    ['BigInt ext', Buffer.from(more.pack(10n ** 30n)).toString('hex')],
    ['record definition', Buffer.from(new Packr({ useRecords: true }).pack({ a: 1 })).toString('hex')],
    ['ext 16', 'c80001' + '01' + '00'],
    ['ext 32', 'c900000001' + '01' + '00'],
    ['fixext 16', 'd801' + '00'.repeat(16)],
  ];
  for (const [name, dataHex] of cases) {
    tt.test(name, async (t2) => {
      expectClose(t2, cmdWithRawData(dataHex), CloseCode.ProtocolError, /extension type/);
      expectClose(t2, hex(dataHex), CloseCode.ProtocolError, /extension type/);
    });
  }
  // A Date in a frame we encode ourselves goes out as a timestamp ext: also refused.
  expectClose(tt, encode({ t: 'cmd', id: 1, s: 's', cid: 'c', type: 'x', data: new Date(0) }), CloseCode.ProtocolError, /extension/);
});

t.test('64-bit integers beyond ±2^53 close 4500; within decode as numbers', async (tt) => {
  expectClose(tt, cmdWithRawData('cf ffffffffffffffff'), CloseCode.ProtocolError, /±2\^53/);
  expectClose(tt, cmdWithRawData('cf0020000000000001'), CloseCode.ProtocolError, /±2\^53/);
  expectClose(tt, cmdWithRawData('d3ffdfffffffffffff'), CloseCode.ProtocolError, /±2\^53/); // -2^53-1
  expectClose(tt, cmdWithRawData('d38000000000000000'), CloseCode.ProtocolError, /±2\^53/); // int64 min
  for (const [h, v] of [
    ['cf0020000000000000', 2 ** 53],
    ['cf001fffffffffffff', 2 ** 53 - 1],
    ['d3ffe0000000000000', -(2 ** 53)],
    ['d3ffffffffffffffff', -1],
    ['d30000000000000005', 5],
  ] as const) {
    const r = parse(cmdWithRawData(h));
    tt.equal(r.kind, 'frame', h);
    if (r.kind === 'frame' && r.frame.t === 'cmd') tt.equal(r.frame.data, v);
  }
  // seq must be a safe integer: 2^53 decodes but is rejected as a field value.
  expectError(tt, { t: 'join', id: 3, s: 's', ep: 'e', seq: 2 ** 53 }, ErrorCode.BadRequest, 3, /seq/);
});

t.test('map keys: str only, no duplicates, no __proto__', async (tt) => {
  expectClose(tt, hex('83 a1 74 a4 70 69 6e 67 a2 69 64 01 01 02'), CloseCode.ProtocolError, /not a str/);
  expectClose(tt, cmdWithRawData('81 01 02'), CloseCode.ProtocolError, /not a str/);
  expectClose(tt, cmdWithRawData('81c0c0'), CloseCode.ProtocolError, /not a str/);
  // {t:'ping', id:1, t:'join'}: decoders disagree on which t wins, so refuse.
  expectClose(tt, hex('83 a1 74 a4 70 69 6e 67 a2 69 64 01 a1 74 a4 6a 6f 69 6e'), CloseCode.ProtocolError, /repeats a key/);
  expectClose(tt, cmdWithRawData('82 a1 61 01 a1 61 02'), CloseCode.ProtocolError, /repeats a key/);
  const proto = Buffer.from('__proto__').toString('hex');
  expectClose(tt, hex(`83 a1 74 a4 70 69 6e 67 a2 69 64 01 a9 ${proto} 80`), CloseCode.ProtocolError, /__proto__/);
  expectClose(tt, cmdWithRawData(`81a9${proto}81a5${Buffer.from('admin').toString('hex')}c3`), CloseCode.ProtocolError, /__proto__/);
  expectClose(tt, cmdWithRawData(`81da0009${proto}c3`), CloseCode.ProtocolError, /__proto__/);
  tt.equal(({} as Record<string, unknown>).admin, undefined, 'Object.prototype untouched');
  // A key that merely looks like it is fine.
  tt.equal(parse(cmdWithRawData(`81a8${Buffer.from('__proto_').toString('hex')}01`)).kind, 'frame');
});

t.test('huge claimed lengths are refused before allocating', async (tt) => {
  const start = process.hrtime.bigint();
  for (const h of ['dd ffffffff', 'df ffffffff', 'dc ffff', 'de ffff', 'db ffffffff', 'c6 ffffffff', 'c5 ffff', '9f', '8f']) {
    expectClose(tt, cmdWithRawData(h), CloseCode.ProtocolError, /truncated/);
  }
  // Nested arrays each claiming what the rest could hold if it were theirs alone.
  const nested = '9f'.repeat(40) + 'c0';
  expectClose(tt, cmdWithRawData(nested), CloseCode.ProtocolError);
  tt.ok(process.hrtime.bigint() - start < 200_000_000n, 'fast');
});

t.test('nesting: deeper than maxDepth in data is error 109, absurd nesting closes', async (tt) => {
  const nest = (depth: number): unknown => (depth === 0 ? 1 : [nest(depth - 1)]);
  const cmd = (data: unknown) => ({ t: 'cmd', id: 11, s: 's', cid: 'c', type: 'x', data });
  tt.equal(parseValue(cmd(nest(16))).kind, 'frame', 'exactly maxDepth');
  expectError(tt, cmd(nest(17)), ErrorCode.PayloadTooLarge, 11, /^cmd: data(\[0\]){16}: nests deeper than 16 levels$/);
  const hard = hardNestingLimit(limits.maxDepth);
  tt.equal(hard, 64);
  expectError(tt, cmd(nest(hard - 1)), ErrorCode.PayloadTooLarge, 11);
  expectClose(tt, encode(cmd(nest(hard))), CloseCode.ProtocolError, /nesting deeper than 64/);
  // Far beyond what msgpackr's recursion survives: still a clean close, no RangeError.
  const big: ClientLimits = { ...limits, maxFrameBytes: 1 << 20 };
  const deep = new Uint8Array(200_000).fill(0x91);
  deep[deep.length - 1] = 0xc0;
  expectClose(tt, deep, CloseCode.ProtocolError, /nesting/, big);
  expectClose(tt, cmdWithRawData('91'.repeat(5000) + 'c0'), CloseCode.ProtocolError, /nesting/, big);
  const maps = new Uint8Array(30_000);
  for (let i = 0; i < maps.length - 1; i += 3) maps.set([0x81, 0xa1, 0x61], i);
  expectClose(tt, maps, CloseCode.ProtocolError, undefined, big);
});

t.test('decoded size: a frame over maxFrameValues is error 109 with its id, the connection stays', async (tt) => {
  tt.equal(limits.maxFrameValues, 10_000, 'the default');
  const maps = (n: number) => Array.from({ length: n }, () => ({}));
  const parseValue = (v: unknown, l: ClientLimits = limits) => parse(compactPackr.pack(v), l);
  // Packed compactly (one-byte empty maps), unlike the file's parseValue.
  const expectCompactError = (tt: Test, value: unknown, code: number, id: number | undefined, msgPattern?: RegExp) =>
    expectError(tt, value, code, id, msgPattern, (v) => parseValue(v));
  const cmd = (data: unknown, id = 11) => ({ t: 'cmd', id, s: 's', cid: 'c', type: 'x', data });
  // The frame's map, its 6 keys and 5 scalar fields: 12 values besides data.
  tt.equal(countValues(cmd(null)), 13);
  tt.equal(countValues(cmd(maps(9_987))), 10_000);
  tt.equal(parseValue(cmd(maps(9_987))).kind, 'frame', 'exactly maxFrameValues');
  expectCompactError(tt, cmd(maps(9_988)), ErrorCode.PayloadTooLarge, 11, /^cmd: frame holds 10001 values; at most 10000 \(/);

  // The decoded-size bomb: 16,000 empty maps fit the default 16 KiB frame.
  const bomb = compactPackr.pack(cmd(maps(16_000)));
  tt.ok(bomb.length <= limits.maxFrameBytes, `${bomb.length} bytes on the wire`);
  const r = parse(bomb);
  tt.same(r, { kind: 'error', id: 11, code: ErrorCode.PayloadTooLarge, msg: r.kind === 'error' ? r.msg : '' });
  const pub = { t: 'pub', id: 12, s: 's', type: 'x', data: maps(16_000) };
  expectCompactError(tt, pub, ErrorCode.PayloadTooLarge, 12, /^pub: frame holds 16011 values; at most 10000/);

  // Map keys count: a map of k entries is 1 + 2k values.
  const keyed = (k: number) => Object.fromEntries(Array.from({ length: k }, (_, i) => [`k${i}`, 0]));
  tt.equal(countValues(cmd(keyed(4_993))), 9_999);
  const wide: ClientLimits = { ...limits, maxFrameBytes: 64 * 1024 };
  tt.equal(parseValue(cmd(keyed(4_993)), wide).kind, 'frame');
  const over = parseValue(cmd(keyed(4_994)), wide);
  tt.same(over.kind === 'error' && [over.code, over.id, /holds 10001 values/.test(over.msg)], [ErrorCode.PayloadTooLarge, 11, true]);

  // The id is read from the bytes wherever it stands and in any uint format.
  for (const id of [0, 127, 128, 300, 70_000, 0xffff_ffff]) {
    expectCompactError(tt, { t: 'cmd', data: maps(10_000), s: 's', cid: 'c', type: 'x', id }, ErrorCode.PayloadTooLarge, id);
  }
  const u64 = parse(hex(CMD_PREFIX.replace(toHex('id') + toHex(7), toHex('id') + 'cf0000000000000007') + 'dc2710' + '80'.repeat(10_000)));
  tt.equal(u64.kind === 'error' && u64.id, 7, 'a uint 64 id is read too');
  expectCompactError(tt, cmd(maps(10_000), -1), ErrorCode.PayloadTooLarge, undefined);
  expectCompactError(tt, { t: 'cmd', s: 's', cid: 'c', type: 'x', data: maps(10_000) }, ErrorCode.PayloadTooLarge, undefined);
  expectCompactError(tt, { t: 'cmd', id: 'x', s: 's', data: maps(10_000) }, ErrorCode.PayloadTooLarge, undefined);
  // An `id` nested in data is not the frame's.
  expectCompactError(tt, { t: 'cmd', s: 's', data: [{ id: 5 }, ...maps(10_000)] }, ErrorCode.PayloadTooLarge, undefined);
  expectCompactError(tt, { t: 'nope', id: 3, data: maps(10_000) }, ErrorCode.PayloadTooLarge, 3, /^frame holds/);
  expectClose(tt, compactPackr.pack({ id: 3, data: maps(10_000) }), CloseCode.ProtocolError, /no string `t`/);
  expectClose(tt, compactPackr.pack({ t: 1, id: 3, data: maps(10_000) }), CloseCode.ProtocolError, /no string `t`/);
  // Protocol violations anywhere still close, whatever the size.
  expectClose(tt, cmdWithRawData('dc2711' + '80'.repeat(10_000) + 'd6ff00000000'), CloseCode.ProtocolError, /extension type/);

  // Configurable, and every frame type counts.
  const small: ClientLimits = { ...limits, maxFrameValues: 16 };
  tt.equal(parse(compactPackr.pack(cmd([1, 2, 3])), small).kind, 'frame', '16 values');
  const r17 = parse(compactPackr.pack(cmd([1, 2, 3, 4])), small);
  tt.same(r17.kind === 'error' && [r17.code, r17.id], [ErrorCode.PayloadTooLarge, 11], '17 values');
  const join = parse(compactPackr.pack({ t: 'join', id: 4, s: 's', pres: true, x: [1, 2, 3, 4, 5, 6] }), small);
  tt.same(join.kind === 'error' && [join.code, join.id], [ErrorCode.PayloadTooLarge, 4], 'a join with a bomb in an unknown key');
});

t.test('the scan counts values as countValues does on the decoded value', async (tt) => {
  const shapes: unknown[] = [
    null, true, 0, -1, 300, 2 ** 40, 1.5, '', 'hé ✓', 'x'.repeat(300), new Uint8Array(0), new Uint8Array(70_000).subarray(0, 300),
    [], {}, [[[]]], [{}, { a: { b: [1, 'x', null] } }], { a: 1, b: [true, false], c: { d: new Uint8Array(3) } },
    Array.from({ length: 20 }, (_, i) => ({ [`k${i}`]: i % 2 ? [i] : String(i) })),
  ];
  const big: ClientLimits = { ...limits, maxFrameBytes: 1 << 20 };
  for (const data of shapes) {
    const frame = { t: 'cmd', id: 1, s: 's', cid: 'c', type: 'x', data };
    const n = countValues(frame);
    tt.equal(parse(compactPackr.pack(frame), { ...big, maxFrameValues: n }).kind, 'frame', `${n} values fit ${n}`, { diagnostic: false });
    const over = parse(compactPackr.pack(frame), { ...big, maxFrameValues: n - 1 });
    tt.match(over.kind === 'error' ? over.msg : '', new RegExp(`holds ${n} values`), `${JSON.stringify(data)?.slice(0, 40)}: ${n} values`);
  }
});

t.test('unknown t is error 102, with the id only when valid', async (tt) => {
  expectError(tt, { t: 'hello', id: 4 }, ErrorCode.UnknownFrame, 4, /unknown frame type "hello"/);
  expectError(tt, { t: 'subscribe', id: 5, s: 'x' }, ErrorCode.UnknownFrame, 5);
  expectError(tt, { t: 'nope', id: -1 }, ErrorCode.UnknownFrame, undefined);
  expectError(tt, { t: 'nope' }, ErrorCode.UnknownFrame, undefined);
  expectError(tt, { t: '' }, ErrorCode.UnknownFrame, undefined);
  expectError(tt, { t: 'toString', id: 1 }, ErrorCode.UnknownFrame, 1, /toString/);
  expectError(tt, { t: '__proto_', id: 1 }, ErrorCode.UnknownFrame, 1);
});

t.test('id must be a uint32', async (tt) => {
  expectError(tt, { t: 'ping' }, ErrorCode.BadRequest, undefined, /missing id/);
  for (const id of [-1, 2 ** 32, 1.5, '1', null, true, [1], 2 ** 53]) {
    expectError(tt, { t: 'ping', id }, ErrorCode.BadRequest, undefined, /id must be a uint/);
  }
  expectError(tt, { t: 'join', id: NaN, s: 's' }, ErrorCode.BadRequest, undefined);
  tt.equal(parseValue({ t: 'ping', id: 1.0 }).kind, 'frame');
  // Integral float64 is an integer in every language's view of msgpack numbers.
  tt.equal(parse(hex('82 a1 74 a4 70 69 6e 67 a2 69 64 cb 40 00 00 00 00 00 00 00')).kind, 'frame');
});

t.test('session id', async (tt) => {
  expectError(tt, { t: 'join', id: 1 }, ErrorCode.BadRequest, 1, /^join: missing s$/);
  expectError(tt, { t: 'leave', id: 1, s: 5 }, ErrorCode.BadRequest, 1, /s must be a str/);
  expectError(tt, { t: 'join', id: 1, s: '' }, ErrorCode.InvalidSession, 1, /empty/);
  expectError(tt, { t: 'join', id: 2, s: 'a'.repeat(129) }, ErrorCode.InvalidSession, 2, /longer than 128/);
  tt.equal(parseValue({ t: 'join', id: 2, s: 'a'.repeat(128) }).kind, 'frame');
  for (const s of ['a b', 'a/b', 'é', 'a*', 'a\n', 'quiz:*']) {
    expectError(tt, { t: 'presence', id: 3, s }, ErrorCode.InvalidSession, 3, /characters/);
  }
  expectError(tt, { t: 'cmd', id: 3, s: 'x y', cid: 'c', type: 't', data: 1 }, ErrorCode.InvalidSession, 3);
});

t.test('join fields', async (tt) => {
  expectError(tt, { t: 'join', id: 1, s: 's', ep: 'e' }, ErrorCode.BadRequest, 1, /together/);
  expectError(tt, { t: 'join', id: 1, s: 's', seq: 1 }, ErrorCode.BadRequest, 1, /together/);
  expectError(tt, { t: 'join', id: 1, s: 's', ep: '', seq: 1 }, ErrorCode.BadRequest, 1, /ep is empty/);
  expectError(tt, { t: 'join', id: 1, s: 's', ep: 'e'.repeat(65), seq: 1 }, ErrorCode.BadRequest, 1, /ep is longer than 64/);
  tt.equal(parseValue({ t: 'join', id: 1, s: 's', ep: 'e'.repeat(64), seq: 1 }).kind, 'frame');
  expectError(tt, { t: 'join', id: 1, s: 's', ep: 5, seq: 1 }, ErrorCode.BadRequest, 1, /ep must be a str/);
  for (const seq of [-1, 1.5, '1', null, 2 ** 53]) {
    expectError(tt, { t: 'join', id: 1, s: 's', ep: 'e', seq }, ErrorCode.BadRequest, 1, /seq/);
  }
  expectError(tt, { t: 'join', id: 1, s: 's', pres: 1 }, ErrorCode.BadRequest, 1, /pres must be a bool/);
  expectError(tt, { t: 'join', id: 1, s: 's', pres: null }, ErrorCode.BadRequest, 1, /pres/);
  expectError(tt, { t: 'join', id: 1, s: 's', ep: null, seq: null }, ErrorCode.BadRequest, 1);
});

t.test('type, cid and data', async (tt) => {
  const cmd = { t: 'cmd', id: 9, s: 's', cid: 'c', type: 'answer', data: 1 };
  const pub = { t: 'pub', id: 8, s: 's', type: 'msg', data: 'hi' };
  expectError(tt, without(cmd, 'cid'), ErrorCode.BadRequest, 9, /missing cid/);
  expectError(tt, { ...cmd, cid: '' }, ErrorCode.BadRequest, 9, /cid is empty/);
  expectError(tt, { ...cmd, cid: 7 }, ErrorCode.BadRequest, 9, /cid must be a str/);
  expectError(tt, { ...cmd, cid: 'c'.repeat(65) }, ErrorCode.BadRequest, 9, /cid is longer than 64 bytes/);
  tt.equal(parseValue({ ...cmd, cid: 'c'.repeat(64) }).kind, 'frame');
  expectError(tt, { ...cmd, cid: 'é'.repeat(33) }, ErrorCode.BadRequest, 9, /longer than 64 bytes/);
  tt.equal(parseValue({ ...cmd, cid: 'é'.repeat(32) }).kind, 'frame', '64 UTF-8 bytes');
  for (const f of [cmd, pub]) {
    const id = f.id;
    expectError(tt, without(f, 'type'), ErrorCode.BadRequest, id, /missing type/);
    expectError(tt, { ...f, type: '' }, ErrorCode.BadRequest, id, /type is empty/);
    expectError(tt, { ...f, type: 't'.repeat(65) }, ErrorCode.BadRequest, id, /type is longer than 64/);
    expectError(tt, without(f, 'data'), ErrorCode.BadRequest, id, /missing data/);
    expectError(tt, { ...f, data: { a: [1, NaN] } }, ErrorCode.BadRequest, id, /data\.a\[1\]: NaN is not a finite number/);
    expectError(tt, { ...f, data: Infinity }, ErrorCode.BadRequest, id, /Infinity/);
    tt.equal(parseValue({ ...f, data: null }).kind, 'frame', 'nil data is a value');
  }
});

t.test('unknown keys are refused (strict)', async (tt) => {
  expectError(tt, { t: 'ping', id: 1, s: 's' }, ErrorCode.BadRequest, 1, /unknown key "s"/);
  expectError(tt, { t: 'join', id: 1, s: 's', extra: 1 }, ErrorCode.BadRequest, 1, /unknown key "extra"/);
  expectError(tt, { t: 'leave', id: 1, s: 's', seq: 1 }, ErrorCode.BadRequest, 1, /unknown key "seq"/);
  expectError(tt, { t: 'cmd', id: 1, s: 's', cid: 'c', type: 't', data: 1, k: 'x' }, ErrorCode.BadRequest, 1, /unknown key "k"/);
});

t.test('checkValue', async (tt) => {
  tt.equal(checkValue(null, 16), null);
  tt.equal(checkValue({ a: [1, 'x', true, null, new Uint8Array(1), Buffer.from('x'), { b: -0.5 }] }, 16), null);
  tt.equal(checkValue(Object.assign(Object.create(null), { a: 1 }), 16), null, 'null-prototype maps are plain');
  tt.equal(checkValue({}, 1), null);
  tt.equal(checkValue([], 0), 'value: nests deeper than 0 levels');
  tt.equal(checkValue({ a: { b: 1 } }, 1), 'value.a: nests deeper than 1 levels');
  tt.equal(checkValue({ a: [0, { b: new Date(0) }] }, 16), 'value.a[1].b: Date is not a msgpack value');
  tt.equal(checkValue({ 'a key': undefined }, 16), 'value["a key"]: undefined is not a msgpack value');
  tt.equal(checkValue([1n], 16), 'value[0]: bigint is not a msgpack value');
  tt.equal(checkValue(() => 1, 16), 'value: function is not a msgpack value');
  tt.equal(checkValue(Symbol('x'), 16), 'value: symbol is not a msgpack value');
  tt.equal(checkValue(new Map(), 16), 'value: Map is not a msgpack value');
  tt.equal(checkValue(new Set(), 16), 'value: Set is not a msgpack value');
  tt.equal(checkValue(/x/, 16), 'value: RegExp is not a msgpack value');
  tt.equal(checkValue(new Error('x'), 16), 'value: Error is not a msgpack value');
  tt.match(checkValue(new Float32Array(1), 16), /Float32Array is not a msgpack value/);
  tt.equal(checkValue(new DataView(new ArrayBuffer(1)), 16), 'value: DataView is not a msgpack value');
  tt.equal(checkValue(new ArrayBuffer(1), 16), 'value: ArrayBuffer is not a msgpack value');
  tt.equal(checkValue(new (class Point { x = 1 })(), 16), 'value: Point is not a msgpack value');
  tt.equal(checkValue([NaN], 16), 'value[0]: NaN is not a finite number');
  tt.equal(checkValue(-Infinity, 16), 'value: -Infinity is not a finite number');
  // eslint-disable-next-line no-sparse-arrays
  tt.equal(checkValue([1, , 3], 16), 'value[1]: undefined is not a msgpack value', 'holes are undefined');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  tt.match(checkValue(cyclic, 16), /nests deeper than 16 levels/, 'cycles end at the depth bound');
});

t.test('checkValue with a value budget: exact at the boundary, counted as countValues counts', async (tt) => {
  const budget = (max: number) => ({ max, setting: 'maxTest' });
  const values: unknown[] = [null, 'x', new Uint8Array(2), [], {}, [1, [2, [3]]], { a: 1, b: { c: [true, null] } }, Array.from({ length: 1000 }, () => ({}))];
  for (const v of values) {
    const n = countValues(v);
    tt.equal(checkValue(v, 16, budget(n)), null, `${n} values within ${n}`, { diagnostic: false });
    tt.equal(
      checkValue(v, 16, budget(n - 1)),
      `value: more than ${n - 1} values (maxTest; every map, array, map key, str, bin, number, bool and nil counts one)`,
      `${JSON.stringify(v).slice(0, 30)}: ${n} values`,
    );
  }
  tt.equal(countValues({ a: 1, b: [] }), 5, 'map, 2 keys, 1, []');
  tt.equal(checkValue({ a: { b: 1 } }, 1, budget(1000)), 'value.a: nests deeper than 1 levels', 'other problems keep their path');
  tt.equal(checkValue([1, 2, 3], 16), null, 'no budget: unbounded');
  const wide = Object.fromEntries(Array.from({ length: 65_536 }, (_, i) => [`k${i}`, 0]));
  tt.match(checkValue(wide, 16, budget(10)), /a map has 65536 keys/, 'the map 16 bound is checked before the keys are counted');
});
