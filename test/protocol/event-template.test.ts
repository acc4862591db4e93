// The ev frame template: the bytes assembled around a seq and an epoch are exactly
// what encoding the whole frame gives, for every int format of the seq, sessions
// and epochs of every str length class, and every optional field — so a broker
// that sequences inside a script (Redis) and the memory broker send the same bytes.
import t from 'tap';
import { decode, encodeServerFrame } from '../../protocol/codec.js';
import { assembleEvent, eventTemplate } from '../../protocol/event-template.js';
import type { EventFrame } from '../../protocol/frames.js';

const seqs = [1, 2, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
const sessions = ['q:1', 's'.repeat(31), 's'.repeat(32), 's'.repeat(128), 'quiz:ünï'];
const epochs = ['', 'k3x9', 'e'.repeat(31), 'e'.repeat(32), 'e'.repeat(64)];
const payloads: Array<Partial<EventFrame>> = [
  { type: 'q', data: null },
  { type: 'question', data: { q: '2+2?', options: [3, 4, 5], big: 2 ** 40, neg: -7, f: 1.5 } },
  { type: 'tally', data: { yes: 10 }, k: 'tally', c: true },
  { type: 'answer', data: Uint8Array.of(1, 2, 3), k: 'mine' },
  { type: 'x'.repeat(40), data: 'y'.repeat(300) },
];

t.test('assembled bytes equal encodeServerFrame() of the whole frame', async (t) => {
  let checked = 0;
  for (const s of sessions) {
    for (const p of payloads) {
      const ts = 1_764_000_000_123;
      const fields = { s, type: p.type!, data: p.data!, ts, ...(p.k !== undefined ? { k: p.k } : {}), ...(p.c ? { c: true as const } : {}) };
      const tpl = eventTemplate(fields);
      for (const seq of seqs) {
        for (const ep of epochs) {
          const frame: EventFrame = { t: 'ev', s, seq, ep, type: fields.type, data: fields.data, ts };
          if (fields.k !== undefined) frame.k = fields.k;
          if (fields.c) frame.c = true;
          const want = encodeServerFrame(frame);
          const got = assembleEvent(tpl, seq, ep);
          if (Buffer.compare(Buffer.from(want), Buffer.from(got)) !== 0) {
            t.fail(`bytes differ for session ${s.length} chars, seq ${seq}, epoch ${ep.length} chars, ${JSON.stringify(p).slice(0, 60)}`);
            return;
          }
          checked++;
        }
      }
    }
  }
  t.equal(checked, sessions.length * payloads.length * seqs.length * epochs.length, `${checked} frames byte-identical`);
});

t.test('the assembled frame decodes to the event', async (t) => {
  const tpl = eventTemplate({ s: 'poll:7', type: 'tally', data: { a: 1 }, ts: 5, k: 'tally', c: true });
  const r = decode(assembleEvent(tpl, 300, 'ep1'));
  t.ok(r.ok);
  t.same(r.ok && r.value, { t: 'ev', s: 'poll:7', seq: 300, ep: 'ep1', type: 'tally', data: { a: 1 }, ts: 5, k: 'tally', c: true });
});

t.test('one template serves many seqs without sharing bytes between frames', async (t) => {
  const tpl = eventTemplate({ s: 'q:1', type: 't', data: 1, ts: 1 });
  const a = assembleEvent(tpl, 1, 'e');
  const b = assembleEvent(tpl, 2, 'e');
  t.not(a.buffer, b.buffer, 'each frame has its own buffer');
  t.equal((decode(a) as { value: EventFrame }).value.seq, 1);
  t.equal((decode(b) as { value: EventFrame }).value.seq, 2);
});
