/**
 * The principal: who a connection is and what it may join, taken from verified token
 * claims. Session patterns use `*` as the only wildcard (any run of characters,
 * including none); every other character, regex metacharacters included, matches
 * itself. Matching is a plain segment scan, never a regex built from claims, so a
 * hostile pattern cannot cause catastrophic backtracking.
 */
import { DEFAULT_CLOCK_SKEW_S, validUntilS } from './jwt.js';

/** An authenticated user: id, the session patterns it may join, and its role. */
export interface Principal {
  /** User id (the token's `sub`). */
  readonly user: string;
  /** Session id patterns the user may join (`*` matches any run of characters). */
  readonly sessions: readonly string[];
  /** Role within sessions ('participant' unless the token says otherwise). */
  readonly role: string;
  /** Token expiry in seconds since the epoch, when the token had one. */
  readonly exp?: number;
  /**
   * When the token had an `exp`: until when (s since the epoch, exclusive) it is
   * honoured, exp plus the clock-skew allowance; the shard closes the connection
   * with 4004 then.
   */
  readonly validUntilS?: number;
}

/** Longest user id accepted. */
export const MAX_USER_LENGTH = 128;
/** Longest session pattern accepted. */
export const MAX_PATTERN_LENGTH = 256;
/** Longest role accepted. */
export const MAX_ROLE_LENGTH = 64;
/** Role of a principal whose token names none. */
export const DEFAULT_ROLE = 'participant';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Bidirectional overrides, embeddings and isolates: a user id holding them displays
// as another (e.g. in an admin's table or a chat), so they are refused too.
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;

/** Checks a user id: non-empty, at most 128 characters, no control characters; returns the problem or undefined. */
export function userIdProblem(user: unknown): string | undefined {
  if (typeof user !== 'string' || user.length === 0) return 'must be a non-empty string';
  if (user.length > MAX_USER_LENGTH) return `is longer than ${MAX_USER_LENGTH} characters`;
  if (CONTROL.test(user)) return 'contains control characters';
  if (BIDI.test(user)) return 'contains bidirectional-override characters';
  return undefined;
}

/**
 * Builds a principal from verified claims: `sub` (required), `sessions` (default []),
 * `role` (default 'participant'), `exp` (with `validUntilS` = exp + `clockSkewS`).
 */
export function principalFromClaims(
  payload: Record<string, unknown>,
  clockSkewS: number = DEFAULT_CLOCK_SKEW_S,
): { ok: true; principal: Principal } | { ok: false; message: string } {
  const userProblem = userIdProblem(payload.sub);
  if (userProblem !== undefined) return { ok: false, message: `token sub claim ${userProblem}` };

  const rawSessions = payload.sessions ?? [];
  if (!Array.isArray(rawSessions)) return { ok: false, message: 'token sessions claim must be an array of strings' };
  for (const pattern of rawSessions) {
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) {
      return { ok: false, message: `token sessions claim must hold non-empty strings of at most ${MAX_PATTERN_LENGTH} characters` };
    }
  }

  const role = payload.role ?? DEFAULT_ROLE;
  if (typeof role !== 'string' || role.length === 0 || role.length > MAX_ROLE_LENGTH || CONTROL.test(role)) {
    return { ok: false, message: `token role claim must be a non-empty string of at most ${MAX_ROLE_LENGTH} characters` };
  }

  const exp = payload.exp;
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) return { ok: false, message: 'token exp claim must be a number' };

  const principal: Principal = Object.freeze({
    user: payload.sub as string,
    sessions: Object.freeze([...(rawSessions as string[])]),
    role,
    ...(exp === undefined ? {} : { exp, validUntilS: validUntilS(exp, clockSkewS) }),
  });
  return { ok: true, principal };
}

/** The principal of a dev-mode connection: may join every session as a participant. */
export function devPrincipal(user: string): Principal {
  return Object.freeze({ user, sessions: Object.freeze(['*']), role: DEFAULT_ROLE });
}

/** A compiled pattern: literal segments between `*`s. */
type Matcher = (session: string) => boolean;

/** Compiles a `*` glob into a matcher; linear in the session length per segment, no backtracking. */
export function compileSessionPattern(pattern: string): Matcher {
  if (pattern === '*') return () => true;
  const segments = pattern.split('*');
  if (segments.length === 1) return (session) => session === pattern;
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  const middle = segments.slice(1, -1).filter((s) => s.length > 0);
  const fixed = first.length + last.length;
  return (session) => {
    if (session.length < fixed || !session.startsWith(first) || !session.endsWith(last)) return false;
    // Leftmost placement of each middle segment is optimal for `*`-only globs: any
    // later placement leaves less room for the segments after it.
    let from = first.length;
    const until = session.length - last.length;
    for (const segment of middle) {
      const at = session.indexOf(segment, from);
      if (at < 0 || at + segment.length > until) return false;
      from = at + segment.length;
    }
    return true;
  };
}

const compiled = new WeakMap<readonly string[], readonly Matcher[]>();

/** True when one of the principal's session patterns matches `session`. Patterns compile once per principal. */
export function mayJoin(principal: Principal, session: string): boolean {
  let matchers = compiled.get(principal.sessions);
  if (matchers === undefined) {
    matchers = principal.sessions.map(compileSessionPattern);
    compiled.set(principal.sessions, matchers);
  }
  for (const match of matchers) {
    if (match(session)) return true;
  }
  return false;
}
