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
  /**
   * Small dense number of the namespace, the same on every thread (0: the default,
   * i + 1: `config.namespaces[i]`): counters keyed by namespace index arrays with it
   * (hot paths count without building strings); namespaceLabels(config)[index] names it.
   */
  readonly index: number;
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
      (ns, i): ResolvedNamespace =>
        Object.freeze({
          prefix: ns.prefix,
          index: i + 1,
          historySize: ns.historySize ?? config.historySize,
          presence: ns.presence ?? true,
          clientPublish: ns.clientPublish ?? false,
          conflate: ns.conflate ?? true,
          joinLeave: (ns.presence ?? true) && (ns.joinLeave ?? false),
          commandLimits: ns.commandLimits ?? NO_LIMITS,
        }),
    );
    resolved.sort((a, b) => b.prefix.length - a.prefix.length);
    const fallback = Object.freeze({ prefix: '', index: 0, historySize: config.historySize, presence: true, clientPublish: false, conflate: true, joinLeave: false, commandLimits: NO_LIMITS });
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

/**
 * Label value of the default namespace in metrics. Parentheses cannot occur in a
 * prefix (schema.ts PREFIX_PATTERN), so it never names a configured namespace.
 */
export const DEFAULT_NAMESPACE_LABEL = '(default)';

/**
 * Metric label values by namespace index (ResolvedNamespace.index): the default
 * namespace, then each configured prefix as written. Bounded by the config, never
 * by what clients send: a session is labelled with the namespace that applies to it.
 */
export function namespaceLabels(config: Config): readonly string[] {
  return [DEFAULT_NAMESPACE_LABEL, ...config.namespaces.map((ns) => ns.prefix)];
}

/** True when a client with `role` may publish into sessions of `ns`. */
export function mayPublish(ns: ResolvedNamespace, role: string): boolean {
  return typeof ns.clientPublish === 'boolean' ? ns.clientPublish : ns.clientPublish.includes(role);
}
