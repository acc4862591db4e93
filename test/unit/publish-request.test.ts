// Validation of upstream publish bodies (daemon/ingress/publish-request.ts): what is
// accepted becomes exactly the PublishRequest the sequencer gets; what is refused
// comes with a message naming the field path.
import t from 'tap';
import { DEFAULT_PUBLISH_LIMITS, MAX_EVENTS_PER_REQUEST, MAX_ID_LENGTH, MAX_RECIPIENTS, MAX_SCHEDULE_AHEAD_MS, parsePublishBody } from '../../daemon/ingress/publish-request.js';

const ok = { session: 'quiz:1', type: 'question', data: { q: 'why?' } };

function refused(body: unknown): string {
  const r = parsePublishBody(body);
  if (r.ok) throw new Error(`accepted ${JSON.stringify(body)?.slice(0, 200)}`);
  return r.message;
}

t.test('a single event becomes one request with only the given fields', async (t) => {
  t.same(parsePublishBody(ok), { ok: true, batch: false, events: [ok] });
  const full = { ...ok, id: 'e-1', to: ['alice', 'bob'], snapshot: 'question', conflate: true };
  t.same(parsePublishBody(full), { ok: true, batch: false, events: [full] });
  const r = parsePublishBody({ ...ok, snapshot: 'q', conflate: false });
  t.same(r.ok && r.events[0], { ...ok, snapshot: 'q' }, 'conflate: false is the default and is dropped');
  t.same(parsePublishBody({ ...ok, data: null }).ok, true, 'null data is data');
  for (const data of [0, '', false, [], {}, 'ü', Uint8Array.of(1), [1, [2, { a: null }]]]) {
    t.equal(parsePublishBody({ ...ok, data }).ok, true, `data ${JSON.stringify(data)}`);
  }
  for (const session of ['a', 'quiz:1', 'A-b_c.d:e@f', 'x'.repeat(128)]) t.equal(parsePublishBody({ ...ok, session }).ok, true, `session ${session.slice(0, 10)}`);
  t.equal(parsePublishBody({ ...ok, type: 't'.repeat(64) }).ok, true);
  t.equal(parsePublishBody({ ...ok, id: 'i'.repeat(MAX_ID_LENGTH) }).ok, true);
  t.equal(parsePublishBody({ ...ok, to: Array.from({ length: MAX_RECIPIENTS }, (_, i) => `u${i}`) }).ok, true);
});

t.test('a batch keeps order; 1 to 1000 events', async (t) => {
  const events = Array.from({ length: MAX_EVENTS_PER_REQUEST }, (_, i) => ({ ...ok, data: i }));
  const r = parsePublishBody({ events });
  t.equal(r.ok && r.batch, true);
  t.same(r.ok && r.events.map((e) => e.data), events.map((e) => e.data));
  t.same(parsePublishBody({ events: [ok] }), { ok: true, batch: true, events: [ok] }, 'a batch of one is still a batch');
  t.match(refused({ events: [...events, ok] }), /events must be an array of 1–1000/);
  t.match(refused({ events: [] }), /events/);
  t.match(refused({ events: ok }), /events/);
  t.match(refused({ events: [ok], session: 'x' }), /only the "events" field/);
  t.match(refused({ events: [ok, ok, { ...ok, session: 'bad session' }] }), /^events\[2\]\.session /);
  t.match(refused({ events: [ok, 5] }), /^events\[1\] must be an object/);
});

t.test('each field problem names its path', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['body null', null, /^body must be an object/],
    ['body array', [ok], /^body must be an object/],
    ['body number', 5, /^body must be an object/],
    ['unknown field', { ...ok, colour: 1 }, /^colour is not a publish field \(allowed: /],
    ['session missing', { type: 't', data: 1 }, /^session must be/],
    ['session empty', { ...ok, session: '' }, /^session must be/],
    ['session too long', { ...ok, session: 'x'.repeat(129) }, /^session must be 1–128/],
    ['session bad character', { ...ok, session: 'quiz/1' }, /^session must be/],
    ['session not a string', { ...ok, session: 1 }, /^session must be/],
    ['type missing', { session: 'q', data: 1 }, /^type must be a string/],
    ['type too long', { ...ok, type: 't'.repeat(65) }, /^type must be a string of 1–64/],
    ['data missing', { session: 'q', type: 't' }, /^data is required/],
    ['data too deep', { ...ok, data: JSON.parse('['.repeat(17) + ']'.repeat(17)) }, /^data: value(\[0\]){16}: nests deeper than 16/],
    ['data with a Date', { ...ok, data: { when: new Date(0) } }, /^data: value\.when: Date is not a msgpack value/],
    ['data with NaN', { ...ok, data: [1, NaN] }, /^data: value\[1\]: NaN is not a finite number/],
    ['data with undefined', { ...ok, data: { a: undefined } }, /^data: value\.a: undefined is not a msgpack value/],
    ['data with a function', { ...ok, data: () => 1 }, /^data: value: function/],
    ['data with a typed array', { ...ok, data: new Float32Array(1) }, /Float32Array/],
    ['id not a string', { ...ok, id: 7 }, /^id must be a string/],
    ['id too long', { ...ok, id: 'i'.repeat(MAX_ID_LENGTH + 1) }, /^id must be a string of 1–128/],
    ['to not an array', { ...ok, to: 'bob' }, /^to must be a non-empty array/],
    ['to empty', { ...ok, to: [] }, /^to must be a non-empty array/],
    ['to too many', { ...ok, to: Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => `u${i}`) }, /^to must be a non-empty array of at most 1000/],
    ['to with an empty id', { ...ok, to: ['a', ''] }, /^to\[1\] must be a user id/],
    ['snapshot not a string', { ...ok, snapshot: 1 }, /^snapshot must be a key/],
    ['conflate not a boolean', { ...ok, snapshot: 'k', conflate: 1 }, /^conflate must be a boolean/],
    ['conflate without snapshot', { ...ok, conflate: true }, /^conflate needs snapshot/],
    ['at not a number', { ...ok, at: '1764511200000' }, /^at must be a release time in ms/],
    ['at negative', { ...ok, at: -1 }, /^at must be a release time in ms/],
    ['at fractional', { ...ok, at: 1.5 }, /^at must be a release time in ms/],
    ['at more than an hour ahead', { ...ok, at: Date.now() + MAX_SCHEDULE_AHEAD_MS + 60_000 }, /^at is \d+ ms ahead of the server clock; at most 3600000 ms/],
  ];
  for (const [name, body, pattern] of cases) t.match(refused(body), pattern, name);
});

