/** `shardcast-admin token`: prints a client JWT signed HS256 with SHARDCAST_JWT_SECRET. */
import { signJwt } from '../../daemon/auth/jwt.js';
import { DEFAULT_ROLE } from '../../daemon/auth/principal.js';
import { CliError } from '../cli-errors.js';
import { parseFlags, required, type Command } from '../command.js';
import { parseDurationSeconds } from '../duration.js';

const usage = `Usage: shardcast-admin token --user USER [--session PATTERN]... [--role ROLE] [--ttl 1h]

Prints a JWT for a client connection, signed HS256 with SHARDCAST_JWT_SECRET.

  --user USER         user id (the sub claim)                          required
  --session PATTERN   session id pattern the user may join; * matches any run of
                      characters; repeat for several (default: none)
  --role ROLE         role within the sessions (default: ${DEFAULT_ROLE})
  --ttl DURATION      lifetime: 30s, 15m, 1h, 7d (default: 1h)

Environment: SHARDCAST_JWT_SECRET (required) — the daemon's HS256 secret.
Output: the token, one line.`;

/** The token verb. */
export const tokenCommand: Command = {
  name: 'token',
  summary: 'print a client JWT (HS256, SHARDCAST_JWT_SECRET)',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, {
      user: { type: 'string' },
      session: { type: 'string', multiple: true },
      role: { type: 'string' },
      ttl: { type: 'string' },
    });
    const user = required(flags.user, '--user');
    const ttl = parseDurationSeconds(flags.ttl ?? '1h', '--ttl');
    const secret = io.env.SHARDCAST_JWT_SECRET;
    if (!secret) throw new CliError('SHARDCAST_JWT_SECRET is not set: export the secret the daemon verifies HS256 tokens with');
    const iat = Math.floor(Date.now() / 1000);
    const token = signJwt(
      { sub: user, sessions: flags.session ?? [], role: flags.role ?? DEFAULT_ROLE, iat, exp: iat + ttl },
      { alg: 'HS256', secret },
    );
    io.stdout(token);
    return 0;
  },
};
