/**
 * Resolution of a session id to its namespace settings. Config stays plain data (it
 * crosses to shard threads by structured clone), so the lookup table is built
 * lazily per thread and cached per Config object.
 */
import type { CommandLimit, Config } from './schema.js';

/** The effective settings of one session's namespace, defaults filled in. */
export interface ResolvedNamespace {
  /** The matching prefix; '' for the default namespace. */
  readonly prefix: string;
  readonly historySize: number;
  readonly presence: boolean;
  /** All clients (true), none (false), or clients with one of these roles. */
  readonly clientPublish: boolean | readonly string[];
  readonly conflate: boolean;
  /** Members get pjoin/pleave notices (only where presence is kept). */
  readonly joinLeave: boolean;
  /** Per-user command limits by type (`*`: others); empty: none. */
  readonly commandLimits: Readonly<Record<string, CommandLimit>>;
}

const NO_LIMITS: Readonly<Record<string, CommandLimit>> = Object.freeze({});

/** The limit on commands of `type` in the namespace, if any. */
export function commandLimitFor(ns: ResolvedNamespace, type: string): CommandLimit | undefined {
  return Object.hasOwn(ns.commandLimits, type) ? ns.commandLimits[type] : ns.commandLimits['*'];
}

interface NamespaceTable {
  /** Longest prefix first, so the first match is the longest one. */
  readonly byPrefixLength: readonly ResolvedNamespace[];
  readonly fallback: ResolvedNamespace;
}

const tables = new WeakMap<Config, NamespaceTable>();

function tableFor(config: Config): NamespaceTable {
  let table = tables.get(config);
  if (table === undefined) {
    const resolved = config.namespaces.map(
      (ns): ResolvedNamespace =>
        Object.freeze({
          prefix: ns.prefix,
          historySize: ns.historySize ?? config.historySize,
          presence: ns.presence ?? true,
          clientPublish: ns.clientPublish ?? false,
          conflate: ns.conflate ?? true,
          joinLeave: (ns.presence ?? true) && (ns.joinLeave ?? false),
          commandLimits: ns.commandLimits ?? NO_LIMITS,
        }),
    );
    resolved.sort((a, b) => b.prefix.length - a.prefix.length);
    const fallback = Object.freeze({ prefix: '', historySize: config.historySize, presence: true, clientPublish: false, conflate: true, joinLeave: false, commandLimits: NO_LIMITS });
    table = { byPrefixLength: resolved, fallback };
    tables.set(config, table);
  }
  return table;
}

/** The namespace of a session: the configured one with the longest matching prefix, else the defaults. */
export function namespaceFor(config: Config, sessionId: string): ResolvedNamespace {
  const table = tableFor(config);
  for (const ns of table.byPrefixLength) {
    if (sessionId.startsWith(ns.prefix)) return ns;
  }
  return table.fallback;
}

/** True when a client with `role` may publish into sessions of `ns`. */
export function mayPublish(ns: ResolvedNamespace, role: string): boolean {
  return typeof ns.clientPublish === 'boolean' ? ns.clientPublish : ns.clientPublish.includes(role);
}
