// daemon/memory-release.ts: after 16 MiB of buffers were let go, one major
// collection runs a moment later, and it does give back the memory of buffers
// nothing references any more (external memory falls).
import t from 'tap';
import { collectionsRun, releasedBufferMemory } from '../../daemon/memory-release.js';

t.test('letting go of 16 MiB of buffers gets them collected within about a second, with no allocation to prompt V8', async (t) => {
  const buffers: Buffer[] = Array.from({ length: 64 }, () => Buffer.allocUnsafeSlow(1024 * 1024).fill(1));
  const held = process.memoryUsage().external;
  const before = collectionsRun();
  buffers.length = 0;
  releasedBufferMemory(8 * 1024 * 1024);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(collectionsRun(), before, 'under 16 MiB: no collection');
  releasedBufferMemory(56 * 1024 * 1024);
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(collectionsRun(), before + 1, 'past it: one collection');
  const after = process.memoryUsage().external;
  t.ok(held - after >= 60 * 1024 * 1024, `external memory fell by ${((held - after) / 1048576).toFixed(0)} MB`);
  releasedBufferMemory(64 * 1024 * 1024);
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(collectionsRun(), before + 1, 'at most one collection per 10 s');
});
