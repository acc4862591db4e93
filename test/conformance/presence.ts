/**
 * The Presence contract (daemon/engine/presence.ts) as one suite every
 * implementation runs. A factory builds a fresh, isolated table per subtest, on a
 * clock the suite controls (leases are judged by it).
 */
import type { Test } from 'tap';
import { LeaseLost, presenceOwner, type Presence, type PresenceDeparture } from '../../daemon/engine/presence.js';
import type { PresenceEntry } from '../../protocol/frames.js';
import { seededRandom } from '../../daemon/engine/seeded-random.js';

/** Builds a fresh, isolated presence table judging leases by `now` (closed by the suite). */
export type PresenceFactory = (opts: { now: () => number }) => Promise<Presence>;

const sorted = (entries: PresenceEntry[]) => [...entries].sort((a, b) => (a.u < b.u ? -1 : a.u > b.u ? 1 : 0));
const keys = (gone: PresenceDeparture[]) => gone.map((d) => `${d.session}/${d.user}`).sort();

// Owners as the primary names them: instance/shard/incarnation.
const A0 = presenceOwner('inst-a', 0, 1);
const A1 = presenceOwner('inst-a', 1, 1);
const A0_RESTARTED = presenceOwner('inst-a', 0, 2);
const B0 = presenceOwner('inst-b', 0, 1);

/** A presence table and the hand of its clock. */
interface Fixture {
  p: Presence;
  advance(ms: number): void;
}


