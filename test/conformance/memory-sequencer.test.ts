// The shared Sequencer + Bus suite on the standalone engine (memory sequencer on the
// memory bus), plus what only the memory sequencer promises: idle sessions are
// forgotten after the TTL unless they have local subscribers.
import t from 'tap';
import { createMemoryBus } from '../../daemon/engine/memory-bus.js';
import { createMemorySequencer } from '../../daemon/engine/memory-sequencer.js';
import { sequencerConformance } from './sequencer.js';

sequencerConformance(t, 'memory', async ({ historySize }) => {
  const bus = createMemoryBus();
  const sequencer = createMemorySequencer({ bus, historySizeFor: () => historySize, sessionTtlMs: 3_600_000, isActive: () => false });
  return {
    sequencer,
    bus,
    async close() {
      await sequencer.close();
      await bus.close();
    },
  };
});

t.test('memory: idle sessions without subscribers are forgotten after the TTL', async (t) => {
  let now = 1_000_000;
  const bus = createMemoryBus();
  const active = new Set(['s:kept']);
  const sequencer = createMemorySequencer({ bus, historySizeFor: () => 10, sessionTtlMs: 1000, isActive: (s) => active.has(s), now: () => now });
  t.teardown(() => sequencer.close());
  const gone = await sequencer.publish({ session: 's:gone', type: 'a', data: 1 });
  const kept = await sequencer.publish({ session: 's:kept', type: 'a', data: 1 });
  now += 5000;
  await new Promise((r) => setTimeout(r, 1100)); // the sweeper runs every max(1 s, ttl)
  const after = await sequencer.position('s:gone');
  t.equal(after.seq, 0, 'the idle session was forgotten');
  t.not(after.ep, gone.epoch, 'and comes back under a new epoch, so old positions are not recovered');
  const still = await sequencer.position('s:kept');
  t.same([still.seq, still.ep], [1, kept.epoch], 'a session with subscribers is kept');
});