t.test('at: a future release time is kept; a past one means now and is dropped', async (t) => {
  const now = 1_764_511_200_000;
  t.same(parsePublishBody({ ...ok, at: now + 5000 }, now), { ok: true, batch: false, events: [{ ...ok, at: now + 5000 }] });
  t.same(parsePublishBody({ ...ok, at: now + MAX_SCHEDULE_AHEAD_MS }, now).ok, true, 'exactly the furthest allowed');
  t.same(parsePublishBody({ ...ok, at: now - 1 }, now), { ok: true, batch: false, events: [ok] }, 'a past at is no schedule');
  const batch = parsePublishBody({ events: [ok, { ...ok, at: now + MAX_SCHEDULE_AHEAD_MS + 1 }] }, now);
  t.match(batch.ok ? '' : batch.message, /^events\[1\]\.at is 3600001 ms ahead/, 'in a batch, naming the event');
});

t.test('__proto__ is refused as a data key (at any depth) and as a snapshot key', async (t) => {
  const bad = [
    JSON.parse('{"session":"q:1","type":"t","data":{"__proto__":{"admin":true}}}'),
    JSON.parse('{"session":"q:1","type":"t","data":{"a":[{"__proto__":1}]}}'),
    { session: 'q:1', type: 't', data: 1, snapshot: '__proto__' },
  ];
  for (const body of bad) {
    const r = parsePublishBody(body);
    t.equal(r.ok, false, JSON.stringify(body));
    t.match(r.ok ? '' : r.message, /__proto__/, 'naming the key');
  }
  t.equal(parsePublishBody({ session: 'q:1', type: 't', data: { proto: 1, __proto: 2 } }).ok, true, 'look-alikes pass');
});

t.test('a map with more than 65,535 keys is refused before it is sequenced', async (t) => {
  const data: Record<string, number> = {};
  for (let i = 0; i <= 65_535; i++) data[`k${i}`] = i;
  const r = parsePublishBody({ session: 'q:1', type: 't', data: { nested: data } });
  t.equal(r.ok, false);
  t.match(r.ok ? '' : r.message, /data: value\.nested: a map has 65536 keys; at most 65535/);
});

t.test('data is bounded in values (maxPublishValues), exactly, per event, naming the field and the limit', async (t) => {
  t.equal(DEFAULT_PUBLISH_LIMITS.maxPublishValues, 100_000, 'the default');
  const maps = (n: number) => Array.from({ length: n }, () => ({}));
  // The array and its maps: n + 1 values.
  t.equal(parsePublishBody({ session: 'q:1', type: 't', data: maps(99_999) }).ok, true, 'exactly 100,000 values');
  const over = parsePublishBody({ session: 'q:1', type: 't', data: maps(100_000) });
  t.match(over.ok ? '' : over.message, /^data: value: more than 100000 values \(maxPublishValues;/, '100,001 values: refused');
  const limits = { maxPublishValues: 7 };
  const seven = { a: 1, b: [true, null] };
  t.equal(parsePublishBody({ session: 'q:1', type: 't', data: seven }, Date.now(), limits).ok, true, '7 values within 7 (map, 2 keys, 1, array, 2 items)');
  const batch = parsePublishBody({ events: [{ session: 'q:1', type: 't', data: seven }, { session: 'q:1', type: 't', data: { ...seven, c: 0 } }] }, Date.now(), limits);
  t.match(batch.ok ? '' : batch.message, /^events\[1\]\.data: value: more than 7 values \(maxPublishValues/, 'per event: the batch names the event');
  const many = parsePublishBody({ events: Array.from({ length: 3 }, () => ({ session: 'q:1', type: 't', data: seven })) }, Date.now(), limits);
  t.equal(many.ok, true, 'the budget is per event, not per request');
});
