/** Standalone presence: counts in this process's memory, owned by the primary thread. */
import type { PresenceEntry } from '../../protocol/frames.js';
import type { Presence, PresenceDeparture } from './presence.js';

/** Creates the in-memory presence table. */
export function createMemoryPresence(): Presence {
  // session → user → owner → connection count
  const table = new Map<string, Map<string, Map<string, number>>>();

  function total(owners: Map<string, number>): number {
    let n = 0;
    for (const c of owners.values()) n += c;
    return n;
  }

  const presence = {
    async join(session: string, user: string, owner: string) {
      let users = table.get(session);
      if (!users) table.set(session, (users = new Map()));
      let owners = users.get(user);
      const wasAbsent = owners === undefined;
      if (!owners) users.set(user, (owners = new Map()));
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
      return wasAbsent;
    },
    async leave(session: string, user: string, owner: string) {
      const users = table.get(session);
      const owners = users?.get(user);
      const count = owners?.get(owner);
      if (!users || !owners || count === undefined) return false;
      if (count > 1) owners.set(owner, count - 1);
      else owners.delete(owner);
      if (owners.size > 0) return false;
      users.delete(user);
      if (users.size === 0) table.delete(session);
      return true;
    },
    async dropOwner(owner: string) {
      const gone: PresenceDeparture[] = [];
      for (const [session, users] of table) {
        for (const [user, owners] of users) {
          if (!owners.delete(owner) || owners.size > 0) continue;
          users.delete(user);
          gone.push({ session, user });
        }
        if (users.size === 0) table.delete(session);
      }
      return gone;
    },
    async list(session: string) {
      const out: PresenceEntry[] = [];
      const users = table.get(session);
      if (users) for (const [u, owners] of users) out.push({ u, n: total(owners) });
      return out;
    },
    async close() {
      table.clear();
    },
  } satisfies Presence;
  return presence;
}
