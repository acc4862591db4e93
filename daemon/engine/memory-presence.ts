/**
 * Standalone presence: counts in this process's memory, owned by the primary thread.
 * It honours the whole contract of presence.ts, leases included, although within
 * one process an owner only lapses when the primary stops refreshing it; that keeps
 * it a faithful reference for the shared (Redis) implementation.
 *
 * Lapsed leases are swept lazily, at the start of every call, with the injectable
 * clock: there is no timer, so tests control expiry exactly through `now`.
 */
import type { PresenceEntry } from '../../protocol/frames.js';
import { LeaseLost, type Presence, type PresenceDeparture } from './presence.js';

/** Settings of the memory presence table. */
export interface MemoryPresenceOptions {
  /** Clock in ms (Date.now by default); leases are judged by it. */
  now?: () => number;
  /** Lease of an owner that joins before its first refresh (30000 by default). */
  leaseMs?: number;
}

interface Lease {
  expiresAt: number;
  ttlMs: number;
}

const DEFAULT_LEASE_MS = 30_000;

function checkTtl(ttlMs: number, what: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive integer of milliseconds, got ${ttlMs}`);
  }
}

/** Creates the in-memory presence table. */
export function createMemoryPresence(opts: MemoryPresenceOptions = {}): Presence {
  const now = opts.now ?? Date.now;
  const defaultLeaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  checkTtl(defaultLeaseMs, 'memory presence leaseMs');

  // session → user → owner → connection count; holds live owners only (after sweep()).
  const table = new Map<string, Map<string, Map<string, number>>>();
  // owner → session → users it holds: dropping an owner must not scan every session.
  const held = new Map<string, Map<string, Set<string>>>();
  const leases = new Map<string, Lease>();
  // Departures by lapse not yet returned by expire(), keyed by session and user.
  const unreported = new Map<string, PresenceDeparture>();

  const keyOf = (session: string, user: string) => `${session}\u0000${user}`;

  /** Removes every connection of `owner`; returns the users left with none. */
  function removeOwner(owner: string): PresenceDeparture[] {
    const gone: PresenceDeparture[] = [];
    const sessions = held.get(owner);
    held.delete(owner);
    if (!sessions) return gone;
    for (const [session, usersHeld] of sessions) {
      const users = table.get(session);
      if (!users) continue;
      for (const user of usersHeld) {
        const owners = users.get(user);
        if (!owners || !owners.delete(owner) || owners.size > 0) continue;
        users.delete(user);
        gone.push({ session, user });
      }
      if (users.size === 0) table.delete(session);
    }
    return gone;
  }

  /** Moves what lapsed owners held out of the table; their departures wait for expire(). */
  function sweep(): void {
    const t = now();
    for (const [owner, lease] of leases) {
      if (t < lease.expiresAt) continue;
      leases.delete(owner);
      for (const d of removeOwner(owner)) unreported.set(keyOf(d.session, d.user), d);
    }
  }

  function renew(owner: string, ttlMs: number): void {
    leases.set(owner, { expiresAt: now() + ttlMs, ttlMs });
  }

  function total(owners: Map<string, number>): number {
    let n = 0;
    for (const c of owners.values()) n += c;
    return n;
  }

  const presence = {
    async join(session: string, user: string, owner: string, established = false) {
      sweep();
      if (established && !leases.has(owner)) throw new LeaseLost(`presence lease of ${owner} is gone: what it held was lost`);
      renew(owner, leases.get(owner)?.ttlMs ?? defaultLeaseMs);
      let users = table.get(session);
      if (!users) table.set(session, (users = new Map()));
      let owners = users.get(user);
      const wasAbsent = owners === undefined;
      if (!owners) users.set(user, (owners = new Map()));
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
      let sessions = held.get(owner);
      if (!sessions) held.set(owner, (sessions = new Map()));
      let usersHeld = sessions.get(session);
      if (!usersHeld) sessions.set(session, (usersHeld = new Set()));
      usersHeld.add(user);
      // Back before her departure was announced: to the listeners she never left.
      if (wasAbsent && unreported.delete(keyOf(session, user))) return false;
      return wasAbsent;
    },
    async leave(session: string, user: string, owner: string) {
      sweep();
      const users = table.get(session);
      const owners = users?.get(user);
      const count = owners?.get(owner);
      if (!users || !owners || count === undefined) return false;
      if (count > 1) {
        owners.set(owner, count - 1);
        return false;
      }
      owners.delete(owner);
      const sessions = held.get(owner);
      const usersHeld = sessions?.get(session);
      usersHeld?.delete(user);
      if (usersHeld?.size === 0) sessions?.delete(session);
      if (sessions?.size === 0) held.delete(owner);
      if (owners.size > 0) return false;
      users.delete(user);
      if (users.size === 0) table.delete(session);
      return true;
    },
    async refresh(owner: string, ttlMs: number) {
      checkTtl(ttlMs, 'presence lease ttlMs');
      sweep();
      const wasLive = leases.has(owner);
      renew(owner, ttlMs);
      return wasLive;
    },
    async dropOwner(owner: string) {
      sweep();
      leases.delete(owner);
      return removeOwner(owner);
    },
    async expire() {
      sweep();
      const gone = [...unreported.values()];
      unreported.clear();
      return gone;
    },
    async list(session: string) {
      sweep();
      const out: PresenceEntry[] = [];
      const users = table.get(session);
      if (users) for (const [u, owners] of users) out.push({ u, n: total(owners) });
      return out;
    },
    async close() {
      table.clear();
      held.clear();
      leases.clear();
      unreported.clear();
    },
  } satisfies Presence;
  return presence;
}
