// The JSON pre-scan that refuses a publish body with a map of more than 65,535 keys
// before JSON.parse spends ~90 ms on it: it counts keys per object exactly, whatever
// the strings hold, and decodePublishBody refuses such a body as a bad request.
import t from 'tap';
import { compactPackr } from '../support/msgpack-bytes.js';
import { widestObject } from '../../daemon/ingress/json-shape.js';
import { decodePublishBody } from '../../daemon/ingress/publish-request.js';

const widest = (value: unknown, stopAbove = Infinity) => widestObject(Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)), stopAbove);
const wide = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));

t.test('counts the keys of the widest object, at any depth, not those of arrays', async (t) => {
  t.equal(widest({}), 0);
  t.equal(widest([1, 2, 3]), 0);
  t.equal(widest({ a: 1, b: [1, 2, { c: 1, d: 2, e: 3 }], f: {} }), 3);
  t.equal(widest({ a: wide(5000), b: [wide(7000)] }), 7000);
  t.equal(widest('  { "a" : 1 ,\n "b":2 }  '), 2, 'whitespace between tokens');
});

t.test('colons, braces, quotes and backslashes inside strings do not count', async (t) => {
  const tricky = { 'k:{[': 'v:}]', quote: 'say "a:b"', slash: 'end\\', both: '\\"x:y\\"', [`k"\\:`]: ':', u: '\u003a' };
  t.equal(widest(tricky), Object.keys(tricky).length);
  t.equal(widest({ s: '\\\\', n: { x: 1 } }), 2, 'an even run of backslashes before a quote ends the string');
});

t.test('stops at the first object past the bound', async (t) => {
  t.equal(widest(wide(100), 10), 11);
});

t.test('not JSON: some count, never a throw', async (t) => {
  for (const text of ['', '"unterminated', '{"a":', '}}}]]', '{"a":1}}}', 'x'.repeat(100), '[[[[[[['.repeat(1000)]) {
    t.type(widest(text), 'number', JSON.stringify(text.slice(0, 20)));
  }
});

t.test('decodePublishBody refuses a map of 65,536 keys before parsing, as a request problem; 65,535 pass', async (t) => {
  const over = decodePublishBody('application/json', Buffer.from(JSON.stringify({ session: 'q:1', type: 't', data: { nested: wide(65_536) } })));
  t.same(over.ok ? 'ok' : [over.problem, over.message], ['request', 'a map has more than 65535 keys; at most 65535']);
  t.equal(decodePublishBody('application/json', Buffer.from(JSON.stringify({ session: 'q:1', type: 't', data: wide(65_535) }))).ok, true);
  const msgpack = decodePublishBody('application/msgpack', Buffer.from(compactPackr.pack({ session: 'q:1', type: 't', data: wide(65_536) })));
  t.same(msgpack.ok ? 'ok' : [msgpack.problem, msgpack.message], ['request', 'a map has 65536 keys; at most 65535'], 'msgpack: the same, from the scan');
  const broken = decodePublishBody('application/json', Buffer.from('{"session":'));
  t.equal(broken.ok ? 'ok' : broken.problem, 'body', 'bad JSON is still a body problem');
});
