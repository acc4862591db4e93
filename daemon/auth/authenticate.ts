/**
 * Authentication of one connection attempt, synchronous (it runs in the uWS upgrade
 * handler): a token is verified against the configured keys and turned into a
 * principal; a bare dev user is accepted only in devMode. Failures come with the
 * close code and a short reason for the close frame (fitted to the frame where the
 * socket is closed, daemon/shard/connection.ts closeSocket).
 */
import { CloseCode } from '../../protocol/codes.js';
import type { Config } from '../config/schema.js';
import { verifyJwt } from './jwt.js';
import { devPrincipal, principalFromClaims, userIdProblem, type Principal } from './principal.js';

/** Outcome of authenticate: a principal, or the close code and reason to end the connection with. */
export type AuthResult = { ok: true; principal: Principal } | { ok: false; closeCode: number; reason: string };

function refuse(closeCode: number, reason: string): AuthResult {
  return { ok: false, closeCode, reason };
}

/**
 * Authenticates a connection from its token, or (devMode only) a dev user name.
 * An expired token closes with TokenExpired (4004, the client should fetch a fresh
 * token); every other failure with AuthFailed (4501). `now` is ms since the epoch.
 */
export function authenticate(input: { token?: string; devUser?: string }, ctx: { config: Config; now?: number }): AuthResult {
  const { config } = ctx;
  if (input.token !== undefined && input.token !== '') {
    const verified = verifyJwt(
      input.token,
      { secret: config.jwtSecret, publicKeys: config.jwtPublicKeys, keySet: config.jwtKeySet },
      { issuer: config.jwtIssuer, audience: config.jwtAudience, now: ctx.now, clockSkewS: config.jwtClockSkewS },
    );
    if (!verified.ok) return refuse(verified.reason === 'expired' ? CloseCode.TokenExpired : CloseCode.AuthFailed, verified.message);
    const claims = principalFromClaims(verified.payload, config.jwtClockSkewS);
    if (!claims.ok) return refuse(CloseCode.AuthFailed, claims.message);
    return { ok: true, principal: claims.principal };
  }
  if (input.devUser !== undefined && input.devUser !== '') {
    if (!config.devMode) return refuse(CloseCode.AuthFailed, 'dev users are accepted only in dev mode; send a token');
    const problem = userIdProblem(input.devUser);
    if (problem !== undefined) return refuse(CloseCode.AuthFailed, `dev user ${problem}`);
    return { ok: true, principal: devPrincipal(input.devUser) };
  }
  return refuse(CloseCode.AuthFailed, config.devMode ? 'missing token (or dev user)' : 'missing token');
}
