/** `shardcast-admin publish`: publishes one event through the daemon's HTTP API. */
import { CliError, UsageError } from '../cli-errors.js';
import { parseFlags, required, type Command } from '../command.js';
import { daemonHttpUrl } from '../daemon-url.js';

const usage = `Usage: shardcast-admin publish --session S --type T --data JSON [--to U1,U2] [--snapshot KEY] [--conflate] [--id EVENT_ID]

Publishes one event into a session (POST /v1/publish).

  --session S       session id                                          required
  --type T          event type                                          required
  --data JSON       event data as JSON (e.g. '{"q":1}' or '"text"')      required
  --to U1,U2        deliver only to these user ids (comma-separated)
  --snapshot KEY    the snapshot key this event sets
  --conflate        a newer event with the same key may replace it for lagging clients
  --id EVENT_ID     event id: publishing the same id again is a no-op (duplicate: true)

Environment: SHARDCAST_URL (default http://127.0.0.1:8080), SHARDCAST_API_KEY.
Output: {"session":S,"seq":N,"epoch":E,"duplicate":false}`;

const REQUEST_TIMEOUT_MS = 10_000;

/** Reads `{ error: { code, message } }` from an error response, if it is one. */
function errorOf(body: unknown): { code: string; message: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
}

/** The publish verb. */
export const publishCommand: Command = {
  name: 'publish',
  summary: 'publish one event into a session (HTTP API)',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, {
      session: { type: 'string' },
      type: { type: 'string' },
      data: { type: 'string' },
      to: { type: 'string' },
      snapshot: { type: 'string' },
      conflate: { type: 'boolean' },
      id: { type: 'string' },
    });
    const session = required(flags.session, '--session');
    const type = required(flags.type, '--type');
    let data: unknown;
    try {
      data = JSON.parse(required(flags.data, '--data'));
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`--data must be JSON (quote strings: '"text"'): ${err instanceof Error ? err.message : String(err)}`);
    }
    const to = flags.to?.split(',').map((u) => u.trim()).filter((u) => u !== '');
    if (flags.to !== undefined && to?.length === 0) throw new UsageError('--to needs at least one user id');

    const event = {
      session,
      type,
      data,
      ...(to ? { to } : {}),
      ...(flags.snapshot !== undefined ? { snapshot: flags.snapshot } : {}),
      ...(flags.conflate ? { conflate: true } : {}),
      ...(flags.id !== undefined ? { id: flags.id } : {}),
    };
    const endpoint = `${daemonHttpUrl(io.env)}/v1/publish`;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const apiKey = io.env.SHARDCAST_API_KEY;
    if (apiKey) headers.authorization = `Bearer ${apiKey}`;

    let response: Response;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify(event),
        signal: AbortSignal.any([io.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
      throw new CliError(`cannot reach the daemon at ${endpoint}: ${cause} (set SHARDCAST_URL?)`);
    }
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const error = errorOf(body);
      const hint = response.status === 401 ? ' (set SHARDCAST_API_KEY)' : '';
      throw new CliError(`publish failed: HTTP ${response.status}${error ? `: ${error.code}: ${error.message}` : text ? `: ${text.slice(0, 200)}` : ''}${hint}`);
    }
    const { seq, epoch, duplicate } = (body ?? {}) as { seq?: unknown; epoch?: unknown; duplicate?: unknown };
    if (typeof seq !== 'number' || typeof epoch !== 'string' || typeof duplicate !== 'boolean') {
      throw new CliError(`unexpected reply from ${endpoint}: ${text.slice(0, 200)}`);
    }
    io.stdout(JSON.stringify({ session, seq, epoch, duplicate }));
    return 0;
  },
};
