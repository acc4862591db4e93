// The typed frame encoders: integers inside application data reach the wire as
// msgpack integers (int 64 beyond 32 bits, not float64), protocol fields keep the
// encoding SPEC.md §4 and the vectors pin, and a misspelled field does not compile.
import t from 'tap';
import { unpack as plainUnpack } from 'msgpackr';
import { decode, encode, encodeClientFrame, encodeServerFrame, exactIntegers } from '../../protocol/codec.js';
import type { EventFrame, JoinedFrame, ServerFrame } from '../../protocol/frames.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
/** msgpack of `n` as int 64 (0xd3), how the encoder must write a large integer. */
const int64 = (n: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0xd3;
  b.writeBigInt64BE(BigInt(n), 1);
  return b.toString('hex');
};
const float64 = (n: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0xcb;
  b.writeDoubleBE(n, 1);
  return b.toString('hex');
};

const TS = 1763830005123;
const big = 2 ** 40 + 7;
const ev: EventFrame = {
  t: 'ev',
  s: 'quiz:1',
  seq: 3,
  ep: 'e1',
  type: 'score',
  data: { points: big, debt: -big, max: Number.MAX_SAFE_INTEGER, small: 5, u32: 2 ** 32 - 1, i32: -(2 ** 31), half: 0.5, list: [big, [big]] },
  ts: TS,
};

t.test('ev data: integers beyond 32 bits are written as int 64, and read back as the same numbers', async (t) => {
  const bytes = hex(encodeServerFrame(ev));
  for (const n of [big, -big, Number.MAX_SAFE_INTEGER]) {
    t.ok(bytes.includes(int64(n)), `${n} as int 64`);
    t.notOk(bytes.includes(float64(n)), `${n} not as float64`);
  }
  t.ok(bytes.includes('a3753332ceffffffff'), '2^32-1 stays uint 32');
  t.ok(bytes.includes('a3693332d280000000'), '-2^31 stays int 32');
  t.ok(bytes.includes(`a27473${float64(TS)}`), 'ts keeps float64 (SPEC §4, vector "ev")');
  const decoded = decode(encodeServerFrame(ev));
  t.ok(decoded.ok);
  if (decoded.ok) t.same(decoded.value, ev, 'our decoder reads the same frame, numbers as numbers');
  t.same(plainUnpack(encodeServerFrame(ev)).data.points, BigInt(big), 'a default msgpackr reads an int 64 (as BigInt)');
});

t.test('joined snapshot data gets the same treatment', async (t) => {
  const joined: JoinedFrame = { t: 'joined', id: 1, s: 'quiz:1', ep: 'e1', seq: 3, rec: false, snap: { score: { seq: 3, type: 'score', data: { points: big }, ts: TS } } };
  const bytes = hex(encodeServerFrame(joined));
  t.ok(bytes.includes(int64(big)), 'snapshot data as int 64');
  t.ok(bytes.includes(float64(TS)), 'snapshot ts keeps float64');
  const decoded = decode(encodeServerFrame(joined));
  t.same(decoded.ok && decoded.value, joined);
});

t.test('frames without large integers encode exactly as before', async (t) => {
  const plain: EventFrame = { ...ev, data: { q: 4, text: 'hi', list: [1, -2, 0.5, 2 ** 32 - 1] } };
  t.equal(hex(encodeServerFrame(plain)), hex(encode(plain)));
  const data = plain.data;
  t.equal(exactIntegers(data), data, 'nothing to rewrite: the same object, no copy');
  t.same(ev.data, { points: big, debt: -big, max: Number.MAX_SAFE_INTEGER, small: 5, u32: 2 ** 32 - 1, i32: -(2 ** 31), half: 0.5, list: [big, [big]] }, 'the frame given is not modified');
});

t.test('beyond 2^53 stays float64; keys such as __proto__ stay keys; bin stays bin', async (t) => {
  t.equal(exactIntegers(2 ** 53), 2 ** 53, 'not a safe integer: left as is');
  t.equal(exactIntegers(1.5e300), 1.5e300);
  const withProto = JSON.parse(`{"__proto__": ${big}, "b": new Uint8Array(0)}`.replace('new Uint8Array(0)', '1')) as Record<string, unknown>;
  const out = exactIntegers(withProto) as Record<string, unknown>;
  t.ok(Object.hasOwn(out, '__proto__'), '__proto__ is an own key of the copy');
  t.equal(Object.getPrototypeOf(out), Object.prototype, 'and did not become the prototype');
  const bin = Uint8Array.of(1, 2, 3);
  t.equal((exactIntegers({ bin, n: big }) as { bin: Uint8Array }).bin, bin, 'bin passed through untouched');
});

t.test('client frames: pub and cmd data likewise', async (t) => {
  const pub = hex(encodeClientFrame({ t: 'pub', id: 1, s: 'chat:1', type: 'm', data: [big] }));
  t.ok(pub.includes(int64(big)));
  const cmd = hex(encodeClientFrame({ t: 'cmd', id: 2, s: 'quiz:1', cid: 'c', type: 'a', data: { at: big } }));
  t.ok(cmd.includes(int64(big)));
});

t.test('encodeServerFrame is typed: misspelled fields and unknown frames do not compile', async (t) => {
  // Checked by `npm run typecheck` (tsc -p tsconfig.test.json); at run time these are just calls.
  const bad: Array<() => Uint8Array> = [
    // @ts-expect-error `iid` is not a field of pong
    () => encodeServerFrame({ t: 'pong', iid: 1 }),
    // @ts-expect-error ack needs an id
    () => encodeServerFrame({ t: 'ack', seq: 1 }),
    // @ts-expect-error no such server frame type
    () => encodeServerFrame({ t: 'pongg', id: 1 }),
  ];
  t.equal(bad.length, 3);
  const good: ServerFrame = { t: 'pong', id: 1 };
  t.equal(hex(encodeServerFrame(good)), hex(encode(good)));
});
