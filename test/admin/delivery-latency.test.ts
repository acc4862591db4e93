/**
 * The shard's delivery-latency reader finds the sequencing time in encoded `ev`
 * frames (with and without a snapshot key and the conflate flag) without decoding
 * them, and refuses what it cannot read rather than guess.
 */
import t from 'tap';
import { assembleEvent, eventTemplate } from '../../protocol/event-template.js';
import { encodeServerFrame } from '../../protocol/codec.js';
import { eventTimestamp, LatencyHistogram } from '../../daemon/shard/delivery-latency.js';

const TS = 1_796_000_000_123;

t.test('reads ts from ev frames', async (t) => {
  const cases = [
    { label: 'plain', extra: {} },
    { label: 'snapshot key', extra: { k: 'question' } },
    { label: 'empty key', extra: { k: '' } },
    { label: '31-byte key', extra: { k: 'k'.repeat(31) } },
    { label: 'key and conflate', extra: { k: 'score', c: true as const } },
    { label: 'conflate alone', extra: { c: true as const } },
  ];
  for (const { label, extra } of cases) {
    const frame = assembleEvent(eventTemplate({ s: 'quiz:1', type: 'q', data: { text: 'ts', nested: [1, 'a2 74 73'] }, ts: TS, ...extra }), 42, 'ep1');
    t.equal(eventTimestamp(frame), TS, label);
  }
  const longKey = assembleEvent(eventTemplate({ s: 's', type: 'q', data: 1, ts: TS, k: 'k'.repeat(32) }), 1, 'e');
  t.equal(eventTimestamp(longKey), -1, 'a key of 32+ bytes: not measured');
  t.equal(eventTimestamp(encodeServerFrame({ t: 'pjoin', s: 'quiz:1', u: 'alice' })), -1, 'not an event');
  t.equal(eventTimestamp(new Uint8Array(3)), -1, 'too short');
});

t.test('the histogram buckets observations', async (t) => {
  const h = new LatencyHistogram();
  const frame = assembleEvent(eventTemplate({ s: 's', type: 'q', data: 1, ts: TS }), 1, 'e');
  h.observeFrame(frame, TS + 3); // 3 ms: the 0.005 bucket
  h.observeFrame(frame, TS + 20_000); // past 10 s: +Inf
  h.observeFrame(frame, TS - 5); // a clock behind: 0
  const s = h.snapshot();
  t.equal(s.count, 3);
  t.equal(s.counts[0], 1, '≤ 1 ms');
  t.equal(s.counts[2], 1, '≤ 5 ms');
  t.equal(s.counts[s.counts.length - 1], 1, '+Inf');
  t.ok(Math.abs(s.sumS - 20.003) < 1e-9);
});
