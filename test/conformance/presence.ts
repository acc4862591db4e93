/**
 * The Presence contract (daemon/engine/presence.ts) as one suite every
 * implementation runs. A factory builds a fresh, isolated table per subtest.
 */
import type { Test } from 'tap';
import type { Presence } from '../../daemon/engine/presence.js';
import type { PresenceEntry } from '../../protocol/frames.js';

/** Builds a fresh, isolated presence table (closed by the suite). */
export type PresenceFactory = () => Promise<Presence>;

const sorted = (entries: PresenceEntry[]) => [...entries].sort((a, b) => (a.u < b.u ? -1 : a.u > b.u ? 1 : 0));

/** Runs the shared Presence contract suite against `factory`. */
export function presenceConformance(t: Test, name: string, factory: PresenceFactory): void {
  const fixture = async (t: Test): Promise<Presence> => {
    const p = await factory();
    t.teardown(() => p.close());
    return p;
  };

  t.test(`${name}: join reports the first connection, leave the last`, async (t) => {
    const p = await fixture(t);
    t.equal(await p.join('s:1', 'alice', '0'), true, 'first connection: arrival');
    t.equal(await p.join('s:1', 'alice', '0'), false, 'second tab on the same owner');
    t.equal(await p.join('s:1', 'alice', '1'), false, 'a tab on another owner');
    t.equal(await p.join('s:1', 'bob', '1'), true);
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 3 }, { u: 'bob', n: 1 }], 'counts summed over owners');
    t.equal(await p.leave('s:1', 'alice', '0'), false);
    t.equal(await p.leave('s:1', 'alice', '1'), false, 'still one connection on owner 0');
    t.equal(await p.leave('s:1', 'alice', '0'), true, 'the last connection: departure');
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }]);
    t.equal(await p.leave('s:1', 'bob', '1'), true);
    t.same(await p.list('s:1'), [], 'an empty session lists nobody');
  });

  t.test(`${name}: leaving without having joined reports nothing`, async (t) => {
    const p = await fixture(t);
    t.equal(await p.leave('s:none', 'alice', '0'), false);
    await p.join('s:2', 'alice', '0');
    t.equal(await p.leave('s:2', 'alice', '1'), false, 'another owner held no connection of hers');
    t.equal(await p.leave('s:2', 'bob', '0'), false);
    t.same(await p.list('s:2'), [{ u: 'alice', n: 1 }], 'the stray leaves changed nothing');
  });

  t.test(`${name}: sessions are independent`, async (t) => {
    const p = await fixture(t);
    t.equal(await p.join('s:a', 'alice', '0'), true);
    t.equal(await p.join('s:b', 'alice', '0'), true, 'presence is per session');
    t.equal(await p.leave('s:a', 'alice', '0'), true);
    t.same(await p.list('s:a'), []);
    t.same(await p.list('s:b'), [{ u: 'alice', n: 1 }]);
  });

  t.test(`${name}: dropOwner forgets an owner and reports who is now absent`, async (t) => {
    const p = await fixture(t);
    await p.join('s:1', 'alice', 'crashed');
    await p.join('s:1', 'alice', 'crashed');
    await p.join('s:1', 'bob', 'crashed');
    await p.join('s:1', 'bob', 'alive');
    await p.join('s:2', 'carol', 'crashed');
    await p.join('s:2', 'dave', 'alive');
    const gone = await p.dropOwner('crashed');
    const key = (d: { session: string; user: string }) => `${d.session}/${d.user}`;
    t.same(gone.map(key).sort(), ['s:1/alice', 's:2/carol'], 'only users with no connection elsewhere departed');
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }]);
    t.same(await p.list('s:2'), [{ u: 'dave', n: 1 }]);
    t.same(await p.dropOwner('crashed'), [], 'dropping again reports nothing');
    t.equal(await p.join('s:1', 'alice', 'alive'), true, 'a user who departed arrives again');
  });

  t.test(`${name}: many users`, async (t) => {
    const p = await fixture(t);
    const arrivals = await Promise.all(Array.from({ length: 200 }, (_, i) => p.join('s:big', `u${i}`, String(i % 3))));
    t.equal(arrivals.filter(Boolean).length, 200);
    const again = await Promise.all(Array.from({ length: 200 }, (_, i) => p.join('s:big', `u${i}`, String((i + 1) % 3))));
    t.equal(again.filter(Boolean).length, 0, 'concurrent second connections are not arrivals');
    const list = await p.list('s:big');
    t.equal(list.length, 200);
    t.ok(list.every((e) => e.n === 2));
  });
}
