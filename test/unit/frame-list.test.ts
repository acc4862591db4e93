// A join's replay crosses threads as one packed shared buffer: what goes in comes out, in
// order, byte for byte, including empty frames; an empty list is an empty buffer.
import t from 'tap';
import { packFrames, unpackFrames } from '../../daemon/threads/frame-list.js';

t.test('frames come back in order, byte for byte, as views into the one buffer', async (t) => {
  const frames = [Uint8Array.of(1, 2, 3), new Uint8Array(0), new Uint8Array(70_000).fill(7), Uint8Array.of(255)];
  // A frame that is a view into a larger buffer packs only its own bytes.
  frames.push(new Uint8Array(Uint8Array.of(9, 8, 7, 6).buffer, 1, 2));
  const packed = packFrames(frames);
  t.equal(packed.byteLength, frames.reduce((n, f) => n + 4 + f.length, 0), 'four bytes of length per frame, nothing else');
  const back = unpackFrames(packed);
  t.same(back.map((f) => Array.from(f)), frames.map((f) => Array.from(f)));
  t.ok(back.every((f) => f.buffer === packed), 'no copies');
});

t.test('no frames: an empty buffer, read back as no frames', async (t) => {
  const packed = packFrames([]);
  t.equal(packed.byteLength, 0);
  t.same(unpackFrames(packed), []);
});
