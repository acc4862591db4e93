// One RabbitMQ message as one event (daemon/ingress/amqp-message.ts): the session
// from the routing key, message_id as the event id, JSON or msgpack by content type,
// and the HTTP API's validation with the same messages.
import t from 'tap';
import { encode } from '../../protocol/codec.js';
import { eventOfMessage } from '../../daemon/ingress/amqp-message.js';
import { decodePublishBody, parsePublishBody } from '../../daemon/ingress/publish-request.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const msg = (content: Buffer, extra: { routingKey?: string; contentType?: string; messageId?: string } = {}) => ({
  routingKey: extra.routingKey ?? 'quiz:1',
  contentType: 'contentType' in extra ? extra.contentType : 'application/json',
  messageId: extra.messageId,
  content,
});

t.test('the session comes from the routing key, the id from message_id', async (t) => {
  const r = eventOfMessage(msg(json({ type: 'q', data: { n: 1 }, snapshot: 'question' }), { messageId: 'e1' }));
  t.same(r, { ok: true, event: { session: 'quiz:1', type: 'q', data: { n: 1 }, snapshot: 'question', id: 'e1' } });
  const noId = eventOfMessage(msg(json({ type: 'q', data: null })));
  t.same(noId.ok && noId.event.id, undefined, 'no message_id: no event id');
  const bodyId = eventOfMessage(msg(json({ type: 'q', data: null, id: 'x' }), { messageId: 'x' }));
  t.equal(bodyId.ok && bodyId.event.id, 'x', 'the same id in both places is fine');
});

t.test('msgpack by content type, JSON when none is given', async (t) => {
  const packed = eventOfMessage(msg(Buffer.from(encode({ type: 'q', data: Uint8Array.of(1, 2) })), { contentType: 'application/msgpack' }));
  t.equal(packed.ok && packed.event.type, 'q');
  const bare = eventOfMessage(msg(json({ type: 'q', data: 1 }), { contentType: undefined }));
  t.equal(bare.ok, true, 'no content type: JSON');
});

t.test('refusals name what to fix', async (t) => {
  const reason = (m: ReturnType<typeof msg>) => {
    const r = eventOfMessage(m);
    return r.ok ? 'accepted' : r.reason;
  };
  t.match(reason(msg(json({ session: 'quiz:2', type: 'q', data: 1 }))), /differs from the routing key "quiz:1"/);
  t.match(reason(msg(json({ type: 'q', data: 1, id: 'a' }), { messageId: 'b' })), /differs from message_id/);
  t.match(reason(msg(json({ events: [{ session: 'quiz:1', type: 'q', data: 1 }] }))), /one event/);
  t.match(reason(msg(json([1, 2]))), /body must be an object/);
  t.match(reason(msg(json({ type: 'q', data: 1 }), { routingKey: '' })), /session must be/);
  t.match(reason(msg(Buffer.from('x'), { contentType: 'text/plain' })), /unsupported content-type "text\/plain"/);
});

t.test('the HTTP API and RabbitMQ give the same message for the same bad event', async (t) => {
  const bad = [
    { session: 'quiz:1', type: '', data: 1 },
    { session: 'quiz:1', type: 'q' },
    { session: 'quiz:1', type: 'q', data: 1, to: 'bob' },
    { session: 'quiz:1', type: 'q', data: 1, conflate: true },
    { session: 'quiz:1', type: 'q', data: 1, colour: 'red' },
  ];
  for (const body of bad) {
    const decoded = decodePublishBody('application/json', json(body));
    const http = decoded.ok ? parsePublishBody(decoded.value) : null;
    const amqp = eventOfMessage(msg(json(body)));
    t.ok(http !== null && !http.ok && !amqp.ok && http.message === amqp.reason, `${JSON.stringify(body)}: ${amqp.ok ? 'accepted' : amqp.reason}`);
  }
});

t.test('data over maxPublishValues is refused (dead-lettered) naming the limit, as by the HTTP API', async (t) => {
  const limits = { maxPublishValues: 4 };
  const ok = eventOfMessage(msg(json({ type: 'q', data: [1, 2, 3] })), limits);
  t.equal(ok.ok, true, '4 values: taken');
  const body = { type: 'q', data: [1, 2, 3, 4] };
  const over = eventOfMessage(msg(json(body)), limits);
  t.match(over.ok ? 'accepted' : over.reason, /^data: value: more than 4 values \(maxPublishValues;/, '5 values: refused');
  const packed = eventOfMessage(msg(Buffer.from(encode(body)), { contentType: 'application/msgpack' }), limits);
  t.equal(packed.ok ? 'accepted' : packed.reason, over.ok ? '' : over.reason, 'msgpack: the same reason');
  const decoded = decodePublishBody('application/json', json({ session: 'quiz:1', ...body }));
  const http = decoded.ok ? parsePublishBody(decoded.value, Date.now(), limits) : null;
  t.equal(http !== null && !http.ok && http.message, over.ok ? '' : over.reason, 'the HTTP API says the same');
  t.equal(eventOfMessage(msg(json({ type: 'q', data: Array.from({ length: 100_000 }, () => ({})) }))).ok, false, 'the default: 100,000 values');
});