/** Runs the shared Presence contract suite against `factory`. */
export function presenceConformance(t: Test, name: string, factory: PresenceFactory): void {
  const fixture = async (t: Test): Promise<Fixture> => {
    let time = 1_700_000_000_000;
    const p = await factory({ now: () => time });
    t.teardown(() => p.close());
    return { p, advance: (ms) => void (time += ms) };
  };

  t.test(`${name}: join reports the first connection, leave the last`, async (t) => {
    const { p } = await fixture(t);
    t.equal(await p.join('s:1', 'alice', A0), true, 'first connection: arrival');
    t.equal(await p.join('s:1', 'alice', A0), false, 'second tab on the same owner');
    t.equal(await p.join('s:1', 'alice', A1), false, 'a tab on another owner');
    t.equal(await p.join('s:1', 'bob', A1), true);
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 3 }, { u: 'bob', n: 1 }], 'counts summed over owners');
    t.equal(await p.leave('s:1', 'alice', A0), false);
    t.equal(await p.leave('s:1', 'alice', A1), false, 'still one connection on owner A0');
    t.equal(await p.leave('s:1', 'alice', A0), true, 'the last connection: departure');
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }]);
    t.equal(await p.leave('s:1', 'bob', A1), true);
    t.same(await p.list('s:1'), [], 'an empty session lists nobody');
  });

  t.test(`${name}: leaving without having joined reports nothing`, async (t) => {
    const { p } = await fixture(t);
    t.equal(await p.leave('s:none', 'alice', A0), false);
    await p.join('s:2', 'alice', A0);
    t.equal(await p.leave('s:2', 'alice', A1), false, 'another owner held no connection of hers');
    t.equal(await p.leave('s:2', 'bob', A0), false);
    t.same(await p.list('s:2'), [{ u: 'alice', n: 1 }], 'the stray leaves changed nothing');
    t.equal(await p.leave('s:2', 'alice', 'never/9/9'), false, 'an unknown owner');
    t.equal(await p.refresh('never/9/9', 1000), false, 'a leave by an unknown owner created no lease');
  });

  t.test(`${name}: a duplicate leave changes nothing`, async (t) => {
    const { p } = await fixture(t);
    await p.join('s:1', 'alice', A0);
    await p.join('s:1', 'alice', A1);
    t.equal(await p.leave('s:1', 'alice', A0), false, 'her tab on A1 remains');
    t.equal(await p.leave('s:1', 'alice', A0), false, 'the same leave again');
    t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }], 'the connection on A1 is untouched');
    t.equal(await p.leave('s:1', 'alice', A1), true);
    t.equal(await p.leave('s:1', 'alice', A1), false, 'a departure is reported once');
    t.same(await p.list('s:1'), []);
  });

  t.test(`${name}: sessions are independent`, async (t) => {
    const { p } = await fixture(t);
    t.equal(await p.join('s:a', 'alice', A0), true);
    t.equal(await p.join('s:b', 'alice', A0), true, 'presence is per session');
    t.equal(await p.leave('s:a', 'alice', A0), true);
    t.same(await p.list('s:a'), []);
    t.same(await p.list('s:b'), [{ u: 'alice', n: 1 }]);
  });

  t.test(`${name}: dropOwner forgets an owner and reports who is now absent`, async (t) => {
    const { p } = await fixture(t);
    const crashed = A1;
    const alive = A0;
    await p.join('s:1', 'alice', crashed);
    await p.join('s:1', 'alice', crashed);
    await p.join('s:1', 'bob', crashed);
    await p.join('s:1', 'bob', alive);
    await p.join('s:2', 'carol', crashed);
    await p.join('s:2', 'dave', alive);
    const gone = await p.dropOwner(crashed);
    t.same(keys(gone), ['s:1/alice', 's:2/carol'], 'only users with no connection elsewhere departed');
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }]);
    t.same(await p.list('s:2'), [{ u: 'dave', n: 1 }]);
    t.same(await p.dropOwner(crashed), [], 'dropping again reports nothing');
    t.same(await p.expire(), [], 'nor does a sweep: each departure is reported once');
    t.equal(await p.leave('s:1', 'bob', crashed), false, 'a leave of the dropped owner changes nothing');
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }]);
    t.equal(await p.join('s:1', 'alice', alive), true, 'a user who departed arrives again');
  });

  t.test(`${name}: incarnations of one shard are distinct owners`, async (t) => {
    const { p } = await fixture(t);
    t.equal(await p.join('s:1', 'alice', A0), true);
    await p.join('s:1', 'bob', A0);
    t.equal(await p.join('s:1', 'alice', A0_RESTARTED), false, 'her reconnect to the restarted shard is not an arrival');
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 2 }, { u: 'bob', n: 1 }]);
    t.same(keys(await p.dropOwner(A0)), ['s:1/bob'], 'dropping the old incarnation: only bob departs');
    t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }], 'alice is held by the new incarnation');
    t.equal(await p.leave('s:1', 'alice', A0), false, 'a late leave of the old incarnation cannot take the new one\'s connection');
    t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }]);
    t.equal(await p.leave('s:1', 'alice', A0_RESTARTED), true);
  });

  t.test(`${name}: instances are independent, whatever their shard numbers`, async (t) => {
    const { p, advance } = await fixture(t);
    t.not(A0, B0, 'same shard number and incarnation, different instances');
    await p.refresh(A0, 1000);
    await p.refresh(B0, 1000);
    t.equal(await p.join('s:1', 'alice', A0), true);
    t.equal(await p.join('s:1', 'alice', B0), false);
    t.equal(await p.join('s:1', 'bob', B0), true);
    t.same(await p.dropOwner(A0), [], 'instance A\'s shard 0 goes; alice stays through instance B');
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 1 }, { u: 'bob', n: 1 }]);
    await p.refresh(A0, 1000);
    t.equal(await p.join('s:1', 'carol', A0), true);
    advance(600);
    t.equal(await p.refresh(B0, 1000), true, 'B keeps its lease');
    advance(600);
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 1 }, { u: 'bob', n: 1 }], 'A lapsed without touching B');
    t.same(keys(await p.expire()), ['s:1/carol'], 'only A\'s user departs');
  });

  t.test(`${name}: a lapsed owner's users are gone from list before any sweep`, async (t) => {
    const { p, advance } = await fixture(t);
    t.equal(await p.refresh(A0, 1000), false, 'a new lease: nothing was live before');
    t.equal(await p.refresh(A1, 1000), false);
    await p.join('s:1', 'alice', A0);
    await p.join('s:1', 'alice', A0);
    await p.join('s:1', 'bob', A0);
    await p.join('s:1', 'bob', A1);
    await p.join('s:2', 'carol', A0);
    advance(999);
    t.equal(await p.refresh(A1, 1000), true, 'A1 refreshed in time');
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 2 }, { u: 'bob', n: 2 }], 'one ms before the lapse, all still present');
    advance(1);
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }], 'at ttl A0 lapsed: list shows only A1\'s connection, no sweep needed');
    t.same(await p.list('s:2'), []);
    t.same(keys(await p.expire()), ['s:1/alice', 's:2/carol'], 'the sweep reports users whose last connection lapsed');
    t.same(await p.expire(), [], 'exactly once');
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }]);
    advance(998);
    t.same(await p.list('s:1'), [{ u: 'bob', n: 1 }], 'the refreshed owner survives its first ttl');
    advance(2);
    t.same(await p.list('s:1'), [], 'and lapses a ttl after its last refresh');
    t.same(keys(await p.expire()), ['s:1/bob']);
  });

  t.test(`${name}: join renews the lease for the ttl of the latest refresh`, async (t) => {
    const { p, advance } = await fixture(t);
    await p.refresh(A0, 1000);
    await p.join('s:1', 'alice', A0);
    advance(800);
    t.equal(await p.join('s:1', 'bob', A0), true, 'a join 800 ms later renews the lease');
    advance(800);
    t.same(sorted(await p.list('s:1')), [{ u: 'alice', n: 1 }, { u: 'bob', n: 1 }], '1600 ms after the refresh, 800 after the join: live');
    t.equal(await p.leave('s:1', 'bob', A0), true);
    advance(199);
    t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }], 'a leave does not renew; still within the join\'s ttl');
    advance(1);
    t.same(await p.list('s:1'), [], 'lapsed a ttl after the join, not after the leave');
    t.same(keys(await p.expire()), ['s:1/alice']);
  });

  t.test(`${name}: a lapsed owner revives none of its connections`, async (t) => {
    const { p, advance } = await fixture(t);
    await p.refresh(A0, 1000);
    await p.join('s:1', 'alice', A0);
    await p.join('s:1', 'bob', A0);
    advance(1000);
    t.equal(await p.refresh(A0, 1000), false, 'refresh reports the lapse');
    t.same(await p.list('s:1'), [], 'the new lease holds nothing');
    t.equal(await p.join('s:1', 'alice', A0), false, 'alice back before her departure was reported: no arrival');
    t.same(await p.list('s:1'), [{ u: 'alice', n: 1 }], 'only the new connection counts');
    t.same(keys(await p.expire()), ['s:1/bob'], 'her departure was withdrawn, bob\'s is reported');
    t.equal(await p.leave('s:1', 'alice', A0), true, 'her next last leave is a departure again');
    t.equal(await p.join('s:1', 'bob', A0), true, 'bob, reported gone, arrives again');

    await p.refresh(A1, 1000);
    await p.join('s:2', 'carol', A1);
    await p.join('s:2', 'carol', A1);
    advance(1000);
    t.equal(await p.join('s:2', 'carol', A1), false, 'a lapsed owner joining without a refresh: no arrival either');
    t.same(await p.list('s:2'), [{ u: 'carol', n: 1 }], 'and neither of its two old connections revived');
    t.same(keys(await p.expire()), ['s:1/bob'], 'not carol, who never left as far as the notices go (bob went with A0, which lapsed meanwhile)');
  });

  t.test(`${name}: an established join refuses an owner whose lease is gone, and counts nothing`, async (t) => {
    const { p, advance } = await fixture(t);
    await p.refresh(A0, 1000);
    t.equal(await p.join('s:1', 'alice', A0, true), true, 'a live lease: counted');
    advance(1000);
    await t.rejects(p.join('s:1', 'bob', A0, true), LeaseLost, 'lapsed: refused');
    t.same(await p.list('s:1'), [], 'bob not counted, and alice went with the lapse');
    t.equal(await p.refresh(A0, 1000), false, 'the refused join recreated no lease: the next refresh still sees the loss');
    await t.rejects(p.join('s:1', 'carol', B0, true), LeaseLost, 'an owner that never had a lease: refused too');
    t.equal(await p.join('s:1', 'carol', B0), true, 'without established, a join creates the lease as before');
  });

  t.test(`${name}: a lapsed owner's departures are reported once across dropOwner and expire`, async (t) => {
    const { p, advance } = await fixture(t);
    await p.refresh(A0, 1000);
    await p.join('s:1', 'alice', A0);
    await p.join('s:2', 'bob', A0);
    advance(5000);
    const dropped = await p.dropOwner(A0);
    const swept = await p.expire();
    t.same(keys([...dropped, ...swept]), ['s:1/alice', 's:2/bob'], 'each departure exactly once, from either call');
    t.same(await p.expire(), []);
    t.same(await p.dropOwner(A0), []);
  });

  t.test(`${name}: refresh refuses a ttl that is not a positive integer`, async (t) => {
    const { p } = await fixture(t);
    await t.rejects(p.refresh(A0, 0), RangeError);
    await t.rejects(p.refresh(A0, -5), RangeError);
    await t.rejects(p.refresh(A0, 1.5), RangeError);
  });

  t.test(`${name}: many users`, async (t) => {
    const { p } = await fixture(t);
    const owners = [A0, A1, B0];
    const arrivals = await Promise.all(Array.from({ length: 200 }, (_, i) => p.join('s:big', `u${i}`, owners[i % 3])));
    t.equal(arrivals.filter(Boolean).length, 200);
    const again = await Promise.all(Array.from({ length: 200 }, (_, i) => p.join('s:big', `u${i}`, owners[(i + 1) % 3])));
    t.equal(again.filter(Boolean).length, 0, 'concurrent second connections are not arrivals');
    const list = await p.list('s:big');
    t.equal(list.length, 200);
    t.ok(list.every((e) => e.n === 2));
  });

  t.test(`${name}: random runs: notices alternate, list matches a model of live leases`, async (t) => {
    const { p, advance } = await fixture(t);
    const random = seededRandom(20240611);
    const TTL = 1000;
    const owners = [A0, A1, B0, presenceOwner('inst-b', 1, 1)];
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    const sessions = ['s:x', 's:y'];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    let elapsed = 0;
    // The model: connections per owner ("session/user" each) and when its lease ends.
    const open = new Map<string, string[]>(owners.map((o) => [o, []]));
    const leaseEnd = new Map<string, number>();
    const live = (o: string) => elapsed < (leaseEnd.get(o) ?? -Infinity);
    // What the notices said, per session/user; problems collected, the first few shown.
    const announced = new Map<string, boolean>();
    const problems: string[] = [];
    let lapsedWithConnections = 0;
    const report = (key: string, arrival: boolean, step: number, via: string) => {
      if ((announced.get(key) ?? false) === arrival) problems.push(`step ${step}: ${via} reported ${arrival ? 'an arrival' : 'a departure'} of ${key} twice in a row`);
      announced.set(key, arrival);
    };
    const check = async (step: number) => {
      for (const d of await p.expire()) report(`${d.session}/${d.user}`, false, step, 'expire');
      for (const s of sessions) {
        const listed = new Map((await p.list(s)).map((e) => [e.u, e.n]));
        for (const u of users) {
          let n = 0;
          for (const o of owners) if (live(o)) n += open.get(o)!.filter((k) => k === `${s}/${u}`).length;
          if ((listed.get(u) ?? 0) !== n) problems.push(`step ${step}: list counts ${listed.get(u) ?? 0} connections of ${s}/${u}, the model ${n}`);
          if (listed.has(u) !== (announced.get(`${s}/${u}`) ?? false)) problems.push(`step ${step}: after a sweep, list and notices disagree on ${s}/${u}`);
        }
      }
    };
    const STEPS = 3000;
    for (let step = 0; step < STEPS; step++) {
      const r = random();
      const owner = pick(owners);
      const conns = open.get(owner)!;
      if (!live(owner) && conns.length > 0) {
        lapsedWithConnections++;
        conns.length = 0; // a lapse took its connections
      }
      if (r < 0.4) {
        if (!live(owner)) {
          if (await p.refresh(owner, TTL)) problems.push(`step ${step}: refresh of a lapsed or dropped owner reported a live lease`);
        }
        const s = pick(sessions);
        const u = pick(users);
        if (await p.join(s, u, owner)) report(`${s}/${u}`, true, step, 'join');
        conns.push(`${s}/${u}`);
        leaseEnd.set(owner, elapsed + TTL);
      } else if (r < 0.7) {
        if (conns.length === 0) continue;
        const [key] = conns.splice(Math.floor(random() * conns.length), 1);
        const [s, u] = key.split('/');
        if (await p.leave(s, u, owner)) report(key, false, step, 'leave');
      } else if (r < 0.85) {
        // Most refreshes come in time; some owners are left to lapse.
        if (random() < 0.8) {
          const wasLive = live(owner);
          if ((await p.refresh(owner, TTL)) !== wasLive) problems.push(`step ${step}: refresh reported ${!wasLive} for a lease the model has ${wasLive ? 'live' : 'lapsed'}`);
          leaseEnd.set(owner, elapsed + TTL);
        }
        const ms = Math.floor(random() * 400);
        advance(ms);
        elapsed += ms;
      } else if (r < 0.9) {
        for (const d of await p.dropOwner(owner)) report(`${d.session}/${d.user}`, false, step, 'dropOwner');
        conns.length = 0;
        leaseEnd.delete(owner);
      } else {
        await check(step);
      }
    }
    await check(STEPS);
    t.same(problems.slice(0, 5), [], 'no problem in the run');
    const values = [...announced.values()];
    t.ok(values.some(Boolean) && values.some((v) => !v), 'the run saw both arrivals and departures');
    t.ok(lapsedWithConnections > 10, `the run saw leases lapse with connections (${lapsedWithConnections})`);
  });
}
