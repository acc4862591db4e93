// The primary's routing table (daemon/primary/router.ts) on a real memory bus: the
// instance is subscribed to a session exactly while some shard has interest, bus
// (un)subscriptions apply in call order, and a crashed shard is forgotten.
import t from 'tap';
import type { Bus, BusMessage } from '../../daemon/engine/bus.js';
import { createMemoryBus } from '../../daemon/engine/memory-bus.js';
import { Router } from '../../daemon/primary/router.js';

interface Fixture {
  bus: Bus;
  router: Router;
  got: BusMessage[];
  errors: Array<[string, unknown]>;
  /** Publishes a frame on the bus and reports whether the handler saw it. */
  reaches(session: string): boolean;
}

function fixture(bus: Bus = createMemoryBus()): Fixture {
  const got: BusMessage[] = [];
  const errors: Array<[string, unknown]> = [];
  bus.onMessage((msg) => got.push(msg));
  const router = new Router(bus, (session, err) => errors.push([session, err]));
  return {
    bus,
    router,
    got,
    errors,
    reaches(session) {
      const before = got.length;
      bus.publish({ session, seq: 1, frame: Uint8Array.of(1) });
      return got.length > before;
    },
  };
}

/** A real memory bus whose first subscribe fails, as a broker outage would. */
function busFailingFirstSubscribe(): Bus {
  const inner = createMemoryBus();
  let failNext = true;
  return {
    async subscribe(s) {
      if (failNext) {
        failNext = false;
        throw new Error('bus down');
      }
      await inner.subscribe(s);
    },
    unsubscribe: (s) => inner.unsubscribe(s),
    publish: (m) => inner.publish(m),
    onMessage: (h) => inner.onMessage(h),
    close: () => inner.close(),
  };
}

t.test('first interest subscribes, last uninterest unsubscribes', async (t) => {
  const f = fixture();
  t.equal(f.router.shardsFor('s:1'), undefined);
  t.equal(f.router.isActive('s:1'), false);
  f.router.addInterest('s:1', 0);
  await f.router.settled('s:1');
  t.ok(f.reaches('s:1'), 'subscribed on the first interest');
  f.router.addInterest('s:1', 1);
  f.router.addInterest('s:1', 1);
  t.same([...(f.router.shardsFor('s:1') ?? [])].sort(), [0, 1]);
  t.equal(f.router.size, 1);
  f.router.removeInterest('s:1', 0);
  await f.router.settled('s:1');
  t.ok(f.reaches('s:1'), 'still subscribed while shard 1 holds subscribers');
  t.same([...(f.router.shardsFor('s:1') ?? [])], [1]);
  f.router.removeInterest('s:1', 1);
  await f.router.settled('s:1');
  t.notOk(f.reaches('s:1'), 'unsubscribed after the last');
  t.equal(f.router.isActive('s:1'), false);
  t.equal(f.router.size, 0);
  f.router.removeInterest('s:1', 1);
  f.router.removeInterest('s:never', 3);
  t.equal(f.router.size, 0, 'stray uninterest is harmless');
  t.same(f.errors, []);
});

t.test('quick interest changes apply in order', async (t) => {
  const f = fixture();
  f.router.addInterest('s:2', 0);
  f.router.removeInterest('s:2', 0);
  f.router.addInterest('s:2', 0);
  await f.router.settled('s:2');
  t.ok(f.reaches('s:2'), 'subscribe, unsubscribe, subscribe ends subscribed');
  f.router.removeInterest('s:2', 0);
  f.router.addInterest('s:2', 1);
  f.router.removeInterest('s:2', 1);
  await f.router.settled('s:2');
  t.notOk(f.reaches('s:2'), '… and unsubscribe, subscribe, unsubscribe ends unsubscribed');
});

t.test('a slow bus still applies (un)subscriptions in call order', async (t) => {
  const inner = createMemoryBus();
  const log: string[] = [];
  const slow: Bus = {
    async subscribe(s) {
      await new Promise((r) => setTimeout(r, 30));
      log.push(`sub ${s}`);
      await inner.subscribe(s);
    },
    async unsubscribe(s) {
      log.push(`unsub ${s}`);
      await inner.unsubscribe(s);
    },
    publish: (m) => inner.publish(m),
    onMessage: (h) => inner.onMessage(h),
    close: () => inner.close(),
  };
  const f = fixture(slow);
  f.router.addInterest('s:3', 0);
  f.router.removeInterest('s:3', 0);
  await f.router.settled('s:3');
  t.same(log, ['sub s:3', 'unsub s:3'], 'the unsubscribe waited for the slow subscribe');
  t.notOk(f.reaches('s:3'));
});

t.test('dropShard forgets a shard everywhere', async (t) => {
  const f = fixture();
  f.router.addInterest('s:a', 0);
  f.router.addInterest('s:b', 0);
  f.router.addInterest('s:b', 1);
  f.router.addInterest('s:c', 1);
  await Promise.all(['s:a', 's:b', 's:c'].map((s) => f.router.settled(s)));
  f.router.dropShard(0);
  await Promise.all(['s:a', 's:b', 's:c'].map((s) => f.router.settled(s)));
  t.notOk(f.reaches('s:a'), 'only shard 0 had s:a: unsubscribed');
  t.ok(f.reaches('s:b'), 's:b stays for shard 1');
  t.same([...(f.router.shardsFor('s:b') ?? [])], [1]);
  t.ok(f.reaches('s:c'));
  t.equal(f.router.size, 2);
  f.router.dropShard(7);
  t.equal(f.router.size, 2, 'dropping an unknown shard changes nothing');
});

t.test('a failing bus subscription is reported, and later steps still run', async (t) => {
  const f = fixture(busFailingFirstSubscribe());
  f.router.addInterest('s:f', 0);
  await t.rejects(f.router.settled('s:f'), /bus down/, 'joins waiting on the subscription learn it failed');
  t.equal(f.errors.length, 1);
  t.equal(f.errors[0][0], 's:f');
  t.match(String(f.errors[0][1]), /bus down/);
  f.router.removeInterest('s:f', 0);
  f.router.addInterest('s:f', 0);
  await f.router.settled('s:f');
  t.ok(f.reaches('s:f'), 'the chain goes on after a failure');
});

t.test('a session whose bus subscription failed is not left routed but deaf', async (t) => {
  // STYLE.md (centrifuge addSubscription): undo the interest when the subscribe
  // fails. Otherwise the session stays in the table, no later interest subscribes
  // again, and every client joined to it silently misses live events until all
  // of them leave.
  const f = fixture(busFailingFirstSubscribe());
  f.router.addInterest('s:deaf', 0);
  await t.rejects(f.router.settled('s:deaf'), /bus down/);
  t.equal(f.errors.length, 1, 'the failure was reported');
  f.router.addInterest('s:deaf', 1); // another shard's client joins the same session later
  await f.router.settled('s:deaf');
  t.ok(f.reaches('s:deaf') || !f.router.isActive('s:deaf'), 'either subscribed now, or no longer routed (so the next interest subscribes)');
});
